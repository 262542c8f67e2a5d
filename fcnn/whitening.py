"""Patch whitening: a first convolution whose filters decorrelate the input's patches.

For ``KH×KW`` patches of ``C`` channels (vectors of ``d = C·KH·KW`` values) with second-moment
matrix ``Σ = E[p pᵀ]`` and eigen-decomposition ``Σ = V diag(λ) Vᵀ``, the filters
``vᵢ / sqrt(λᵢ + eps)`` map a patch to coordinates of about unit variance that are
uncorrelated: the network's first layer starts from a whitened view of the image instead of
learning one. airbench (after tysam's hlb-CIFAR10 and Page's "How to train your ResNet") uses
the ``d`` filters and their negatives, ``2d`` outputs, so that a following GELU or ReLU keeps
both signs of every coordinate. Computed once from a sample of training images, before the
first step (a data-dependent initialization); the filters then stay fixed.
"""

from __future__ import annotations

import numpy as np

from fcnn.im2col import geometry, im2col

__all__ = ["patch_whitening"]

# images per chunk of the second-moment sum: bounds the patch matrix in memory
_CHUNK = 500


def patch_whitening(images: np.ndarray, kernel: tuple[int, int], eps: float) -> np.ndarray:
    """The ``2d`` whitening filters ``(2·C·KH·KW, C, KH, KW)`` of ``images`` (N, C, H, W),
    normalized already (float), from every ``kernel``-sized patch (stride 1, no padding):
    the eigenvectors of the patches' second-moment matrix, largest eigenvalue first, each
    over ``sqrt(eigenvalue + eps)``, then the same filters negated. In ``images``' dtype."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"patch_whitening needs images (N, C, H, W), got {images.shape}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    c = images.shape[1]
    kh, kw = kernel
    d = c * kh * kw
    moment = np.zeros((d, d))  # float64: a sum of millions of products
    count = 0
    for start in range(0, len(images), _CHUNK):
        chunk = images[start : start + _CHUNK]
        cols = im2col(chunk, geometry(chunk.shape, (kh, kw)))  # (C·KH·KW, n·OH·OW) patches
        moment += cols.astype(np.float64) @ cols.T.astype(np.float64)
        count += cols.shape[1]
    eigenvalues, eigenvectors = np.linalg.eigh(moment / count)  # ascending
    order = np.argsort(eigenvalues)[::-1]  # the strongest direction first
    scaled = eigenvectors[:, order].T / np.sqrt(eigenvalues[order] + eps)[:, None]  # (d, d)
    filters = scaled.reshape(d, c, kh, kw)  # row (c, i, j) of a patch = im2col's row order
    return np.concatenate([filters, -filters]).astype(images.dtype)
