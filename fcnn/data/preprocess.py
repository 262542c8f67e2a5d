"""The one image decoding path shared by training, evaluation, the CLI and the web app.

``prepare_image`` = :func:`decode` (Pillow reads the file; a JPEG at a reduced scale)
then :func:`to_pixels` (8-bit, resized, composited on white, RGB or gray, EXIF-upright),
giving the uint8 (C, H, W) array a model takes. Normalization happens later, with the
statistics stored in the checkpoint (:func:`fcnn.data.transforms.normalize`).

The web app runs the same two steps with checks between them (:func:`decoded_bytes`
before :func:`decode`), so a photo gives the site exactly the pixels the training
loader gives it. Memory is the point of the order: everything that touches the
full-size image (decoding, and for palette, bilevel, CMYK or 16-bit images one
conversion) happens before the resize, everything else on the small image after it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["codec_bytes", "decode", "decoded_bytes", "prepare_image", "to_pixels"]

EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = (5, 6, 7, 8)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_RESIZABLE = ("L", "RGB", "RGBA", "LA")  # resized as they are; others are converted first
_ROWS_PER_CHUNK = 256  # 16-bit to 8-bit in row blocks: float64 temporaries stay small


def decoded_bytes(img: Image.Image) -> int:
    """Peak bytes :func:`decode` + :func:`to_pixels` hold for ``img`` at full size.

    Pillow keeps 1 byte a pixel for ``1``, ``L`` and ``P``, 2 for 16-bit gray and 4 for
    every other mode (RGB too). Full-size copies come on top: a conversion for modes that
    are not resized as they are (4 bytes a pixel; 16-bit gray: a 2-byte copy and the 1-byte
    result), and for transparent images the premultiplied copy the resize makes (4).
    Call it after :func:`draft` to get a reduced JPEG's figure.
    """
    pixels = img.width * img.height
    if img.mode in _SIXTEEN_BIT:
        return pixels * ((2 if img.mode != "I" else 4) + 2 + 1)
    stored = 1 if img.mode in ("1", "L", "P") else 4
    if img.mode in ("RGBA", "LA"):
        copies = 4
    elif img.mode == "P" and "transparency" in img.info:
        copies = 4 + 4
    elif img.mode in _RESIZABLE:
        copies = 0
    else:
        copies = 4
    return pixels * (stored + copies)


# what a codec holds besides the decoded image, per pixel of the full-size image:
# a progressive JPEG keeps every component's DCT coefficients at full resolution (64 2-byte
# coefficients per 8x8 block: 2 bytes a pixel a component) however small draft makes the
# output; Pillow's WebP decoding peaked at 16-17 bytes a pixel in all, lossless or lossy
# (an 8900x8900 lossless file +1.21 GB, a 4000x4000 lossy one +259 MB), 4 of them the
# decoded image that decoded_bytes counts
PROGRESSIVE_JPEG_BYTES_PER_COMPONENT = 2
WEBP_WORKING_BYTES = 13


def codec_bytes(img: Image.Image) -> int:
    """Bytes the codec holds while decoding ``img`` besides the image :func:`decoded_bytes`
    counts; call it before :func:`draft` (it needs the full size)."""
    pixels = img.width * img.height
    if img.format == "JPEG" and (img.info.get("progressive") or img.info.get("progression")):
        return pixels * PROGRESSIVE_JPEG_BYTES_PER_COMPONENT * len(img.getbands())
    if img.format == "WEBP":
        return pixels * WEBP_WORKING_BYTES
    return 0


def draft(img: Image.Image, size: tuple[int, int], channels: int = 3) -> Image.Image:
    """Ask a JPEG to decode at the smallest scale that is still >= ``size`` (H, W) on both
    sides, whichever way EXIF turns it (a no-op for other formats); returns ``img``."""
    side = max(size)
    img.draft("RGB" if channels == 3 else "L", (side, side))
    return img


def decode(img: Image.Image, size: tuple[int, int], channels: int = 3) -> Image.Image:
    """Decode ``img`` (opened lazily by ``Image.open``), a JPEG at a reduced scale.

    Every error of the file's decoder surfaces here, none in :func:`to_pixels`.
    """
    draft(img, size, channels)
    img.load()
    return img


def _eight_bit_gray(img: Image.Image) -> Image.Image:
    """16/32-bit gray scaled so its maximum is 255 (truncating, as ``astype`` does)."""
    arr = np.asarray(img)  # (H, W) uint16 or int32
    top = max(float(arr.max()), 1.0)
    out = np.empty(arr.shape, dtype=np.uint8)
    for start in range(0, arr.shape[0], _ROWS_PER_CHUNK):
        rows = slice(start, start + _ROWS_PER_CHUNK)
        out[rows] = np.clip(arr[rows].astype(np.float64) / top * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def to_pixels(img: Image.Image, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """A decoded image as the (C, H, W) uint8 array of ``size`` (H, W): RGB (``channels=3``)
    or gray (1), transparent parts on white, turned upright by its EXIF orientation."""
    h, w = size
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    stored = (h, w) if orientation not in _SWAPS_AXES else (w, h)  # size before turning
    if img.mode in _SIXTEEN_BIT:
        img = _eight_bit_gray(img)
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif img.mode not in _RESIZABLE:
        img = img.convert("RGB" if channels == 3 else "L")
    if img.size != (stored[1], stored[0]):
        # reducing_gap: box-reduce by an integer factor first, then a bilinear resize
        img = img.resize((stored[1], stored[0]), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if img.mode in ("RGBA", "LA"):
        # Pillow resized in premultiplied alpha, so compositing after the resize is the same
        # as before it; on the small image it costs nothing
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert("RGB" if channels == 3 else "L")
    if orientation in _UPRIGHT:
        img = img.transpose(_UPRIGHT[orientation])
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def prepare_image(img: Image.Image, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """Any image Pillow opened, as the uint8 (C, H, W) array of ``size`` (H, W) a model takes:
    :func:`decode` then :func:`to_pixels`."""
    return to_pixels(decode(img, size, channels), size, channels)
