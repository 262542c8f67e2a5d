"""A real ``fcnn train`` process stopped by SIGINT or SIGTERM, in one process or two: it saves
last.npz, prints the resume hint and exits 130, the same way at any process count."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fcnn import checkpoint
from fcnn.distributed.launch import find_mpiexec

REPO = Path(__file__).resolve().parents[2]


def _blocks(n, rng):
    """Learnable 1×12×12 images: class c is a bright row band at a place set by c."""
    labels = np.arange(n) % 4
    images = rng.integers(0, 40, (n, 1, 12, 12)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 0, 3 * c : 3 * c + 3] = 240
    return images, labels


def _config(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _blocks(2000, rng)
    np.savez(tmp_path / "blocks.npz", x_train=x, y_train=y)
    (tmp_path / "blocks.yaml").write_text(
        "dataset: arrays\n"
        "data: {path: blocks.npz}\n"
        "model: {type: serial, layers: [{type: Flatten}, {type: Dense, out_features: 64},\n"
        "        {type: ReLU}, {type: Dense, out_features: 4}]}\n"
        "train: {epochs: 100000, lr: 0.01, batch_size: 64}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
    )
    return tmp_path / "blocks.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("procs", [1, 2])
def test_a_signal_to_fcnn_train_saves_last_and_prints_the_resume_hint(tmp_path, procs, sig):
    if procs > 1 and find_mpiexec() is None:
        pytest.fail("MPI is a dependency of fcnn: pip install -e . brings mpiexec")
    env = {**os.environ, "PYTHONPATH": str(REPO), "FCNN_BUSY_CORES": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "train", str(_config(tmp_path)), "--procs",
         str(procs), "--no-progress"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait for a finished epoch: the run is in its loop
        seen.append(line)
        if line.startswith("epoch 2/") or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    output = "".join(seen) + out
    assert proc.returncode == 130, output
    assert "interrupted: saved " in output and "fcnn train --resume" in output, output
    (last,) = (tmp_path / "runs").glob("*/last.npz")
    assert checkpoint.load(last).info.resumable
