"""``fcnn export CONFIG --weights W --out DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail, friendly_errors
from fcnn import checkpoint, models
from fcnn.inference import EXPORT_ARCHITECTURE, EXPORT_WEIGHTS, load
from fcnn.io import atomic_write_text
from fcnn.training.config import load_config


@friendly_errors
def export_command(
    config: Annotated[Path, typer.Argument(help="The YAML config the model was trained with")],
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz to export")],
    out: Annotated[Path, typer.Option(help="Folder to write model.json and weights.npz into")],
) -> None:
    """Write the architecture as JSON and the weights as .npz; fcnn.load(DIR) reads them back."""
    cfg = load_config(config)
    model = load(weights)
    preset = models.get(cfg.model, num_classes=len(model.class_names), **cfg.model_options)
    if preset.network.spec != model.manifest["architecture"]:
        raise fail(f"{weights} does not match the architecture of model {cfg.model!r} in {config}")
    keep = (
        "architecture",
        "model",
        "input_shape",
        "class_names",
        "dataset",
        "normalization",
        "metrics",
        "fcnn_version",
    )
    description = {k: model.manifest[k] for k in keep if k in model.manifest}
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save(out / EXPORT_WEIGHTS, description, params=model.params, state=model.state)
    atomic_write_text(out / EXPORT_ARCHITECTURE, json.dumps(description, indent=2))
    load(out)  # prove it loads back without the config
    console.print(f"exported {cfg.model} to {out}/ ({EXPORT_ARCHITECTURE}, {EXPORT_WEIGHTS})")
