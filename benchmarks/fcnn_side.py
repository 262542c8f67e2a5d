"""What the benchmark measures on the fcnn side: layers, training epochs, inference."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from benchmarks.timing import median_time
from fcnn import distributed, layers, models, optim
from fcnn import random as fr
from fcnn.data.dataset import Dataset
from fcnn.data.transforms import fit_normalization
from fcnn.predict import predict_logits
from fcnn.training.loop import Recipe, train_step


def layer_flops(
    spec: dict[str, Any], in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> float:
    """Forward multiply-add FLOPs of one example through a conv or dense layer (0 otherwise)."""
    if spec["type"] == "Conv2D":
        k = spec["kernel_size"]
        kh, kw = (k, k) if isinstance(k, int) else k
        return 2.0 * math.prod(out_shape) * in_shape[0] * kh * kw
    if spec["type"] == "Dense":
        return 2.0 * in_shape[0] * out_shape[0]
    return 0.0


def per_layer(preset: models.Preset, batch: int, repeats: int) -> list[dict[str, Any]]:
    """Forward and backward time of each top-level layer of a preset at ``batch``."""
    net_layers = [layers.from_spec(s) for s in preset.network.spec["layers"]]
    rng = fr.generator(fr.key(0))
    x = rng.standard_normal((batch, *preset.input_shape)).astype(np.float32)
    shape = preset.input_shape
    rows = []
    for i, layer in enumerate(net_layers):
        out_shape, params, state = layer.init(fr.key(i), shape)
        y, cache, _ = layer.apply(params, x, state=state, train=True, key=fr.key(i))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        fwd = median_time(
            lambda layer=layer, params=params, state=state, x=x: layer.apply(
                params, x, state=state, train=True, key=fr.key(0)
            ),
            repeats,
        )
        bwd = median_time(
            lambda layer=layer, params=params, cache=cache, dy=dy: layer.backward(
                params, cache, dy
            ),
            repeats,
        )
        flops = layer_flops(layer.spec, shape, out_shape) * batch
        rows.append(
            {
                "index": i,
                "layer": repr(layer),
                "spec": layer.spec,
                "in_shape": list(shape),
                "out_shape": list(out_shape),
                "fwd_ms": fwd * 1e3,
                "bwd_ms": bwd * 1e3,
                "fwd_gflops": flops / fwd / 1e9 if flops else None,
                "bwd_gflops": 2 * flops / bwd / 1e9 if flops else None,
            }
        )
        x, shape = y, out_shape
    return rows


def train_epoch(
    preset: models.Preset,
    data: Dataset,
    batch: int,
    lr: float = 0.01,
    replicas: distributed.Replicas = distributed.SINGLE,
) -> dict[str, Any]:
    """One full training epoch (every image once, shuffled) with SGD momentum; seconds.

    With several ``replicas`` each computes its shard of every batch, BatchNorm with the
    whole batch's statistics (the same arithmetic as one process).
    """
    net = preset.network
    _, params, state = net.init(fr.key(0), preset.input_shape)
    opt = optim.sgd(lr, momentum=0.9)
    opt_state = opt.init(params)
    recipe = Recipe(layers.fuse(net), opt, fit_normalization(data.images), sync_batchnorm=True)
    order = fr.generator(fr.key(1)).permutation(len(data))
    t0 = time.perf_counter()
    loss_sum = 0.0
    for start in range(0, len(data), batch):
        idx = order[start : start + batch]
        params, state, opt_state, loss, _ = train_step(
            recipe,
            params,
            state,
            opt_state,
            data.images[idx],
            data.labels[idx],
            fr.key(start),
            replicas,
        )
        loss_sum += loss * len(idx)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "images_per_s": len(data) / seconds,
        "mean_loss": loss_sum / len(data),
    }


def inference(preset: models.Preset, batch: int, repeats: int) -> dict[str, Any]:
    """Eval-mode throughput at ``batch`` (normalization included)."""
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    images = fr.generator(fr.key(2)).integers(0, 256, (batch, *preset.input_shape)).astype(np.uint8)
    norm = fit_normalization(images)

    def run():
        predict_logits(preset.network, params, state, images, norm, batch)

    seconds = median_time(run, repeats)
    return {"batch": batch, "ms": seconds * 1e3, "images_per_s": batch / seconds}
