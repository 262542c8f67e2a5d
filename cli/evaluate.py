"""``fcnn evaluate [CONFIG] --weights W``: the model's own stored config decides the split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from cli.common import console, fail, friendly_errors
from fcnn.decision import DecisionRule
from fcnn.evaluation import evaluate_model, plot_reliability, report_markdown
from fcnn.inference import load
from fcnn.io import atomic_write_text
from fcnn.training.data import prepare_data
from fcnn.training.reports import plot_confusion
from fcnn.training.run_config import model_config


def _default_figures(weights: Path, split: str) -> Path:
    """Beside the weights when they sit in a run folder (one that holds last.npz), else under
    runs/evaluations/: never next to a shipped or tracked model."""
    name = f"{weights.stem}-{split}"
    if weights.is_file() and (weights.parent / "last.npz").is_file():
        return weights.parent / f"evaluation-{name}"
    return Path("runs") / "evaluations" / name


@friendly_errors
def evaluate_command(
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz or exported folder")],
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Optional: the config is read from the checkpoint; a CONFIG given must agree "
            "with it on dataset, model and data (needed only for folders exported by an older "
            "fcnn, which stored no config)",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="test, or val (also: validation)")] = "test",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data root (default: $FCNN_DATA, else the one the model's run read)"),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field")] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the metrics as Markdown tables to this file")
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the confusion matrix and reliability diagram [default: "
            "evaluation-<weights>-<split> in the weights' run folder, else "
            "runs/evaluations/<weights>-<split>]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on a held-out split."""
    split = {"validation": "val"}.get(split, split)
    if split not in ("test", "val"):
        raise fail(f"--split must be test or val (or validation), got {split!r}")
    model = load(weights)
    cfg = model_config(model.manifest.config, config, set_ or [], str(weights))
    if model.manifest.dataset not in (None, cfg.dataset):
        raise fail(
            f"{weights} was trained on {model.manifest.dataset}, the config uses {cfg.dataset}"
        )
    if figures is None:
        figures = _default_figures(weights, split)
    outputs = [figures / "confusion.png", figures / "reliability.png"]
    outputs += [markdown] if markdown is not None else []
    replaced = {p for p in outputs if p.exists()}
    data = prepare_data(cfg, data_dir, stored_root=model.manifest.data_root)
    report = evaluate_model(model, data.test if split == "test" else data.val)
    report["split"] = split
    report["weights"] = str(weights)
    title = f"{cfg.name} ({split} split)"
    plot_confusion(np.array(report["confusion_matrix"]), report["class_names"], outputs[0], title)
    plot_reliability(report, outputs[1], title)
    report["figures"] = [str(outputs[0]), str(outputs[1])]
    report = {k: v for k, v in report.items() if not k.startswith("_")}
    if markdown is not None:
        atomic_write_text(markdown, report_markdown(report))
    if json_:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(
        "wrote " + ", ".join(f"{p} (replaced)" if p in replaced else str(p) for p in outputs),
        highlight=False,
        soft_wrap=True,
    )
    rule = DecisionRule.from_dict(report["decision"])
    console.print(
        f"{split} split, {report['n']} images: accuracy [bold]{report['accuracy']:.4f}[/], "
        f"balanced accuracy {report['balanced_accuracy']:.4f}, "
        f"macro AUC {report['macro_auc']:.4f}, "
        f"ECE {report['ece']:.4f} (uncalibrated {report['ece_uncalibrated']:.4f}); "
        f"answered class: {rule.describe(report['class_names'])}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("class", "precision", "recall", "F1", "AUC", "support")
    for row in report["per_class"]:
        auc = "-" if row["auc"] is None else f"{row['auc']:.4f}"
        table.add_row(
            row["class"],
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            auc,
            str(row["support"]),
        )
    console.print(table)
    names = report["class_names"]
    conf = Table("true \\ predicted", *names, title="confusion matrix")
    for name, counts in zip(names, report["confusion_matrix"], strict=True):
        conf.add_row(name, *(str(c) for c in counts))
    console.print(conf)
    for column, groups in report["subgroups"].items():
        sub_table = Table(column, "n", "accuracy", "balanced acc.", "macro AUC", title="subgroups")
        for value, m in groups.items():
            auc = "-" if m["macro_auc"] is None else f"{m['macro_auc']:.3f}"
            sub_table.add_row(
                value, str(m["n"]), f"{m['accuracy']:.3f}", f"{m['balanced_accuracy']:.3f}", auc
            )
        console.print(sub_table)
