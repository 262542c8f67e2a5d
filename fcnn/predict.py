"""Batched eval-mode inference: logits and penultimate features of raw-pixel images.

Below training in the package's layers: :mod:`fcnn.inference` (the ``Model`` scripts and
the web app use) and :mod:`fcnn.training.loop` (validation, the final test) both call it.
BatchNorms run folded into the layers before them, each batch is normalized on its own
(a whole data set is never held as float32 at once) and split over threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn import explain
from fcnn.data.transforms import Normalization, normalize
from fcnn.distributed import threads
from fcnn.layers import Layer, fuse
from fcnn.layers.cost import multiply_adds
from fcnn.layers.folding import fold_batchnorm
from fcnn.tta import with_tta

__all__ = ["SHARD_MULTIPLY_ADDS", "features", "predict_logits"]

# A thread's shard of a batch must carry at least this many multiply-adds: below it the
# shards' Python work, which the GIL serializes, costs more than the second core gains.
# LeNet-5 (0.4 M per image) ran no faster split in two than on one thread with a two-thread
# BLAS even at 2000 images, while the BatchNorm net (18 M per image) gains from 16-image
# shards (`git log -S SHARD_MULTIPLY_ADDS` gives the timings).
SHARD_MULTIPLY_ADDS = 500_000_000


def predict_logits(
    net: Layer,
    params: Any,
    state: Any,
    images: np.ndarray,
    normalization: Normalization,
    batch_size: int = 500,
    workers: int | None = None,
    tta: int = 0,
) -> np.ndarray:
    """Eval-mode logits of raw-pixel ``images`` (N, C, H, W), normalized batch by batch
    (so a whole data set is never held as float32 at once). Each batch is split over
    ``workers`` threads (default: the BLAS's thread count; see
    :mod:`fcnn.distributed.threads`). BatchNorms run folded into the layers before them
    (:func:`fcnn.layers.folding.fold_batchnorm`), the rest fused (:func:`fcnn.layers.fuse`).
    ``tta``: the test-time augmentation level (:mod:`fcnn.tta`), 0 for none."""
    min_rows = _images_per_shard(net, images)
    net, params, state = fold_batchnorm(net, params, state)
    net = fuse(net)
    return _in_batches(
        with_tta(lambda x: net.apply(params, x, state=state, train=False)[0], tta),
        images,
        normalization,
        batch_size,
        workers,
        min_rows,
    )


def _images_per_shard(net: Layer, images: np.ndarray) -> int:
    """The fewest images a thread's shard may hold: :data:`SHARD_MULTIPLY_ADDS` worth of the
    network's arithmetic (at least :data:`fcnn.distributed.threads.MIN_SHARD`). A batch too
    small to split is not costed."""
    if images.shape[0] < 2 * threads.MIN_SHARD:
        return threads.MIN_SHARD
    per_image = multiply_adds(net.spec, images.shape[1:])
    return max(threads.MIN_SHARD, -(-SHARD_MULTIPLY_ADDS // max(per_image, 1)))


def _in_batches(
    fn,
    images: np.ndarray,
    normalization: Normalization,
    batch_size: int,
    workers: int | None,
    min_rows: int,
) -> np.ndarray:
    """``fn`` of each normalized batch of uint8 ``images``, concatenated along axis 0; every
    batch is normalized and run as up to ``workers`` shards of at least ``min_rows`` images
    on threads."""
    workers = threads.default_workers() if workers is None else workers

    def on_raw(raw: np.ndarray):
        return fn(normalize(raw, normalization))

    outputs: list[np.ndarray] = []
    for i in range(0, images.shape[0], batch_size):
        outputs += threads.map_shards(on_raw, images[i : i + batch_size], workers, min_rows)
    return np.concatenate(outputs)


def features(
    net: Layer,
    params: Any,
    state: Any,
    images: np.ndarray,
    normalization: Normalization,
    batch_size: int = 500,
    workers: int | None = None,
) -> np.ndarray:
    """Penultimate (pooled) features of uint8 ``images``, normalized batch by batch (and
    split over ``workers`` threads, BatchNorms folded, as in :func:`predict_logits`)."""
    min_rows = _images_per_shard(net, images)
    net, params, state = fold_batchnorm(net, params, state)
    return _in_batches(
        lambda x: explain.features(net, params, state, x),
        images,
        normalization,
        batch_size,
        workers,
        min_rows,
    )
