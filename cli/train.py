"""``fcnn train CONFIG``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import RichEpochProgress, console, fail, friendly_errors
from fcnn.training.config import load_config
from fcnn.training.run import TrainingDiverged, TrainingInterrupted, train


@friendly_errors
def train_command(
    config: Annotated[Path, typer.Argument(help="YAML config, e.g. configs/mnist.yaml")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: --set train.epochs=3 (repeatable)"),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder holding mnist/, cifar10/, ham10000/ (default: $FCNN_DATA)"),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue exactly from a run's last.npz")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch")] = True,
) -> None:
    """Train the model a config describes; writes a run folder, checkpoints and reports."""
    cfg = load_config(config, set_ or [])
    bar = RichEpochProgress(enabled=progress)
    try:
        result = train(
            cfg,
            data_dir=data_dir,
            resume=resume,
            progress=bar,
            echo=lambda s: console.print(s, highlight=False),
        )
    except TrainingInterrupted as exc:
        bar.close()
        console.print(
            f"interrupted: saved {exc.path}; continue with fcnn train {config} --resume {exc.path}",
            highlight=False,
        )
        raise typer.Exit(130) from None
    except TrainingDiverged as exc:
        bar.close()
        raise fail(str(exc), code=3) from None
    if result.best_checkpoint:
        console.print(f"best checkpoint: {result.best_checkpoint}", highlight=False)
