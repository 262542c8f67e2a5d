"""Model presets: named networks with the input shape they expect.

- ``lenet_mnist``: LeNet-5 for 1×28×28 digits (conv 6@5×5 pad 2, ReLU, max-pool 2,
  conv 16@5×5, ReLU, max-pool 2, dense 120, 84, 10).
- ``tiny_vgg_cifar``: a small VGG for 3×32×32 images: three stages of two 3×3
  convs with BatchNorm and ReLU (32, 64, 128 channels by default), max-pool after
  each, then global average pooling, dropout and a dense classifier.
- ``bn_net_mnist``: the BatchNorm benchmark net of the performance issue.
- ``dermascan_cnn``: the DermaScan classifier for 3×64×64 dermatoscopic images: four
  stages of conv-BatchNorm-ReLU blocks (``widths`` channels, ``depths`` blocks per stage;
  by default one block each of 32, 64, 128, 192 channels) with max-pooling after the
  first three, global average pooling, dropout and a dense layer over the 7 classes. With
  ``residual=True`` every block of a stage after its first is a residual pair
  (conv-BN-ReLU-conv-BN plus the identity, then ReLU), as in ResNet.
- ``airbench_cifar``: airbench94's network (Keller Jordan, arXiv 2404.00498) for 3×32×32
  images: a 2×2 convolution to 24 channels (whitened by the config's ``whitening``), GELU,
  three blocks of conv 3×3 → max-pool 2 → BatchNorm → GELU → conv 3×3 → BatchNorm → GELU at
  ``widths`` 64 / 256 / 256, max-pool 3, a dense layer and the logits × ``scale`` 1/9.
  Convolutions start as dirac (identity on their first channels); BatchNorm has no learned
  scale, eps 1e-12 and ``batchnorm_momentum`` 0.6. About 1.97 million parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

from fcnn import layers
from fcnn.layers import (
    GELU,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    Multiply,
    ReLU,
    residual,
    serial,
)
from fcnn.names import claim

__all__ = ["Preset", "from_spec", "get", "names", "options", "register", "takes_option"]


@attrs.frozen
class Preset:
    """A network and the shape of one input example, (C, H, W); None for a network that
    takes whatever shape the data has."""

    name: str
    network: Layer
    input_shape: tuple[int, ...] | None


def lenet_mnist(num_classes: int = 10) -> Preset:
    net = serial(
        Conv2D(6, 5, padding=2), ReLU(), MaxPool2D(2),
        Conv2D(16, 5), ReLU(), MaxPool2D(2),
        Flatten(),
        Dense(120), ReLU(),
        Dense(84), ReLU(),
        Dense(num_classes, w_init="glorot_uniform"),
    )  # fmt: skip
    return Preset("lenet_mnist", net, (1, 28, 28))


def _conv_bn_relu(channels: int) -> list[Layer]:
    return [Conv2D(channels, 3, padding=1), BatchNorm2D(), ReLU()]


def _residual_pair(channels: int) -> list[Layer]:
    """Two 3×3 convs with BatchNorm added to their input, then ReLU (a ResNet basic block;
    the shapes match, so the shortcut is the identity)."""
    pair = serial(
        Conv2D(channels, 3, padding=1),
        BatchNorm2D(),
        ReLU(),
        Conv2D(channels, 3, padding=1),
        BatchNorm2D(),
    )
    return [residual(pair), ReLU()]


def tiny_vgg_cifar(
    num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128), drop_rate: float = 0.2
) -> Preset:
    stages: list[Layer] = []
    for width in widths:
        stages += _conv_bn_relu(width) + _conv_bn_relu(width) + [MaxPool2D(2)]
    net = serial(
        *stages,
        GlobalAvgPool2D(),
        Dropout(drop_rate),
        Dense(num_classes, w_init="glorot_uniform"),
    )
    return Preset("tiny_vgg_cifar", net, (3, 32, 32))


def bn_net_mnist(num_classes: int = 10) -> Preset:
    net = serial(
        *_conv_bn_relu(32), *_conv_bn_relu(32), MaxPool2D(2),
        *_conv_bn_relu(64), *_conv_bn_relu(64), MaxPool2D(2),
        Flatten(), Dense(num_classes, w_init="glorot_uniform"),
    )  # fmt: skip
    return Preset("bn_net_mnist", net, (1, 28, 28))


def dermascan_cnn(
    num_classes: int = 7,
    widths: tuple[int, ...] = (32, 64, 128, 192),
    drop_rate: float = 0.3,
    image_size: int = 64,
    depths: tuple[int, ...] | None = None,
    residual: bool = False,  # (shadows the combinator here; _residual_pair uses it)
) -> Preset:
    depths = tuple(depths) if depths is not None else (1,) * len(widths)
    if len(depths) != len(widths) or min(depths, default=1) < 1:
        raise ValueError(
            f"depths {list(depths)} must give a positive block count for each of the "
            f"{len(widths)} widths {list(widths)}"
        )
    blocks: list[Layer] = []
    for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
        blocks += _conv_bn_relu(width)  # the stage's first block sets its width
        for _ in range(depth - 1):
            blocks += _residual_pair(width) if residual else _conv_bn_relu(width)
        if i < len(widths) - 1:
            blocks.append(MaxPool2D(2))
    net = serial(
        *blocks, GlobalAvgPool2D(), Dropout(drop_rate), Dense(num_classes, w_init="glorot_uniform")
    )
    return Preset("dermascan_cnn", net, (3, image_size, image_size))


def _airbench_block(width: int, momentum: float) -> list[Layer]:
    def norm() -> Layer:
        return BatchNorm2D(momentum=momentum, eps=1e-12, scale=False)

    def conv() -> Layer:
        return Conv2D(width, 3, w_init="dirac", padding=1)

    return [conv(), MaxPool2D(2), norm(), GELU(), conv(), norm(), GELU()]


def airbench_cifar(
    num_classes: int = 10,
    widths: tuple[int, ...] = (64, 256, 256),
    batchnorm_momentum: float = 0.6,
    scale: float = 1 / 9,
) -> Preset:
    whiten = Conv2D(2 * 3 * 2 * 2, 2, w_init="fan_in_uniform")  # 24 filters, set by whitening
    blocks = [layer for w in widths for layer in _airbench_block(w, batchnorm_momentum)]
    net = serial(
        whiten, GELU(), *blocks, MaxPool2D(3), Flatten(),
        Dense(num_classes, w_init="fan_in_uniform"), Multiply(scale),
    )  # fmt: skip
    return Preset("airbench_cifar", net, (3, 32, 32))


_PRESETS: dict[str, Callable[..., Preset | Layer]] = {}


def register(name: str) -> Callable[[Callable[..., Preset | Layer]], Callable[..., Preset | Layer]]:
    """Decorator: register ``factory(num_classes=..., **options)`` as the preset ``name``, so
    that a config's ``model: name`` (with ``model_options``) builds it. The factory returns a
    :class:`Preset`, or a bare :class:`~fcnn.layers.Layer` that then takes the data's image
    shape. The built-in presets are registered the same way; a name is taken once (the same
    function again, a module imported twice, is harmless)."""

    def decorate(factory: Callable[..., Preset | Layer]) -> Callable[..., Preset | Layer]:
        if "num_classes" not in inspect.signature(factory).parameters:
            raise ValueError(f"preset {name!r}: the factory must take num_classes=")
        claim(_PRESETS, name, factory, "a model preset", "my_net")
        return factory

    return decorate


for _factory in (lenet_mnist, tiny_vgg_cifar, bn_net_mnist, dermascan_cnn, airbench_cifar):
    register(_factory.__name__)(_factory)


def names() -> list[str]:
    """The registered presets' names (built-in and plugins'), sorted."""
    return sorted(_PRESETS)


def options(name: str) -> dict[str, Any]:
    """The options (keyword arguments besides ``num_classes``) of the preset called ``name``,
    with their defaults (``inspect.Parameter.empty`` where there is none)."""
    params = inspect.signature(_factory_of(name)).parameters
    return {k: p.default for k, p in params.items() if k != "num_classes"}


def takes_option(name: str, option: str) -> bool:
    """Whether the preset called ``name`` accepts the keyword ``option``."""
    return name in _PRESETS and option in inspect.signature(_PRESETS[name]).parameters


def _factory_of(name: str) -> Callable[..., Preset | Layer]:
    try:
        return _PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {names()}") from None


def get(name: str, **options: Any) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the choices, or naming an option the
    preset does not take, otherwise."""
    factory = _factory_of(name)
    allowed = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(allowed))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in allowed.values()):
        raise ValueError(
            f"model {name!r} takes no option {unknown[0]!r}; its options are "
            f"{', '.join(k for k in allowed if k != 'num_classes') or 'none'}"
        )
    made = factory(**options)
    return made if isinstance(made, Preset) else Preset(name, made, None)


def from_spec(spec: dict[str, Any], input_shape: tuple[int, ...]) -> Preset:
    """A network written as a layer spec (the JSON ``layer.spec`` gives, e.g. from a config's
    ``model:``), for inputs of ``input_shape``; ValueError says what is wrong with it."""
    try:
        net = layers.from_spec(spec)
    except RecursionError:
        raise ValueError("the layer spec is nested too deeply") from None
    return Preset("custom", net, tuple(input_shape))
