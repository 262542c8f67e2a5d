"""Explicit, splittable random keys (the JAX idea, on NumPy's Philox generator).

A *key* is a read-only ``uint64`` array of shape ``(2,)``. Functions that need
randomness take a key argument, so a call is reproducible from its arguments
alone; a caller that needs several independent streams splits its key::

    key = fcnn.random.key(42)
    key, init_key, dropout_key = fcnn.random.split(key, 3)
    rng = fcnn.random.generator(dropout_key)   # np.random.Generator for one use

Using the same key twice gives the same numbers; that is the point, and also
the trap: split before each new use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Key", "fold_in", "generator", "key", "split"]

Key = np.ndarray


def _make(words: np.ndarray) -> Key:
    k = np.asarray(words, dtype=np.uint64).reshape(2)
    k.setflags(write=False)
    return k


def _check(k: Key) -> np.ndarray:
    arr = np.asarray(k)
    if arr.shape != (2,) or arr.dtype != np.uint64:
        raise TypeError(
            f"expected a key (uint64 array of shape (2,), made by fcnn.random.key), "
            f"got dtype={arr.dtype} shape={arr.shape}"
        )
    return arr


def key(seed: int) -> Key:
    """A key derived from a non-negative integer seed."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    state = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint64)
    return _make(state)


def split(k: Key, num: int = 2) -> np.ndarray:
    """``num`` new independent keys from ``k``, as an array of shape ``(num, 2)``.

    Unpack it (``a, b = split(k)``) or index it; each row is a key.
    """
    if num < 1:
        raise ValueError(f"split: num must be at least 1, got {num}")
    words = _check(k)
    seq = np.random.SeedSequence([int(w) for w in words])
    state = seq.generate_state(2 * num, dtype=np.uint64)
    out = state.reshape(num, 2)  # (num * 2,) -> (num, 2): one key per row
    out.setflags(write=False)
    return out


def fold_in(k: Key, data: int) -> Key:
    """A new key from ``k`` and an integer (an epoch or step number, a rank)."""
    words = _check(k)
    seq = np.random.SeedSequence([int(w) for w in words] + [int(data)])
    return _make(seq.generate_state(2, dtype=np.uint64))


def generator(k: Key) -> np.random.Generator:
    """A fresh ``np.random.Generator`` determined by ``k`` (Philox counter-based)."""
    return np.random.Generator(np.random.Philox(key=_check(k)))
