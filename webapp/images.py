"""Uploaded bytes to model pixels, safely: an allow-list of formats, bounded memory.

The order is the defence:
1. The format is read from the file's first bytes (never from the declared content
   type or the name). Only JPEG, PNG and WebP pass (:data:`ALLOWED`); anything else is
   415 before any decoder runs, so Pillow's many other readers (EPS hands the file to
   Ghostscript, PSD, PCX, SGI, FITS...) never see an upload.
2. Pillow opens the file with just that format's plugin and reads the header; the
   image's size is checked against ``max_pixels`` (413), a JPEG is set to decode at a
   reduced scale, and the bytes that decoding and the full-size conversions will hold
   are reserved from the worker's :class:`DecodeBudget`, all before any pixel is
   decoded. An image that needs more than the whole budget is 413; one that must wait
   for other decodes to finish waits (503 if that takes too long). So the decodes under
   way never hold more than the budget, however many requests arrive at once.
3. Decoding runs; any failure of the decoder is a 400 with a plain message (never the
   library's text, which goes to the server log). ``MemoryError`` is not caught: running
   out of memory is the server's problem, never the client's.
4. :func:`fcnn.data.preprocess.to_pixels` makes the model's pixels, the same function
   the training loader uses.

Everything works on bytes in memory: no temporary file, no subprocess.
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

from fcnn.data.preprocess import decoded_bytes, draft, to_pixels
from fcnn.runtime import release_free_memory

__all__ = ["ALLOWED", "DecodeBudget", "ImageProblem", "read_image", "sniff"]

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
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb limit is process-wide; the checks below apply DermaScan's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if width * height > max_pixels:
                raise _too_large(
                    f"The image has {width}×{height} pixels, more than the {max_pixels:,} allowed."
                )
            draft(img, size, channels)
            need = decoded_bytes(img)
    except (ImageProblem, MemoryError):
        raise
    except Image.DecompressionBombError:
        raise _too_large(f"The image has more than the {max_pixels:,} pixels allowed.") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a 400
        raise _damaged(fmt, exc) from None
    if need > budget.capacity:
        raise _too_large(
            f"The image ({width}×{height}, {img.mode}) needs {need / 2**20:.0f} MB to read, "
            f"more than the {budget.capacity / 2**20:.0f} MB this server allows."
        )
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
