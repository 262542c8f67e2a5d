"""This checkout's training epochs against another commit's, interleaved in one run.

    python -m benchmarks.versus --base REV [--jobs dermascan_96 bn_net_mnist] [--rounds 3]
                                [--procs 2] [--out reports/versus.md]

The VM this project runs on drifts by tens of percent within minutes, so a speed-up is only
believable when both sides run in the same minutes. This checks ``REV`` out into a
temporary git worktree and times one epoch of each job (``benchmarks.epoch``: the epoch
benchmark's data, batch 128, SGD) on ``--procs`` MPI processes, as ``fcnn train --procs``
runs, alternately from the worktree and from this checkout: rounds go base, head, then
head, base, and so on, so a steady drift hits both alike. Each side imports its own
``fcnn`` (the command runs in that side's folder). Ratios are head / base per round; the
report gives their median and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.data import EPOCH_JOBS, REPO
from fcnn.distributed.launch import find_mpiexec
from fcnn.io import atomic_write_text


def _epoch(folder: Path, mpiexec: str, procs: int, job: str, data_dir: str | None) -> dict:
    """One epoch of ``job`` run from ``folder`` (whose ``fcnn`` it imports): the JSON line
    of ``benchmarks.epoch``, plus the file its ``fcnn`` came from."""
    code = "import fcnn, sys; print(fcnn.__file__)"
    origin = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, check=True, capture_output=True, text=True
    ).stdout.strip()
    cmd = [mpiexec, "-n", str(procs), sys.executable, "-m", "benchmarks.epoch", job]
    cmd += ["--data-dir", data_dir] if data_dir else []
    done = subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "fcnn": origin}


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """``rev`` checked out into a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fcnn-versus-") as tmp:
        worktree = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), rev],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            yield worktree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False
            )


def _rev(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.versus", description=__doc__)
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--jobs", nargs="+", choices=list(EPOCH_JOBS), default=["dermascan_96"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--data-dir", default=None, help="data root (default: $FCNN_DATA)")
    parser.add_argument("--out", default="reports/versus.md")
    args = parser.parse_args(argv)
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise SystemExit("benchmarks.versus needs mpiexec: pip install -e . brings it")
    base, head = _rev(args.base), _rev("HEAD")
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    head_name = f"{head}{' + uncommitted changes' if dirty else ''}"
    rows = []
    with checkout(base) as worktree:
        sides = {"base": worktree, "head": REPO}
        for job in args.jobs:
            seconds: dict[str, list[float]] = {"base": [], "head": []}
            for r in range(args.rounds):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                for side in order:
                    result = _epoch(sides[side], mpiexec, args.procs, job, args.data_dir)
                    seconds[side].append(result["seconds"])
                    print(
                        f"{job} round {r + 1} {side}: {result['seconds']:.1f} s ({result['fcnn']})",
                        flush=True,
                    )
            ratios = [h / b for h, b in zip(seconds["head"], seconds["base"], strict=True)]
            rows.append((job, seconds, ratios))
    lines = [
        f"# Training epochs: {head_name} against {base}",
        "",
        f"`python -m benchmarks.versus --base {args.base} --jobs {' '.join(args.jobs)} "
        f"--rounds {args.rounds} --procs {args.procs}`: one epoch per side and round on "
        f"{args.procs} MPI processes (`benchmarks.epoch`, batch 128), the sides alternating "
        "(base, head, then head, base, ...). Seconds per epoch; the ratio is head / base, "
        "the median of the rounds' ratios with their range.",
        "",
        "| job | base s/epoch (rounds) | head s/epoch (rounds) | head / base |",
        "| --- | --- | --- | --- |",
    ]
    for job, seconds, ratios in rows:
        cells = [
            ", ".join(f"{s:.1f}" for s in seconds["base"]),
            ", ".join(f"{s:.1f}" for s in seconds["head"]),
        ]
        lines.append(
            f"| {job} | {cells[0]} | {cells[1]} | **{statistics.median(ratios):.2f}×** "
            f"({min(ratios):.2f}–{max(ratios):.2f}) |"
        )
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
