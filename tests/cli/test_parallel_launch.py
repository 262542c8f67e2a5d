"""``fcnn train --procs N`` and the BLAS threads of processes that mpiexec starts."""

import sys

import pytest
from typer.testing import CliRunner

import cli.train
from cli.main import app
from fcnn.distributed import threads
from fcnn.distributed.launch import auto_procs, mpiexec_command
from fcnn.runtime import BLAS_THREAD_VARIABLES

runner = CliRunner()


class _Launches:
    """Records mpiexec launches and in-process runs instead of doing them."""

    def __init__(self, monkeypatch, cores=2, missing=None, taken=0):
        self.popen, self.runs, self.blas_limits = [], [], []
        launches = self
        real_popen = cli.train.subprocess.Popen

        class FakePopen:
            def __new__(cls, cmd, **kwargs):
                if cmd[0] != "/x/mpiexec":  # ctypes' library search runs ldconfig
                    return real_popen(cmd, **kwargs)
                return super().__new__(cls)

            def __init__(self, cmd, env=None, **kwargs):
                launches.popen.append((cmd, env))

            def wait(self):
                return 0

        monkeypatch.setattr(cli.train, "usable_cores", lambda: cores)
        monkeypatch.setattr(cli.train, "cores_taken", lambda n: taken)
        monkeypatch.setattr(threads, "limit_blas_threads", launches.blas_limits.append)
        for name in BLAS_THREAD_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(cli.train, "find_mpiexec", lambda: "/x/mpiexec")
        monkeypatch.setattr(cli.train, "mpi_missing", lambda: missing)
        monkeypatch.setattr(cli.train.subprocess, "Popen", FakePopen)
        monkeypatch.setattr(cli.train, "_run", lambda *args, **kw: launches.runs.append(args[4:6]))


def test_auto_procs_is_one_per_core_without_shards_under_32_images():
    assert auto_procs(128, 2) == 2 and auto_procs(64, 2) == 2 and auto_procs(64, 8) == 2
    assert auto_procs(48, 2) == 1 and auto_procs(16, 4) == 1 and auto_procs(512, 1) == 1


def test_train_uses_every_core_by_default(monkeypatch):
    seen = _Launches(monkeypatch, cores=2)
    result = runner.invoke(app, ["train", "configs/mnist.yaml", "--no-progress"])
    assert result.exit_code == 0, result.output
    ((cmd, env),) = seen.popen
    assert cmd[:3] == ["/x/mpiexec", "-n", "2"] and "--procs" not in cmd
    assert (
        "2 data-parallel processes (--procs auto: 2 usable core(s), batch 128"
        in env[cli.train.LAUNCH_NOTE]
    )
    assert seen.runs == []


def test_auto_leaves_out_the_cores_other_programs_keep_busy(monkeypatch):
    seen = _Launches(monkeypatch, cores=2, taken=1)  # say, a busy loop on one core
    assert runner.invoke(app, ["train", "configs/mnist.yaml"]).exit_code == 0
    assert seen.popen == [] and seen.blas_limits == [1]  # one process on one BLAS thread
    assert "2 usable core(s), 1 of them busy with other programs" in seen.runs[0][1]
    assert "BLAS on 1 thread(s)" in seen.runs[0][1]


def test_processes_beside_busy_cores_share_only_the_free_ones(monkeypatch):
    seen = _Launches(monkeypatch, cores=4, taken=1)
    assert runner.invoke(app, ["train", "configs/mnist.yaml"]).exit_code == 0
    ((cmd, env),) = seen.popen
    assert cmd[:3] == ["/x/mpiexec", "-n", "3"]
    assert all(env[name] == "1" for name in BLAS_THREAD_VARIABLES)  # 3 free cores, 3 ranks


def test_a_thread_count_the_user_set_is_kept_beside_busy_cores(monkeypatch):
    seen = _Launches(monkeypatch, cores=2, taken=1)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert runner.invoke(app, ["train", "configs/mnist.yaml", "--procs", "1"]).exit_code == 0
    assert seen.blas_limits == [] and "BLAS on" not in seen.runs[0][1]


def test_procs_one_and_small_batches_stay_in_one_process(monkeypatch):
    seen = _Launches(monkeypatch, cores=4)
    assert runner.invoke(app, ["train", "configs/mnist.yaml", "--procs", "1"]).exit_code == 0
    small = ["train", "configs/mnist.yaml", "--set", "train.batch_size=32"]
    assert runner.invoke(app, small).exit_code == 0
    assert seen.popen == [] and len(seen.runs) == 2
    assert "as --procs 1 asks" in seen.runs[0][1] and "batch 32" in seen.runs[1][1]


def test_without_mpi_auto_says_so_and_trains_in_one_process(monkeypatch):
    seen = _Launches(monkeypatch, cores=2, missing="no mpiexec was found (...)")
    result = runner.invoke(app, ["train", "configs/mnist.yaml"])
    assert result.exit_code == 0 and seen.popen == []
    assert "one process, not 2: no mpiexec was found" in result.output
    assert "one process, not 2" in seen.runs[0][1]


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_procs_value_is_one_clear_line(value):
    result = runner.invoke(app, ["train", "configs/mnist.yaml", "--procs", value])
    assert result.exit_code == 2 and "--procs takes a number" in result.output
    assert "Traceback" not in result.output


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
    assert "pip install -e ." in result.output and "Traceback" not in result.output


def test_procs_passes_every_option_on(monkeypatch, tmp_path):
    seen = _Launches(monkeypatch)
    result = runner.invoke(
        app,
        ["train", "configs/mnist.yaml", "--procs", "2", "--set", "train.epochs=1",
         "--data-dir", str(tmp_path), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0
    ((cmd, _),) = seen.popen
    assert cmd[:3] == ["/x/mpiexec", "-n", "2"]
    assert cmd[-7:] == [
        "train", "configs/mnist.yaml", "--set", "train.epochs=1",
        "--data-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
