"""``fcnn predict --weights W IMAGE...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, friendly_errors
from fcnn.inference import load


@friendly_errors
def predict_command(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify")],
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz or exported folder")],
    top_k: Annotated[int, typer.Option(min=1, help="How many classes to show per image")] = 3,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The most likely classes for each image, with probabilities."""
    model = load(weights)
    results = model.predict_files(images, k=min(top_k, len(model.class_names)))
    if json_:
        payload = [
            {"image": str(p), "top": [{"class": c, "probability": pr} for c, pr in r]}
            for p, r in zip(images, results, strict=True)
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    for path, ranked in zip(images, results, strict=True):
        shown = ", ".join(f"{c} {p:.1%}" for c, p in ranked)
        console.print(f"{path}: {shown}", highlight=False, soft_wrap=True)
