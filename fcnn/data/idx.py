"""The IDX file format of MNIST (gzip-compressed or raw)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from fcnn.data.errors import DataError

__all__ = ["parse_idx", "read_idx", "read_maybe_gzip"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_maybe_gzip(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes, decompressed when it is gzip (by its magic bytes, not its name);
    with ``limit``, DataError for content of more than ``limit`` bytes, found after
    decompressing at most ``limit + 1`` (a small .gz can inflate to gigabytes)."""
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f) if gz else f
            data = stream.read(-1 if limit is None else limit + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc}); delete it and fetch it again") from None
    if limit is not None and len(data) > limit:
        raise DataError(
            f"{path}: its content is larger than the {limit:,} bytes this file has; it is "
            "corrupt or not this data set. Delete it and fetch it again."
        )
    return data


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes into an array; ``DataError`` naming ``name`` on any inconsistency."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{name}: truncated or padded IDX file: header says {dims} "
            f"({expected} bytes of data), file has {len(data) - header}"
        )
    arr = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path) -> np.ndarray:
    """The array in the IDX file at ``path`` (gzip-compressed or not), checked as it is read."""
    return parse_idx(read_maybe_gzip(path), str(path))


def write_idx(arr: np.ndarray) -> bytes:
    """IDX bytes for a uint8 array (used by tests and tools)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    out = io.BytesIO()
    out.write(bytes([0, 0, 0x08, arr.ndim]))
    out.write(np.asarray(arr.shape, dtype=">u4").tobytes())
    out.write(arr.tobytes())
    return out.getvalue()
