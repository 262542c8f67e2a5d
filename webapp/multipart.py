"""multipart/form-data parsed entirely in memory.

Litestar's own parser spools uploads larger than 1 MB to temporary files; DermaScan
promises that uploads never touch the disk, so it reads the (size-limited) body and
parses it here with the same ``multipart`` package, into bytes.
"""

from __future__ import annotations

import logging

import attrs
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

__all__ = ["FormError", "FormField", "parse_form"]


log = logging.getLogger("dermascan")


class FormError(ValueError):
    """The body is not usable multipart/form-data."""


@attrs.frozen(eq=False)
class FormField:
    name: str
    data: bytes
    filename: str | None
    content_type: str | None


def parse_form(body: bytes, content_type: str | None, max_fields: int = 16) -> dict[str, FormField]:
    """The fields of a multipart body by name (the first of repeated names wins)."""
    ctype, options = parse_options_header(content_type or "")
    if ctype != "multipart/form-data" or not options.get("boundary"):
        # the content type the request gave is not echoed: the client chose its text
        raise FormError(
            "send the image as multipart/form-data (with a boundary) in a field named 'file'"
        )
    fields: dict[str, FormField] = {}
    segment: MultipartSegment | None = None
    chunks: list[bytes] = []
    try:
        with PushMultipartParser(options["boundary"], max_segment_count=max_fields) as parser:
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    segment, chunks = event, []
                elif event:
                    chunks.append(bytes(event))
                elif segment is not None:
                    if segment.name and segment.name not in fields:
                        fields[segment.name] = FormField(
                            segment.name, b"".join(chunks), segment.filename, segment.content_type
                        )
                    segment = None
    except MultipartError as exc:
        log.info("malformed multipart body: %s", exc)  # the parser's words quote the body
        raise FormError("the multipart body is malformed") from None
    return fields
