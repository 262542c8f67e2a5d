"""Uploaded bytes to model pixels, safely: an allow-list of formats, bounded memory.

The order is the defence:
1. The format is read from the file's first bytes (never from the declared content
   type or the name). Only JPEG, PNG and WebP pass (:data:`ALLOWED`); anything else is
   415 before any decoder runs, so Pillow's many other readers (EPS hands the file to
   Ghostscript, PSD, PCX, SGI, FITS...) never see an upload.
2. The costs a decoder's own limits do not see are counted from the bytes first: a JPEG
   of more than :data:`MAX_JPEG_SCANS` scans is 413 (each scan is a pass over the whole
   image), and a WebP's size is read from its header (Pillow allocates the whole canvas
   when it opens one). Then Pillow opens the file with just that format's plugin and
   reads the header; the image's size is checked against ``max_pixels`` (413), a JPEG is
   set to decode at a reduced scale, and the bytes that decoding, the codec's own buffers
   (a progressive JPEG's full-resolution coefficients, WebP's canvases:
   :func:`fcnn.data.preprocess.codec_bytes`) and the full-size conversions will hold are
   reserved from the :class:`DecodeBudget`, all before any pixel is decoded. An image
   that needs more than the whole budget is 413; one that must wait for other decodes to
   finish waits (503 if that takes too long). So the decodes under way never hold more
   than the budget, however many requests arrive at once.
3. Decoding runs; any failure of the decoder is a 400 with a plain message (never the
   library's text, which goes to the server log). ``MemoryError`` is not caught: running
   out of memory is the server's problem, never the client's.
4. :func:`fcnn.data.preprocess.to_pixels` makes the model's pixels, the same function
   the training loader uses.

Everything works on bytes in memory, with no temporary file. The site runs it in decoder
processes under hard CPU-time and memory limits (:mod:`webapp.sandbox`), so an estimate
that falls short costs a 413, never the web worker.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from fcnn.data.preprocess import (
    WEBP_WORKING_BYTES,
    codec_bytes,
    decoded_bytes,
    draft,
    to_pixels,
)
from fcnn.runtime import release_free_memory

__all__ = [
    "ALLOWED",
    "MAX_JPEG_SCANS",
    "DecodeBudget",
    "ImageProblem",
    "jpeg_scans",
    "read_image",
    "sniff",
]

log = logging.getLogger("dermascan")

# What phones and dermatoscopes save: JPEG (every camera app, and the dermatoscope
# attachments that shoot through a phone), PNG (screenshots, exports), WebP (Android
# and browsers' own re-encodes). iPhones save HEIC but their browsers send JPEG; TIFF
# and BMP come from desktop exports that can save JPEG as well, and their decoders are
# large, old attack surfaces; so neither is taken.
ALLOWED = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
ACCEPTED_WORDS = "JPEG, PNG or WebP"

# a decode this large gives its memory back to the system when done (a photo at the model's
# size, a few MB, does not pay for the heap walk)
TRIM_AFTER_BYTES = 32 * 2**20

# A progressive JPEG is decoded scan by scan, each a pass over the whole image; the usual
# progressions have 6-12 scans, and a file may repeat one thousands of times at a few bytes
# each (djpeg -maxscans, libjpeg-turbo's answer). Pillow has no such limit, so the file's
# scans are counted before it decodes.
MAX_JPEG_SCANS = 100

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")


class ImageProblem(Exception):
    """An upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class DecodeBudget:
    """Bytes that the decodes under way in one worker may hold together, shared by threads.

    ``reserve(n)`` holds ``n`` bytes for the duration of a ``with`` block, waiting up to
    ``wait_s`` for other decodes to give theirs back.
    """

    def __init__(self, capacity: int, wait_s: float = 30.0):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.wait_s = wait_s
        self._free = capacity
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, n: int) -> Iterator[None]:
        if n > self.capacity:
            raise ValueError(f"{n} bytes is more than the whole budget of {self.capacity}")
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while self._free < n:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    raise TimeoutError(f"no {n} bytes free within {self.wait_s} s")
            self._free -= n
        try:
            yield
        finally:
            with self._changed:
                self._free += n
                self._changed.notify_all()


def sniff(data: bytes) -> str | None:
    """The allowed format ``data`` starts with ("JPEG", "PNG", "WEBP"), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def jpeg_scans(data: bytes, limit: int = MAX_JPEG_SCANS) -> int:
    """How many scans (SOS segments) the JPEG ``data`` has, counting up to ``limit + 1``.

    Walks the marker segments by their lengths and each scan's entropy-coded data to the next
    marker (in entropy data a 0xFF byte is followed by 0x00 or a restart marker), so bytes
    inside an EXIF thumbnail or a comment are never taken for a scan. Stops at the end of
    the image or at anything malformed (the decoder then says what is wrong)."""
    count, pos, n = 0, 2, len(data)
    while pos + 4 <= n and count <= limit:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            count += 1
            while True:  # the entropy-coded data runs to the next marker
                end = data.find(b"\xff", end)
                if end < 0 or end + 1 >= n:
                    return count
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        pos = end
    return count


def webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first chunk (VP8X canvas, VP8L or VP8 frame header),
    or None when it is not one of those. Pillow's WebP reader allocates the whole canvas
    when it opens a file, so the size must be known before it does."""
    kind, head = data[12:16], data[20:30]
    if len(head) < 10:
        return None
    if kind == b"VP8X":
        width = int.from_bytes(head[4:7], "little") + 1  # 24-bit canvas size minus one
        height = int.from_bytes(head[7:10], "little") + 1
        return width, height
    if kind == b"VP8L" and head[0] == 0x2F:
        bits = int.from_bytes(head[1:5], "little")  # 14-bit width - 1, 14-bit height - 1
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and head[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(head[6:8], "little") & 0x3FFF
        height = int.from_bytes(head[8:10], "little") & 0x3FFF
        return width, height
    return None


def _refusal(data: bytes) -> ImageProblem:
    """415 for a format that is not on the list, with what to do instead."""
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ImageProblem(
            415,
            "This looks like an iPhone (HEIC/HEIF) or AVIF photo, which DermaScan does not "
            "read. Upload it from the phone's browser (the iPhone sends JPEG then), or on the "
            "iPhone choose Settings > Camera > Formats > Most Compatible, or export the photo "
            f"as JPEG. Accepted formats: {ACCEPTED_WORDS}.",
        )
    return ImageProblem(
        415,
        "This file is not a photo format DermaScan reads. Upload a photo in "
        f"{ACCEPTED_WORDS} format.",
    )


def _damaged(fmt: str, exc: BaseException) -> ImageProblem:
    # the library's own words stay in the server log: they mean nothing to a user and
    # tell an attacker which decoder answered
    log.info("undecodable %s upload: %s: %s", fmt, type(exc).__name__, exc)
    return ImageProblem(
        400,
        f"The file starts like a {ALLOWED[fmt]} image but cannot be read: it may be damaged "
        "or cut off. Try another photo, or save this one again.",
    )


def _too_large(detail: str) -> ImageProblem:
    return ImageProblem(413, f"{detail} Resize the photo (for example to 3000×3000) and try again.")


def _check_size(
    width: int, height: int, mode: str, need: int, max_pixels: int, budget: DecodeBudget
) -> None:
    """413 for an image of more than ``max_pixels`` pixels, or whose decoding needs ``need``
    bytes, more than the whole budget."""
    if width * height > max_pixels:
        raise _too_large(
            f"The image has {width}×{height} pixels, more than the {max_pixels:,} allowed."
        )
    if need > budget.capacity:
        raise _too_large(
            f"The image ({width}×{height}, {mode}) needs {need / 2**20:.0f} MB to read, "
            f"more than the {budget.capacity / 2**20:.0f} MB this server allows."
        )


def read_image(
    data: bytes,
    size: tuple[int, int],
    channels: int = 3,
    *,
    max_pixels: int,
    budget: DecodeBudget,
) -> np.ndarray:
    """``data`` as the model's uint8 (C, H, W) pixels of ``size`` (H, W);
    :class:`ImageProblem` (400/413/415, or 503 when the budget stays taken) for anything
    that is not a usable photo."""
    if not data:
        raise ImageProblem(
            400, "The uploaded file is empty. Choose a photo of the skin lesion and try again."
        )
    fmt = sniff(data)
    if fmt is None:
        raise _refusal(data)
    if fmt == "JPEG" and jpeg_scans(data) > MAX_JPEG_SCANS:
        raise _too_large(
            f"The JPEG file has more than {MAX_JPEG_SCANS} scans (a photo has about 10), which "
            "would take minutes to decode. Save the photo again as an ordinary JPEG."
        )
    if fmt == "WEBP" and (size_wh := webp_size(data)) is not None:
        _check_size(*size_wh, "RGBA", (4 + WEBP_WORKING_BYTES) * size_wh[0] * size_wh[1],
                    max_pixels, budget)  # fmt: skip
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb limit is process-wide; the checks below apply DermaScan's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            _check_size(width, height, img.mode, 0, max_pixels, budget)
            working = codec_bytes(img)  # at full size, whatever draft then asks for
            draft(img, size, channels)
            need = decoded_bytes(img) + working
    except (ImageProblem, MemoryError):
        raise
    except Image.DecompressionBombError:
        raise _too_large(f"The image has more than the {max_pixels:,} pixels allowed.") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a 400
        raise _damaged(fmt, exc) from None
    _check_size(width, height, img.mode, need, max_pixels, budget)
    try:
        with budget.reserve(need):
            try:
                img.load()
                img.getexif()  # EXIF is parsed lazily: a malformed block is the file's fault
            except MemoryError:
                raise
            except Exception as exc:  # as above
                raise _damaged(fmt, exc) from None
            pixels = to_pixels(img, size, channels)
            img.close()  # the full-size image's memory is free from here
    except TimeoutError:
        raise ImageProblem(503, "The server is busy. Please try again in a moment.") from None
    if need >= TRIM_AFTER_BYTES:
        release_free_memory()  # or the freed pages stay with this thread's malloc heap
    return pixels
