"""Process-level settings (fcnn.runtime): BLAS threads, usable cores, the allocator."""

import os
import subprocess
import sys

import fcnn.runtime
from fcnn.runtime import (
    BUSY_CORES_VARIABLE,
    busy_cores,
    cgroup_cpu_quota,
    cores_taken,
    keep_freed_memory,
    pin_blas_threads,
    pin_blas_threads_for_serving,
    usable_cores,
)


def _cgroups(tmp_path, proc_cgroup: str, files: dict[str, str]):
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(proc_cgroup)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root, proc


def test_importing_fcnn_runtime_loads_no_numpy():
    # the BLAS threads must be set before NumPy loads its BLAS, which reads them once
    code = "import sys, fcnn.runtime, fcnn; assert 'numpy' not in sys.modules, 'numpy loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_loads_its_submodules_on_first_use():
    import fcnn

    assert fcnn.layers.Conv2D(2, 3).spec["type"] == "Conv2D" and callable(fcnn.check_grad)
    assert "layers" in dir(fcnn)


def test_keep_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert keep_freed_memory() == first


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


def _stat(cpu0: tuple[int, int], cpu1: tuple[int, int]) -> str:
    """A /proc/stat with two CPUs of (busy, idle) ticks, busy as user and steal time."""

    def line(name, busy, idle):
        return f"{name} {busy - busy // 4} 0 0 {idle} 0 0 0 {busy // 4} 0 0"

    total = line("cpu", cpu0[0] + cpu1[0], cpu0[1] + cpu1[1])
    return "\n".join([total, line("cpu0", *cpu0), line("cpu1", *cpu1), "intr 1 2 3", ""])


def test_busy_cores_sums_the_busy_shares_of_this_process_cpus(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(_stat((1000, 1000), (500, 1500)))
    # while busy_cores sleeps, cpu0 is busy all the time and cpu1 a quarter of it
    later = _stat((1000 + 400, 1000), (500 + 100, 1500 + 300))
    monkeypatch.setattr(fcnn.runtime.time, "sleep", lambda s: stat.write_text(later))
    assert busy_cores({0, 1}, stat=stat) == 1.25
    stat.write_text(_stat((1000, 1000), (500, 1500)))
    assert busy_cores({1}, stat=stat) == 0.25  # only the CPUs this process may use count
    assert busy_cores({0, 1}, stat=tmp_path / "missing") == 0.0


def test_cores_taken_rounds_the_busy_shares_and_leaves_one_core():
    assert cores_taken(2, env={}, measure=lambda: 0.97) == 1  # a busy loop on one core
    assert cores_taken(2, env={}, measure=lambda: 0.3) == 0  # background noise
    assert cores_taken(4, env={}, measure=lambda: 2.6) == 3
    assert cores_taken(2, env={}, measure=lambda: 2.0) == 1  # one core always stays
    assert cores_taken(1, env={}, measure=lambda: 1 / 0) == 0  # nothing to measure
    assert cores_taken(4, env={BUSY_CORES_VARIABLE: "2"}, measure=lambda: 1 / 0) == 2
    assert cores_taken(4, env={BUSY_CORES_VARIABLE: "0"}, measure=lambda: 1 / 0) == 0


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
