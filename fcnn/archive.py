"""Reading an ``.npz`` archive that may be hostile, with bounds: a checkpoint is data, never
a size to trust.

:func:`read_arrays` looks at the zip directory and each member's ``.npy`` header before it
reads any array: only the members a checkpoint holds (:data:`GROUPS` and the manifest) are
taken, every array must be as large as its header says and no larger than
:data:`MAX_ARRAY_BYTES` (all together :data:`MAX_TOTAL_BYTES`), and weights must be finite
real floats. So a 6 MB file holding a 4 GB member of zeros is refused before it is inflated,
and a header declaring a 10**12-element array before anything is allocated.
"""

from __future__ import annotations

import zipfile
from typing import IO

import numpy as np

__all__ = [
    "GROUPS",
    "MANIFEST",
    "MAX_ARRAY_BYTES",
    "MAX_TOTAL_BYTES",
    "ArchiveError",
    "read_arrays",
]

MANIFEST = "__manifest__"
# what checkpoints hold: trained params and state, a resumable run's optimizer state and
# weight average and Lookahead's slow weights, and an out-of-distribution detector's arrays
GROUPS = (
    "params", "state", "opt_state", "ema_params", "ema_state", "slow_params", "slow_state", "ood"
)
MAX_ARRAY_BYTES = 1 << 30  # 1 GiB: a 250-million-parameter layer in float32
MAX_TOTAL_BYTES = 4 << 30  # all the arrays of one checkpoint
MAX_MANIFEST_BYTES = 16 << 20
_WEIGHTS = ("params", "state", "ema_params", "ema_state", "slow_params", "slow_state")


class ArchiveError(ValueError):
    """The archive holds something a checkpoint does not, or more than it may."""


def _header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` member declares, read from its first bytes only."""
    with z.open(info) as member:
        version = np.lib.format.read_magic(member)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = reader(member, max_header_size=10_000)
    return tuple(shape), np.dtype(dtype)


def _check_member(key: str, shape: tuple[int, ...], dtype: np.dtype, stored: int) -> int:
    """The bytes ``key`` will take, or ArchiveError when its declaration does not fit."""
    group = key.split("/", 1)[0]
    if key != MANIFEST and group not in GROUPS:
        raise ArchiveError(f"it holds an array {key!r}, which no checkpoint has")
    if dtype.hasobject:
        raise ArchiveError(f"{key} holds Python objects")
    if group in _WEIGHTS and dtype.kind != "f":
        raise ArchiveError(f"{key} holds {dtype} values; weights are real floats")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    limit = MAX_MANIFEST_BYTES if key == MANIFEST else MAX_ARRAY_BYTES
    if nbytes > limit:
        raise ArchiveError(f"{key} declares {nbytes / 2**20:,.0f} MB, more than {limit >> 20} MB")
    if nbytes > stored:  # an .npy member holds its header and every byte of its data
        raise ArchiveError(f"{key} declares more data than the archive holds for it")
    return nbytes


def read_arrays(f: IO[bytes]) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` opened as ``f``, after the checks of the module docstring;
    ArchiveError says what does not fit (zipfile and NumPy errors pass through)."""
    with zipfile.ZipFile(f) as z:
        infos = {i.filename.removesuffix(".npy"): i for i in z.infolist()}
        if MANIFEST not in infos:
            raise ArchiveError("it has no manifest: it was not written by fcnn")
        declared = {k: _header(z, i) for k, i in infos.items()}
        total = sum(
            _check_member(k, shape, dtype, infos[k].file_size)
            for k, (shape, dtype) in declared.items()
        )
        if total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"its arrays declare {total >> 20:,} MB in all")
        arrays = {}
        for key, info in infos.items():
            with z.open(info) as member:
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            group = key.split("/", 1)[0]
            if group in _WEIGHTS and not np.isfinite(arrays[key]).all():
                raise ArchiveError(f"{key} holds NaN or infinite values")
    return arrays
