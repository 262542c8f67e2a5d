"""``fcnn train --procs N`` and the BLAS threads of processes that mpiexec starts."""

import os
import sys

import pytest
from typer.testing import CliRunner

import cli.train
from cli.main import app
from cli.threads import (
    cgroup_cpu_quota,
    pin_blas_threads,
    pin_blas_threads_for_serving,
    usable_cores,
)
from fcnn.distributed.launch import auto_procs, mpiexec_command

runner = CliRunner()


class _Launches:
    """Records mpiexec launches and in-process runs instead of doing them."""

    def __init__(self, monkeypatch, cores=2, missing=None):
        self.popen, self.runs = [], []
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
        monkeypatch.setattr(cli.train, "find_mpiexec", lambda: "/x/mpiexec")
        monkeypatch.setattr(cli.train, "mpi_missing", lambda: missing)
        monkeypatch.setattr(cli.train.subprocess, "Popen", FakePopen)
        monkeypatch.setattr(cli.train, "_run", lambda *args, **kw: launches.runs.append(args[-2:]))


def test_mpiexec_processes_share_the_cores_unless_the_user_chose():
    env = {"PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}
    assert pin_blas_threads(env, cores=8) == 4
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "4"
    env = {"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
    assert pin_blas_threads(env, cores=2) == 1  # never below one thread
    chosen = {"PMI_SIZE": "2", "OMP_NUM_THREADS": "3"}
    assert pin_blas_threads(chosen, cores=8) is None and chosen["OMP_NUM_THREADS"] == "3"
    alone = {}
    assert pin_blas_threads(alone, cores=os.cpu_count()) is None and alone == {}


def test_a_lone_process_on_fewer_cores_than_the_machine_gets_that_many_threads():
    env = {}
    assert pin_blas_threads(env, cores=1) == (1 if os.cpu_count() > 1 else None)


def _cgroups(tmp_path, proc_cgroup: str, files: dict[str, str]):
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(proc_cgroup)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root, proc


def test_cgroup_quotas_are_read_from_v2_v1_and_hybrid_hosts(tmp_path):
    v2 = _cgroups(
        tmp_path / "a", "0::/job\n", {"job/cpu.max": "150000 100000\n", "cpu.max": "max 100000"}
    )
    assert cgroup_cpu_quota(*v2) == 1.5
    unlimited = _cgroups(tmp_path / "b", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(*unlimited) is None
    hybrid = _cgroups(
        tmp_path / "c",
        "1:cpu,cpuacct:/box\n0::/\n",
        {
            "cpu,cpuacct/box/cpu.cfs_quota_us": "300000",
            "cpu,cpuacct/box/cpu.cfs_period_us": "100000",
        },
    )
    assert cgroup_cpu_quota(*hybrid) == 3.0
    v1_unlimited = _cgroups(
        tmp_path / "d",
        "4:cpu:/\n",
        {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"},
    )
    assert cgroup_cpu_quota(*v1_unlimited) is None
    parent_tighter = _cgroups(
        tmp_path / "e", "0::/a/b\n", {"a/cpu.max": "50000 100000", "a/b/cpu.max": "200000 100000"}
    )
    assert cgroup_cpu_quota(*parent_tighter) == 0.5


def test_usable_cores_are_capped_by_the_quota_and_never_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    one_and_a_half = _cgroups(tmp_path / "a", "0::/\n", {"cpu.max": "150000 100000"})
    assert usable_cores(*one_and_a_half) == 1
    tenth = _cgroups(tmp_path / "b", "0::/\n", {"cpu.max": "10000 100000"})
    assert usable_cores(*tenth) == 1
    none = _cgroups(tmp_path / "c", "0::/\n", {})
    assert usable_cores(*none) == 4


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
