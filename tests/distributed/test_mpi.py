"""Real multi-process runs through mpiexec (mpi4py and the mpich wheel, dependencies of fcnn)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fcnn import checkpoint, tree
from fcnn.distributed.launch import find_mpiexec, mpiexec_command
from fcnn.training.run import TrainingInterrupted, train

MPIEXEC = find_mpiexec()
try:
    import mpi4py  # noqa: F401

    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False

pytestmark = pytest.mark.skipif(
    MPIEXEC is None or not HAVE_MPI4PY,
    reason="MPI is not installed: pip install -e . (it brings mpi4py and an mpiexec)",
)
REPO = Path(__file__).resolve().parents[2]


def _fcnn(*args, timeout=240):
    # other programs' load at the moment of the test must not change the process count
    env = {**os.environ, "PYTHONPATH": str(REPO), "FCNN_BUSY_CORES": "0"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _overrides(tmp_path, name):
    return [
        f"runs_dir={tmp_path / name / 'runs'}",
        f"reports_dir={tmp_path / name / 'reports'}",
        "data.limit_train=1200",
        "data.limit_test=500",
        "train.batch_size=64",
        "callbacks=[]",
    ]


def _params(path):
    return checkpoint.load(path).group("params")


def _one_run(tmp_path, name):
    runs = list((tmp_path / name / "runs").iterdir())
    assert len(runs) == 1, f"expected one run folder, found {runs}"
    return runs[0]


@pytest.mark.data
def test_two_processes_train_the_same_lenet_as_one(real_data_root, tmp_path):
    sets = [*_overrides(tmp_path, "two"), "train.epochs=1"]
    args = ["train", "configs/mnist.yaml", "--no-progress", "--procs", "2"]
    done = _fcnn(*args, *[a for s in sets for a in ("--set", s)], "--data-dir", real_data_root)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "trained with 2 processes" in done.stdout
    assert done.stdout.count("epoch 1/1") == 1  # one progress summary: rank 0's
    two = _one_run(tmp_path, "two")  # rank 0 alone created a run folder
    rows = (tmp_path / "two" / "reports" / "results.csv").read_text().splitlines()
    assert len(rows) == 2  # header and rank 0's one row

    from fcnn.training.config import load_config

    cfg = load_config("configs/mnist.yaml", [*_overrides(tmp_path, "one"), "train.epochs=1"])
    train(cfg, data_dir=real_data_root, echo=lambda _: None)
    one = _one_run(tmp_path, "one")
    a, b = _params(two / "last.npz"), _params(one / "last.npz")
    for x, y in zip(tree.leaves(a), tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


class _StopMidEpoch:
    """Progress display that presses Ctrl-C at the given step of the second epoch."""

    def __init__(self, at_step):
        self.epoch, self.at_step = 0, at_step

    def start_epoch(self, epoch, epochs, steps):
        self.epoch = epoch

    def step(self, done, loss, acc, images_per_s):
        if self.epoch == 1 and done == self.at_step:
            raise KeyboardInterrupt

    def end_epoch(self, summary):
        pass


@pytest.mark.data
def test_a_one_process_run_resumes_on_two_processes(real_data_root, tmp_path):
    from fcnn.training.config import load_config

    cfg = load_config("configs/mnist.yaml", [*_overrides(tmp_path, "cut"), "train.epochs=2"])
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, data_dir=real_data_root, echo=lambda _: None, progress=_StopMidEpoch(5))
    resumed = _fcnn(
        "train", "--no-progress", "--procs", "2",
        "--data-dir", str(real_data_root), "--resume", str(stopped.value.path),
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout

    whole = load_config("configs/mnist.yaml", [*_overrides(tmp_path, "whole"), "train.epochs=2"])
    train(whole, data_dir=real_data_root, echo=lambda _: None)
    a = _params(stopped.value.path)
    b = _params(_one_run(tmp_path, "whole") / "last.npz")
    for x, y in zip(tree.leaves(a), tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_an_error_on_the_ranks_stops_them_all_with_the_message(tmp_path):
    done = _fcnn(
        "train", "configs/mnist.yaml", "--no-progress", "--procs", "2",
        "--data-dir", str(tmp_path / "nowhere"), timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "nowhere" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_mpiexec_without_procs_and_procs_under_mpiexec_is_refused(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = mpiexec_command(MPIEXEC, 2, ["train", "configs/mnist.yaml", "--procs", "2"])
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "leave --procs out" in done.stderr


@pytest.mark.data
def test_train_without_procs_uses_every_usable_core(real_data_root, tmp_path):
    from fcnn.runtime import usable_cores

    sets = [*_overrides(tmp_path, "auto"), "train.epochs=1"]
    done = _fcnn(
        "train", "configs/mnist.yaml", "--no-progress", "--data-dir", str(real_data_root),
        *[a for s in sets for a in ("--set", s)],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    expected = min(usable_cores(), 64 // 32)
    run = _one_run(tmp_path, "auto")
    assert json.loads((run / "summary.json").read_text())["processes"] == expected
    log = (run / "log.txt").read_text()
    assert f"processes: {expected} (" in log and "--procs auto" in log


def _started_after_one_epoch(real_data_root, tmp_path, name):
    """A 2-process ``fcnn train`` of 50 short epochs in its own process group (as a
    terminal would start it), once its first epoch has ended; and the lines it printed."""
    cmd = [
        sys.executable, "-m", "cli.main", "train", "configs/mnist.yaml", "--no-progress",
        "--procs", "2", "--data-dir", str(real_data_root),
        *[a for s in [*_overrides(tmp_path, name), "train.epochs=50"] for a in ("--set", s)],
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    for line in child.stdout:
        seen.append(line)
        if line.startswith("epoch 1/50"):
            break
    return child, seen


def _stopped_and_saved(child, seen, tmp_path, name):
    out, _ = child.communicate(timeout=60)  # every rank exits; no one hangs in a collective
    text = "".join(seen) + out
    assert child.returncode == 130 and "interrupted: saved" in text, text
    last = _one_run(tmp_path, name) / "last.npz"
    assert checkpoint.load(last).info.training.epoch >= 1  # a completed step's progress


@pytest.mark.data
def test_ctrl_c_stops_every_rank_after_the_same_step_and_saves(real_data_root, tmp_path):
    import signal

    child, seen = _started_after_one_epoch(real_data_root, tmp_path, "cut")
    os.killpg(child.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
    _stopped_and_saved(child, seen, tmp_path, "cut")


@pytest.mark.data
def test_sigterm_to_the_launcher_alone_stops_the_ranks_and_saves(real_data_root, tmp_path):
    import signal

    child, seen = _started_after_one_epoch(real_data_root, tmp_path, "term")
    child.send_signal(signal.SIGTERM)  # as timeout(1) or a scheduler sends it: not to the ranks
    _stopped_and_saved(child, seen, tmp_path, "term")
    time.sleep(0.5)  # nothing of the run is left: mpiexec and the ranks were in its group
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)
