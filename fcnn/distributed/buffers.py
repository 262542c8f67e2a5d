"""A tree of arrays as one contiguous buffer, so a reduction is one call, not one per leaf."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from fcnn import tree

__all__ = ["BufferLayout", "from_buffer", "to_buffer"]


@attrs.frozen(eq=False)
class BufferLayout:
    """Where each leaf of a tree lives in its flat buffer."""

    treedef: tree.TreeDef
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]
    offsets: tuple[int, ...]  # start of each leaf; the last entry is the total size


def to_buffer(
    t: Any, extra: np.ndarray | None = None, dtype: Any = np.float32
) -> tuple[np.ndarray, BufferLayout]:
    """Copy the leaves of ``t`` (then the values of ``extra``) into one new 1-D array.

    ``extra`` carries scalars that should travel in the same reduction (a loss, a
    count); they sit after the leaves, at ``layout.offsets[-1]:``.
    """
    leaves, treedef = tree.flatten(t)
    arrays = [np.asarray(leaf) for leaf in leaves]
    sizes = [a.size for a in arrays]
    offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]))
    tail = np.zeros(0, dtype) if extra is None else np.asarray(extra, dtype).ravel()
    buf = np.empty(offsets[-1] + tail.size, dtype)
    for a, start, stop in zip(arrays, offsets[:-1], offsets[1:], strict=True):
        buf[start:stop] = a.ravel()  # (size,): the leaf in C order
    buf[offsets[-1] :] = tail
    layout = BufferLayout(
        treedef, tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays), offsets
    )
    return buf, layout


def from_buffer(buf: np.ndarray, layout: BufferLayout) -> tuple[Any, np.ndarray]:
    """The tree of ``layout`` read back from ``buf`` (new arrays of the original shapes
    and dtypes), and the extra values after it."""
    leaves = [
        buf[start:stop].reshape(shape).astype(dtype)  # (size,) -> the leaf's shape
        for start, stop, shape, dtype in zip(
            layout.offsets[:-1], layout.offsets[1:], layout.shapes, layout.dtypes, strict=True
        )
    ]
    return tree.unflatten(layout.treedef, leaves), buf[layout.offsets[-1] :].copy()
