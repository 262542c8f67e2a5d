"""The same networks in PyTorch, built from the fcnn layer spec so the shapes match exactly."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.timing import median_time
from fcnn.layers import network


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def module_from_spec(spec: dict[str, Any], in_shape: tuple[int, ...]):
    """A torch module equivalent to an fcnn layer spec (and its output shape); a network
    runs its layers' modules through fcnn's own walker, combinators and all."""
    if not network.is_combinator(spec):
        return _layer_module(spec, in_shape)
    import torch
    import torch.nn as nn

    modules: dict[str, Any] = {}

    def build(layer_spec, path, _params, _state, shape):
        modules["_".join(map(str, path))], out_shape = _layer_module(layer_spec, shape)
        return out_shape

    out_shape = network.walk(spec, tuple(in_shape), build, lambda a, b: a)

    class Walked(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleDict(modules)

        def forward(self, x):
            def run(_spec, path, _params, _state, value):
                return self.layers["_".join(map(str, path))](value)

            return network.walk(spec, x, run, torch.add)

    return Walked(), out_shape


def _layer_module(spec: dict[str, Any], in_shape: tuple[int, ...]):
    """The torch module of one fcnn layer spec and its output shape."""
    import torch.nn as nn

    kind = spec["type"]
    if kind == "Conv2D":
        k, s, d = _pair(spec["kernel_size"]), _pair(spec["stride"]), _pair(spec["dilation"])
        p = spec["padding"]
        pad = (
            tuple((d[i] * (k[i] - 1)) // 2 for i in range(2))
            if p == "same"
            else ((0, 0) if p == "valid" else _pair(p))
        )
        m = nn.Conv2d(in_shape[0], spec["out_channels"], k, s, pad, d)
        oh = (in_shape[1] + 2 * pad[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        ow = (in_shape[2] + 2 * pad[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        return m, (spec["out_channels"], oh, ow)
    if kind == "Dense":
        return nn.Linear(in_shape[0], spec["out_features"]), (spec["out_features"],)
    if kind in ("MaxPool2D", "AvgPool2D"):
        w = _pair(spec["window"])
        s = w if spec["stride"] is None else _pair(spec["stride"])
        p = _pair(spec["padding"])
        cls = nn.MaxPool2d if kind == "MaxPool2D" else nn.AvgPool2d
        oh = (in_shape[1] + 2 * p[0] - w[0]) // s[0] + 1
        ow = (in_shape[2] + 2 * p[1] - w[1]) // s[1] + 1
        return cls(w, s, p), (in_shape[0], oh, ow)
    if kind == "GlobalAvgPool2D":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (in_shape[0],)
    if kind in ("BatchNorm2D", "BatchNorm1D"):
        cls = nn.BatchNorm2d if kind == "BatchNorm2D" else nn.BatchNorm1d
        bn = cls(in_shape[0], momentum=spec["momentum"], eps=spec["eps"])
        bn.weight.requires_grad = spec.get("scale", True)  # scale=False: γ stays 1
        return bn, in_shape
    if kind == "Dropout":
        return nn.Dropout(spec["drop_rate"]), in_shape
    if kind == "Flatten":
        return nn.Flatten(), (int(np.prod(in_shape)),)
    simple = {"ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh}
    if kind in simple:
        return simple[kind](), in_shape
    if kind == "LeakyReLU":
        return nn.LeakyReLU(spec["negative_slope"]), in_shape
    if kind == "Softmax":
        return nn.Softmax(dim=1), in_shape
    if kind == "GELU":
        return nn.GELU(approximate="tanh"), in_shape
    if kind == "Multiply":
        return _Multiply(spec["factor"]), in_shape
    raise ValueError(f"no PyTorch equivalent for {kind}")


def _Multiply(factor: float):  # noqa: N802 - builds a module, named like one
    import torch.nn as nn

    class Multiply(nn.Module):
        def forward(self, x):
            return x * factor

    return Multiply()


def per_layer(spec: dict[str, Any], in_shape, batch: int, repeats: int) -> list[dict[str, float]]:
    import torch

    rows = []
    x = torch.randn(batch, *in_shape)
    shape = tuple(in_shape)
    for s in spec["layers"]:
        m, out_shape = module_from_spec(s, shape)
        m.train()
        xin = x.detach().requires_grad_(True)
        y = m(xin)
        dy = torch.randn_like(y)

        def fwd(m=m, xin=xin):
            with torch.no_grad():
                m(xin)

        def bwd(m=m, xin=xin, dy=dy):
            out = m(xin)
            out.backward(dy)

        f = median_time(fwd, repeats)
        fb = median_time(bwd, repeats)
        rows.append({"fwd_ms": f * 1e3, "bwd_ms": max(fb - f, 0.0) * 1e3})
        x, shape = y.detach(), out_shape
    return rows


def train_epoch(
    spec, in_shape, images: np.ndarray, labels: np.ndarray, batch: int, lr: float = 0.01
) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    model, _ = module_from_spec(spec, tuple(in_shape))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    mean = images.mean(axis=(0, 2, 3), keepdims=True)
    std = images.std(axis=(0, 2, 3), keepdims=True)
    x = torch.from_numpy(((images - mean) / std).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(1).permutation(len(labels)))
    t0 = time.perf_counter()
    loss_sum = 0.0
    for start in range(0, len(labels), batch):
        idx = order[start : start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "images_per_s": len(labels) / seconds,
        "mean_loss": loss_sum / len(labels),
    }


def inference(spec, in_shape, batch: int, repeats: int) -> dict[str, Any]:
    import torch

    model, _ = module_from_spec(spec, tuple(in_shape))
    model.eval()
    x = torch.randn(batch, *in_shape)

    def run():
        with torch.no_grad():
            model(x)

    seconds = median_time(run, repeats)
    return {"batch": batch, "ms": seconds * 1e3, "images_per_s": batch / seconds}
