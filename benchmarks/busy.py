"""The default training job on an idle machine against the same job beside a busy core.

    python -m benchmarks.busy [--rounds 3] [--out reports/busy.md] [-- fcnn train arguments]

A user's machine is rarely idle. This times the whole command a user types (default:
``fcnn train configs/mnist.yaml --set train.epochs=2``, every core by default) alternately
on the idle machine and with one busy-looping process (``python -c 'while 1: pass'``)
started just before and killed just after it, round by round, and reports each pair's
ratio (busy / idle). Each run trains in a temporary folder, so nothing is left behind;
paths in the job are relative to the repository.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.data import REPO
from fcnn.io import atomic_write_text

DEFAULT_JOB = ["train", "configs/mnist.yaml", "--set", "train.epochs=2"]


def _fcnn() -> list[str]:
    found = shutil.which("fcnn")
    return [found] if found else [sys.executable, "-m", "cli.main"]


def _from_repo(arg: str) -> str:
    """``arg`` as an absolute path when it names a file of the repository (the job runs in a
    temporary folder), else unchanged."""
    path = REPO / arg
    return str(path) if not arg.startswith("-") and path.is_file() else arg


def _timed_run(args: list[str], busy: bool) -> float:
    """Seconds of one ``fcnn`` command, run in a temporary folder, beside a busy loop or not."""
    loop = (
        subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    )  # one core's worth of someone else's work
    try:
        with tempfile.TemporaryDirectory(prefix="fcnn-busy-") as folder:
            t0 = time.perf_counter()
            subprocess.run(
                [*_fcnn(), *[_from_repo(a) for a in args], "--no-progress"],
                cwd=folder,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            return time.perf_counter() - t0
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.busy", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="reports/busy.md")
    parser.add_argument("job", nargs="*", help="fcnn arguments (default: the MNIST 2-epoch job)")
    args = parser.parse_args(argv)
    job = args.job or DEFAULT_JOB
    idle, busy = [], []
    for r in range(args.rounds):
        for is_busy in (False, True) if r % 2 == 0 else (True, False):
            seconds = _timed_run(job, is_busy)
            (busy if is_busy else idle).append(seconds)
            print(f"round {r + 1} {'busy' if is_busy else 'idle'}: {seconds:.1f} s", flush=True)
    ratios = [b / i for b, i in zip(busy, idle, strict=True)]
    text = "\n".join(
        [
            "# The default job beside a busy core",
            "",
            f"`python -m benchmarks.busy --rounds {args.rounds}`: `fcnn {' '.join(job)}` as "
            "typed, alternately on the idle machine and beside `python -c 'while 1: pass'` "
            "(idle, busy, then busy, idle, ...). Whole-command seconds.",
            "",
            "| round | idle s | busy s | busy / idle |",
            "| --- | --- | --- | --- |",
            *(
                f"| {r + 1} | {i:.1f} | {b:.1f} | {b / i:.2f}× |"
                for r, (i, b) in enumerate(zip(idle, busy, strict=True))
            ),
            f"| median | {statistics.median(idle):.1f} | {statistics.median(busy):.1f} | "
            f"**{statistics.median(ratios):.2f}×** |",
            "",
        ]
    )
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
