"""The benchmark results as a Markdown report."""

from __future__ import annotations

import statistics
from typing import Any


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def _header(env: dict[str, Any]) -> list[str]:
    torch = env.get("torch", "not installed")
    threads = f" with {env['torch_threads']} threads" if "torch_threads" in env else ""
    quick = " **Quick run: sizes too small to be a result.**" if env.get("quick") else ""
    return [
        "# fcnn benchmarks",
        "",
        f"fcnn {env['fcnn']}, NumPy {env['numpy']}, Python {env['python']}, {env['cpus']} CPUs "
        f"({env['machine']}); PyTorch {torch}{threads}. float32 GEMM peak (2048², NumPy BLAS): "
        f"{env['gemm_peak_gflops']:.0f} GFLOP/s.{quick}",
        "",
        *_epoch_data(env.get("epoch_data")),
        f"Peak resident memory of the fcnn part: {env.get('fcnn_peak_rss_mb', 0):.0f} MB.",
    ]


def _epoch_data(data: dict[str, str] | str | None) -> list[str]:
    """What each epoch row trained on (older reports name one data set for all rows)."""
    if not data:
        return []
    if isinstance(data, str):
        return [f"Epoch data: {data}."]
    return ["Epoch data:", "", *(f"- {name}: {what}" for name, what in data.items()), ""]


def _median_ratio(times: list[float], torch_times: list[float] | None) -> str:
    """Median of the per-round ratios of ``times`` to PyTorch's, with their range when there
    are several rounds."""
    if not torch_times:
        return "–"
    ratios = [a / b for a, b in zip(times, torch_times, strict=True)]
    spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.2f}×{spread}"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median([run[key] for run in runs])


def _seconds(runs: list[dict[str, Any]] | None) -> list[float] | None:
    return [run["seconds"] for run in runs] if runs else None


def _epochs(epochs: dict[str, Any]) -> list[str]:
    procs = next(
        (r["fcnn_parallel"][0]["procs"] for r in epochs.values() if "fcnn_parallel" in r), 0
    )
    rounds = max(len(r["fcnn"]) for r in epochs.values())
    where = (
        f"fcnn in one process and on {procs} MPI processes (`fcnn train --procs {procs}`), "
        if procs
        else "fcnn in one process, "
    )
    lines = [
        "",
        "## Training epochs (ratio = fcnn time / PyTorch time)",
        "",
        f"{where}PyTorch in one process with its threads; {rounds} round(s) of full epochs, "
        "each round the engines back to back. Times are medians; a ratio is the median of the "
        "rounds' ratios (their range in brackets).",
        "",
        "| network | fcnn s/epoch | fcnn img/s | PyTorch s/epoch | PyTorch img/s | ratio "
        "| fcnn on processes s/epoch | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in epochs.items():
        f, t, p = r["fcnn"], r.get("torch"), r.get("fcnn_parallel")
        cells = [name, f"{_median(f, 'seconds'):.1f}", f"{_median(f, 'images_per_s'):.0f}"]
        if t:
            cells += [f"{_median(t, 'seconds'):.1f}", f"{_median(t, 'images_per_s'):.0f}"]
        else:
            cells += ["–", "–"]
        cells.append(_median_ratio(_seconds(f), _seconds(t)))
        if p:
            cells += [f"{_median(p, 'seconds'):.1f}", _median_ratio(_seconds(p), _seconds(t))]
        else:
            cells += ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _inference(inference: dict[str, Any]) -> list[str]:
    rounds = max((len(_rounds_ms(f)) for r in inference.values() for f in r["fcnn"]), default=1)
    lines = [
        "",
        "## Inference (eval mode)",
        "",
        "fcnn: `predict_logits` (BatchNorm folded into the convolution before it, each batch"
        " split over the cores' threads); PyTorch: `model.eval()` under `torch.no_grad()`"
        f" (eager: BatchNorm runs as its own op). {rounds} round(s), each fcnn then PyTorch"
        " back to back; times are medians, a ratio is the median of the rounds' ratios"
        " (their range in brackets).",
        "",
        "| network | batch | fcnn ms | fcnn img/s | PyTorch ms | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in inference.items():
        for i, f in enumerate(r["fcnn"]):
            t = r["torch"][i] if "torch" in r else None
            torch_cells = "– | –"
            if t:
                torch_cells = f"{t['ms']:.2f} | {_median_ratio(_rounds_ms(f), _rounds_ms(t))}"
            fcnn_cells = f"{f['ms']:.2f} | {f['images_per_s']:.0f}"
            lines.append(f"| {name} | {f['batch']} | {fcnn_cells} | {torch_cells} |")
    return lines


def _rounds_ms(figure: dict[str, Any]) -> list[float]:
    """The per-round times of one inference figure (one round when it has no rounds)."""
    return figure.get("rounds_ms", [figure["ms"]])


def _gflops(row: dict[str, Any], peak: float) -> str:
    if row["fwd_gflops"] is None:
        return "–"
    f, b = row["fwd_gflops"], row["bwd_gflops"]
    return f"{f:.0f}/{b:.0f} ({f / peak:.0%}/{b / peak:.0%})"


def _layers(name: str, r: dict[str, Any], peak: float) -> list[str]:
    rows, t_rows = r["fcnn"], r.get("torch")
    total_f = sum(x["fwd_ms"] for x in rows)
    total_b = sum(x["bwd_ms"] for x in rows)
    lines = [
        "",
        f"## Layers of {name} (batch 128; where the time goes)",
        "",
        "| # | layer | out shape | fwd ms | bwd ms | share | GFLOP/s fwd/bwd (of peak) "
        "| PyTorch fwd/bwd ms | ratio fwd/bwd |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, x in enumerate(rows):
        share = (x["fwd_ms"] + x["bwd_ms"]) / (total_f + total_b)
        torch_cells = "– | –"
        if t_rows:
            t = t_rows[i]
            ratios = f"{_ratio(x['fwd_ms'], t['fwd_ms'])}/{_ratio(x['bwd_ms'], t['bwd_ms'])}"
            torch_cells = f"{t['fwd_ms']:.2f}/{t['bwd_ms']:.2f} | {ratios}"
        lines.append(
            f"| {i} | {x['layer']} | {tuple(x['out_shape'])} | {x['fwd_ms']:.2f} | "
            f"{x['bwd_ms']:.2f} | {share:.0%} | {_gflops(x, peak)} | {torch_cells} |"
        )
    torch_total = "| "
    if t_rows:
        tf = sum(t["fwd_ms"] for t in t_rows)
        tb = sum(t["bwd_ms"] for t in t_rows)
        torch_total = f"{tf:.1f}/{tb:.1f} | {_ratio(total_f, tf)}/{_ratio(total_b, tb)}"
    lines.append(f"| | total | | {total_f:.1f} | {total_b:.1f} | | | {torch_total} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = _header(env)
    if results["epochs"]:
        lines += _epochs(results["epochs"])
    if results["inference"]:
        lines += _inference(results["inference"])
    for name, r in results["layers"].items():
        lines += _layers(name, r, env["gemm_peak_gflops"])
    return "\n".join(lines) + "\n"
