"""``fcnn summary CONFIG`` or ``fcnn summary --weights W``: a network layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail, friendly_errors
from fcnn import checkpoint, layers
from fcnn.data import load_dataset
from fcnn.model_summary import summary
from fcnn.training.config import load_config
from fcnn.training.data import data_request
from fcnn.training.setup import network_for


@friendly_errors
def summary_command(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="A training config: its network for its data set (read to learn the image "
            "shape and the classes)",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="A trained model (.npz) instead of a config")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root (default: $FCNN_DATA), with a CONFIG")
    ] = None,
) -> None:
    """Each layer's tree path, type, output shape, parameters and multiply-adds, with totals
    (the paths are what train.freeze and checkpoints name)."""
    if (config is None) == (weights is None):
        raise fail("give a CONFIG or --weights W (one of them)")
    if weights is not None:
        info = checkpoint.load(weights).info
        if info.architecture is None or info.input_shape is None:
            raise fail(f"{weights} stores no architecture or input shape")
        try:
            net = layers.from_spec(info.architecture)
        except ValueError as exc:
            raise fail(f"{weights}: the architecture cannot be built: {exc}") from None
        shape, title = tuple(info.input_shape), f"{weights} ({info.describe()})"
    else:
        assert config is not None  # one of the two, checked above
        cfg = load_config(config, set_ or [])
        train = load_dataset(cfg.dataset, data_request(cfg, data_dir)).train
        net = network_for(cfg, train.class_names, train.image_shape).network
        shape, title = train.image_shape, f"{config} ({cfg.model_name} on {cfg.dataset})"
    console.print(title, highlight=False, soft_wrap=True, markup=False)
    console.print(str(summary(net, shape)), highlight=False, soft_wrap=True, markup=False)
