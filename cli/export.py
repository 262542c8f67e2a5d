"""``fcnn export [CONFIG] --weights W --out OUT [--format folder|onnx] [--force]``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import attrs
import typer

from cli.common import console, fail, friendly_errors
from fcnn import checkpoint
from fcnn.inference import EXPORT_ARCHITECTURE, EXPORT_WEIGHTS, Model, load
from fcnn.io import atomic_write_text
from fcnn.onnx_export import OnnxExportError, export_onnx
from fcnn.training.run_config import model_config
from fcnn.training.setup import network_for


def _description(model: Model) -> dict:
    """The manifest of an exported model: all fcnn.load needs to answer exactly as the
    trained model does (calibration, decision rule and out-of-distribution detector
    included), without the training state."""
    kept = attrs.evolve(model.manifest, training=None, kind=None, extra={})
    return {k: v for k, v in kept.to_dict().items() if k != "format_version"}


def _trees(model: Model) -> dict:
    trees = {"params": model.params, "state": model.state}
    if model.ood is not None:
        trees["ood"] = model.ood.to_manifest()[1]  # the detector's arrays
    return trees


def _export_file(model: Model, out: Path) -> None:
    """One checkpoint file (what fcnn.load and every command read), written atomically."""
    checkpoint.save(out, _description(model), **_trees(model))
    load(out)  # prove it loads back


def _export_folder(model: Model, out: Path, force: bool) -> None:
    """model.json + weights.npz, written into a new folder beside ``out`` and renamed into
    place: an existing ``out`` is replaced whole (with ``force``) or not at all."""
    description = _description(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes 0700; give the folder the usual permissions
    try:
        checkpoint.save(staging / EXPORT_WEIGHTS, description, **_trees(model))
        atomic_write_text(staging / EXPORT_ARCHITECTURE, json.dumps(description, indent=2))
        load(staging)  # prove it loads back without the config
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


@friendly_errors
def export_command(
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz (or exported folder) to export")],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder (--format folder; a name ending in .npz: one checkpoint file) or "
            ".onnx file (--format onnx)"
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Optional: the architecture comes from the checkpoint; a CONFIG given must "
            "agree with it",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="folder: model.json + weights.npz, read by fcnn.load(DIR); onnx: one ONNX "
            "graph from raw pixels to probabilities and the decision (needs the \\[onnx] extra)",
        ),
    ] = "folder",
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field")] = None,
) -> None:
    """Write a trained model for use outside fcnn's training code: a folder or ONNX."""
    if format_ not in ("folder", "onnx"):
        raise fail(f"--format must be folder or onnx, got {format_!r}")
    if out.exists() and not force:
        raise fail(f"{out} exists; pass --force to replace it, or choose another --out")
    model = load(weights)
    if config is not None or set_:
        cfg = model_config(model.manifest.config, config, set_ or [], str(weights))
        preset = network_for(cfg, tuple(model.class_names), tuple(model.input_shape))
        if preset.network.spec != model.net.spec:  # model.net: rebuilt from the stored spec
            raise fail(f"{weights} does not match the architecture of model {cfg.model_name!r}")
    name = model.manifest.model or "model"
    if format_ == "onnx":
        if out.is_dir():
            raise fail(f"{out} is a folder; --format onnx writes one file, e.g. --out model.onnx")
        try:
            export_onnx(model, out)
        except OnnxExportError as exc:
            raise fail(str(exc)) from None
        console.print(
            f"exported {name} to {out} (ONNX opset 17: input 'pixels' (N, "
            f"{', '.join(map(str, model.input_shape))}) raw 0-255, outputs 'probabilities' "
            "and 'decision')",
            highlight=False,
            soft_wrap=True,
        )
        return
    if out.suffix == ".npz":
        if out.is_dir():
            raise fail(f"{out} is a folder; an --out ending in .npz names one checkpoint file")
        _export_file(model, out)
        console.print(f"exported {name} to {out} (one checkpoint file)", highlight=False)
        return
    _export_folder(model, out, force)
    console.print(
        f"exported {name} to {out}/ ({EXPORT_ARCHITECTURE}, {EXPORT_WEIGHTS})",
        highlight=False,
        soft_wrap=True,
    )
