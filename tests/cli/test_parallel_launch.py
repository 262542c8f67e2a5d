"""``fcnn train --procs N`` and the BLAS threads of processes that mpiexec starts."""

import sys

from typer.testing import CliRunner

import cli.train
from cli.main import app
from cli.threads import pin_blas_threads, pin_blas_threads_for_serving
from fcnn.distributed.launch import mpiexec_command

runner = CliRunner()


def test_mpiexec_processes_share_the_cores_unless_the_user_chose():
    env = {"PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}
    assert pin_blas_threads(env, cores=8) == 4
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "4"
    env = {"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
    assert pin_blas_threads(env, cores=2) == 1  # never below one thread
    chosen = {"PMI_SIZE": "2", "OMP_NUM_THREADS": "3"}
    assert pin_blas_threads(chosen, cores=8) is None and chosen["OMP_NUM_THREADS"] == "3"
    alone = {}
    assert pin_blas_threads(alone, cores=8) is None and alone == {}


def test_the_launch_command_reruns_fcnn_in_each_process():
    cmd = mpiexec_command("/opt/mpi/bin/mpiexec", 3, ["train", "c.yaml", "--no-progress"])
    assert cmd == [
        "/opt/mpi/bin/mpiexec", "-n", "3", sys.executable, "-m", "cli.main",
        "train", "c.yaml", "--no-progress",
    ]  # fmt: skip


def test_procs_without_mpi_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(cli.train, "find_mpiexec", lambda: None)
    result = runner.invoke(app, ["train", "configs/mnist.yaml", "--procs", "2"])
    assert result.exit_code == 2
    assert "pip install -e '.[mpi]'" in result.output and "Traceback" not in result.output


def test_procs_passes_every_option_on(monkeypatch, tmp_path):
    seen = {}

    class FakePopen:
        def __init__(self, cmd):
            seen["cmd"] = cmd

        def wait(self):
            return 0

    monkeypatch.setattr(cli.train, "find_mpiexec", lambda: "/x/mpiexec")
    monkeypatch.setattr(cli.train.subprocess, "Popen", FakePopen)
    result = runner.invoke(
        app,
        ["train", "configs/mnist.yaml", "--procs", "2", "--set", "train.epochs=1",
         "--data-dir", str(tmp_path), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0
    assert seen["cmd"][:3] == ["/x/mpiexec", "-n", "2"]
    assert seen["cmd"][-7:] == [
        "train", "configs/mnist.yaml", "--set", "train.epochs=1",
        "--data-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip


def test_serve_uses_one_blas_thread_per_process_unless_the_user_chose():
    env = {}
    assert pin_blas_threads_for_serving(["fcnn", "serve", "--workers", "2"], env)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    chosen = {"OPENBLAS_NUM_THREADS": "2"}
    assert not pin_blas_threads_for_serving(["fcnn", "serve"], chosen)
    assert chosen == {"OPENBLAS_NUM_THREADS": "2"}
    other = {}
    assert not pin_blas_threads_for_serving(["fcnn", "train", "c.yaml"], other)
    assert other == {}
