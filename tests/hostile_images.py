"""A generator of hostile uploads: cut-off and malformed images, and files of formats
DermaScan does not take. The files are made here, not committed (a few hundred kB would
go stale; the generator shows what each case is).

Every case is ``(name, bytes)``; what the site must answer is decided by the tests.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image


def small_photo(fmt: str, size: int = 12, **save) -> bytes:
    """A small noisy RGB image in ``fmt`` (a few hundred bytes: every cut point is cheap)."""
    arr = np.random.default_rng(3).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save)
    return buf.getvalue()


def small_photos() -> dict[str, bytes]:
    return {
        "jpeg": small_photo("JPEG", quality=80),
        "jpeg-progressive": small_photo("JPEG", quality=80, progressive=True),
        "png": small_photo("PNG"),
        "webp-lossy": small_photo("WEBP", quality=80),
        "webp-lossless": small_photo("WEBP", lossless=True),
    }


def cut_points() -> Iterator[tuple[str, bytes]]:
    """Every proper prefix of every small photo."""
    for name, data in small_photos().items():
        for n in range(1, len(data)):
            yield f"{name}[:{n}]", data[:n]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _png(
    width: int, height: int, depth: int = 8, color: int = 2, idat: bytes | None = None
) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * (1 + 3 * min(max(width, 1), 64)) * min(height, 4))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_with_sof(width: int, height: int, components: int = 3) -> bytes:
    """A real small JPEG whose frame header (SOF0) claims another size or component count."""
    data = bytearray(small_photo("JPEG", quality=80))
    at = data.index(b"\xff\xc0")
    # SOF0: FFC0, length (2), precision (1), height (2), width (2), components (1)
    struct.pack_into(">HH", data, at + 5, height, width)
    data[at + 9] = components
    return bytes(data)


def malformed_headers() -> Iterator[tuple[str, bytes]]:
    """Allowed formats with broken or absurd headers."""
    yield "png-zero-width", _png(0, 10)
    yield "png-huge", _png(2**31 - 1, 2**31 - 1)
    yield "png-bad-depth", _png(10, 10, depth=7)
    yield "png-bad-color-type", _png(10, 10, color=5)
    yield "png-16bit-palette", _png(10, 10, depth=16, color=3)
    yield "png-no-idat-data", _png(10, 10, idat=b"")
    yield "png-garbage-idat", _png(10, 10, idat=b"\x78\x9c" + b"\xff" * 40)
    yield "png-bad-crc", _png(10, 10)[:29] + b"\x00\x00\x00\x00" + _png(10, 10)[33:]
    yield "jpeg-zero-size", _jpeg_with_sof(0, 0)
    yield "jpeg-huge", _jpeg_with_sof(65535, 65535)
    yield "jpeg-bigger-than-data", _jpeg_with_sof(4000, 3000)
    yield "jpeg-two-components", _jpeg_with_sof(12, 12, components=2)
    yield "jpeg-zero-components", _jpeg_with_sof(12, 12, components=0)
    yield "jpeg-magic-only", b"\xff\xd8\xff"
    yield "jpeg-then-text", b"\xff\xd8\xff\xe0" + b"<html><script>alert(1)</script></html>"
    yield "webp-riff-only", b"RIFF\x00\x00\x00\x00WEBP"
    yield "webp-bad-chunk-size", b"RIFF\xff\xff\xff\x7fWEBPVP8 \xff\xff\xff\x7f" + b"\x00" * 30
    yield (
        "webp-vp8x-huge-canvas",
        (
            b"RIFF\x30\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
            + (16383).to_bytes(3, "little") * 2
            + b"\x00" * 20
        ),
    )
    yield "webp-unknown-chunk", b"RIFF\x20\x00\x00\x00WEBPXXXX\x10\x00\x00\x00" + b"\x01" * 16
    for name, data in small_photos().items():
        # every byte of the first 48 flipped: lengths, sizes, markers, chunk names
        for i in range(min(48, len(data))):
            flipped = bytearray(data)
            flipped[i] ^= 0xFF
            yield f"{name}-flip-{i}", bytes(flipped)


def other_formats() -> Iterator[tuple[str, bytes]]:
    """Files that are not JPEG, PNG or WebP, hostile or not: all must be refused unread."""
    arr = np.random.default_rng(4).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    for fmt in ("BMP", "GIF", "TIFF", "PPM", "PCX", "SGI", "TGA", "ICO", "DDS", "QOI"):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt)
        yield fmt.lower(), buf.getvalue()
    yield (
        "bmp-compression-99",
        b"BM" + struct.pack("<IHHIIiiHHI", 70, 0, 0, 54, 40, 10, 10, 1, 7, 99),
    )
    yield "ppm-maxval-0", b"P6\n10 10\n0\n" + b"\x00" * 300
    yield "xpm", b'/* XPM */\nstatic char *x[] = {\n"10 10 2 1",\n"  c None",\n'
    yield "fits", b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =  8"
    yield "cur", b"\x00\x00\x02\x00\x01\x00\x10\x10\x00\x00\x00\x00\x00\x00" + b"\x00" * 30
    yield "wmf", b"\xd7\xcd\xc6\x9a" + b"\x00" * 40
    yield "eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    yield (
        "psd",
        b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03\x00\x00\x00\x0a\x00\x00\x00\x0a\x00\x08\x00\x03",
    )
    yield "heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40
    yield "avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 40
    yield "svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    yield "html", b"<!doctype html><html><body>hi</body></html>"
    yield "pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"
    yield "zip", b"PK\x03\x04" + b"\x00" * 40
    yield "text", b"just some text"
    yield "nul", b"\x00" * 64
