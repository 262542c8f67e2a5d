"""``fcnn predict --weights W IMAGE...``: the model's answer for each image, as the site and
the ONNX ``decision`` output give it, with the probabilities beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, friendly_errors
from fcnn.answer import Answer
from fcnn.inference import Model, load
from webapp.service import class_terms, load_conditions


def _conditions(model: Model) -> dict[str, dict[str, str]] | None:
    """The DermaScan conditions of the model's classes, when it is a skin-lesion model (its
    risk levels and display names are the site's); None for any other model."""
    conditions = load_conditions()
    return conditions if set(model.class_names) <= set(conditions) else None


def _line(path: Path, answer: Answer, k: int) -> str:
    name, p = answer.class_names[answer.top], float(answer.probabilities[answer.top])
    parts = [f"{path}: {name} ({p:.1%})"]
    if answer.risk_level is not None:
        parts.append(f"risk {answer.risk_level}")
    if answer.uncertain:
        parts.append(f"uncertain ({(answer.uncertain_reason or '').replace('_', ' ')})")
    ranked = ", ".join(f"{c} {q:.1%}" for c, q in answer.ranked(k))
    return "; ".join(parts) + f"; probabilities {ranked}"


@friendly_errors
def predict_command(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify")],
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz or exported folder")],
    top_k: Annotated[
        int, typer.Option(min=1, help="How many classes to list by probability per image")
    ] = 3,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The model's answer for each image, by the answer rules stored in it (the class its
    decision rule names, which may weigh rare classes up; the risk level and the uncertain
    flag when the model has them), and the most probable classes beside it.

    The JSON keys mean what DermaScan's API's mean: ``top`` is the model's answer,
    ``predictions`` the classes by probability."""
    model = load(weights)
    conditions = _conditions(model)
    risk, names = class_terms(conditions, model.class_names) if conditions else (None, None)
    answers = model.answers(model.load_images(images), class_risk=risk)
    k = min(top_k, len(model.class_names))
    if json_:
        payload = [
            {"image": str(p), **a.to_dict(k, names), "model_version": model.manifest.describe()}
            for p, a in zip(images, answers, strict=True)
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    for path, answer in zip(images, answers, strict=True):
        console.print(_line(path, answer, k), highlight=False, soft_wrap=True, markup=False)
