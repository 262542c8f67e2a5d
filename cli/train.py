"""``fcnn train CONFIG``, in one process, under ``mpiexec``, or ``--procs N`` of them here."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from cli.common import USER_ERRORS, RichEpochProgress, console, fail, friendly_errors
from fcnn import checkpoint
from fcnn.distributed import Replicas
from fcnn.distributed.launch import auto_procs, find_mpiexec, mpi_missing, mpiexec_command
from fcnn.distributed.mpi import MPIUnavailable, launched_by_mpi, world
from fcnn.runtime import BLAS_THREAD_VARIABLES, cores_taken, usable_cores
from fcnn.training.config import load_config, parse_config
from fcnn.training.outputs import output_paths
from fcnn.training.run import TrainingDiverged, TrainingInterrupted, train
from fcnn.training.run_config import requested_config

LAUNCH_NOTE = "FCNN_LAUNCH_NOTE"  # how the process count was chosen, for the ranks' log


def _relaunch(procs: int, args: list[str], note: str, free_cores: int | None = None) -> None:
    """Run this same command in ``procs`` processes through mpiexec and exit with its code;
    with ``free_cores`` (cores other programs left), each process gets its share of them
    as BLAS threads unless the user chose a count."""
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise fail(
            "--procs needs MPI: reinstall with pip install -e . (it brings mpi4py and an "
            "mpiexec), or use a cluster's mpiexec -n N fcnn train ..."
        )
    env = {**os.environ, LAUNCH_NOTE: note}
    if free_cores is not None and not any(name in env for name in BLAS_THREAD_VARIABLES):
        env.update(dict.fromkeys(BLAS_THREAD_VARIABLES, str(max(1, free_cores // procs))))
    # its own session: a Ctrl-C in the terminal reaches this launcher only, which passes it
    # on once (mpiexec given two would abort the ranks before they save)
    child = subprocess.Popen(mpiexec_command(mpiexec, procs, args), env=env, start_new_session=True)

    def stop_ranks(signum, frame) -> None:
        # Ctrl-C, SIGTERM or SIGHUP (timeout, a scheduler, a closed terminal) sent to this
        # launcher: ask the ranks to stop as one process does, all after the same step,
        # with last.npz saved
        child.send_signal(signal.SIGINT)

    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop_ranks) for sig in stopping}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise typer.Exit(code)


def _train_args(config, set_, data_dir, resume, progress, force=False) -> list[str]:
    args = ["train"] + ([str(config)] if config is not None else [])
    for item in set_:
        args += ["--set", item]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    if resume is not None:
        args += ["--resume", str(resume)]
    args += ["--force"] if force else []
    return [*args, "--progress" if progress else "--no-progress"]


def _procs(requested: str, cfg, echo) -> tuple[int, str, int | None]:
    """The process count for ``--procs`` (a number or ``auto``), a line saying why, and the
    cores other programs left free when they hold some (else None).

    ``auto`` counts only the usable cores that other programs are not keeping busy right
    now: a data-parallel step waits for its slowest process, and a process that shares its
    core with someone else's work makes every step wait for it (docs/how-to/processes.md gives
    the figures)."""
    cores = usable_cores()
    taken = cores_taken(cores)
    free = cores - taken if taken else None
    busy = f", {taken} of them busy with other programs" if taken else ""
    if requested != "auto":
        try:
            n = int(requested)
        except ValueError:
            n = 0
        if n < 1:
            raise fail(f"--procs takes a number of processes or 'auto', not {requested!r}")
        return n, f"{n} process(es), as --procs {n} asks", free
    n = auto_procs(cfg.train.batch_size, cores - taken)
    why = f"{cores} usable core(s){busy}, batch {cfg.train.batch_size}"
    if n == 1:
        return 1, f"one process (--procs auto: {why})", free
    missing = mpi_missing()
    if missing is not None:
        note = f"one process, not {n}: {missing} (--procs auto: {why})"
        echo(note)
        return 1, note, free
    return n, f"{n} data-parallel processes (--procs auto: {why}; --procs 1 for one)", free


def _hold_blas_threads(free_cores: int | None, note: str) -> str:
    """In this one training process, a BLAS with more threads than the cores other programs
    left would spin on the taken ones: hold it to the free cores (unless the user chose a
    thread count); returns ``note`` saying so when it did."""
    if free_cores is None or any(name in os.environ for name in BLAS_THREAD_VARIABLES):
        return note
    from fcnn.distributed.threads import limit_blas_threads

    limit_blas_threads(free_cores)
    return f"{note}; BLAS on {free_cores} thread(s), the cores other programs left free"


def _config(config: Path | None, set_: list[str], resume: Path | None):
    """(the config the command line asks for or None, the config the run will use)."""
    if resume is None:
        if config is None:
            raise fail("give a CONFIG to train, or --resume RUN/last.npz to continue a run")
        cfg = load_config(config, set_)
        return cfg, cfg
    stored = checkpoint.load(resume).info.config
    if stored is None:
        raise fail(f"{resume} is not resumable (it has no stored config); use a run's last.npz")
    requested = requested_config(stored, config, set_)
    return requested, requested or parse_config(stored)


def _typed_outputs(config: Path | None, set_: list[str], requested) -> list[str]:
    """The paths outside a resumed run's folder that this command line gives (all a CONFIG
    file names, and those a --set names), which the resumed run may write to."""
    if requested is None:
        return []
    if config is not None:
        return output_paths(requested)
    keys = {item.split("=", 1)[0].strip() for item in set_}
    out = [requested.reports_dir] if "reports_dir" in keys and requested.reports_dir else []
    if any(k.split(".")[0] == "callbacks" for k in keys):
        out += [p for p in output_paths(requested) if p != requested.reports_dir]
    return out


def _run(
    cfg, data_dir, resume, progress, replicas: Replicas, note=None, force=False, typed=()
) -> None:
    """Train ``cfg`` (None with ``resume``: the run's own config) on this process's replica."""
    lead = replicas.rank == 0
    bar = RichEpochProgress(enabled=progress and lead)
    try:
        result = train(
            cfg,
            data_dir=data_dir,
            resume=resume,
            progress=bar,
            echo=lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True),
            replicas=replicas,
            launch_note=note,
            force=force,
            typed_outputs=typed,
        )
    except TrainingInterrupted as exc:
        bar.close()
        if lead:
            console.print(
                f"interrupted: saved {exc.path}; continue with fcnn train --resume {exc.path}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(130) from None
    except TrainingDiverged as exc:
        bar.close()
        raise fail(str(exc), code=3) if lead else typer.Exit(3) from None
    if lead and replicas.size > 1:
        console.print(f"trained with {replicas.size} processes", highlight=False, soft_wrap=True)
    if lead and result.best_checkpoint:
        console.print(f"best checkpoint: {result.best_checkpoint}", highlight=False, soft_wrap=True)


@friendly_errors
def train_command(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="YAML config, e.g. configs/mnist.yaml; with --resume it may be left out (the "
            "run's own config is used)",
            show_default=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: --set train.epochs=3 (repeatable)"),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder holding mnist/, cifar10/, ham10000/ (default: $FCNN_DATA)"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue exactly from a run's last.npz, with the config stored in it. A "
            "CONFIG or --set may change only train.epochs (to extend the run: the learning-"
            "rate schedule is rebuilt for the new total from the current step); --data-dir, "
            "--progress and --procs may differ. Anything else is refused."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch")] = True,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Let the copy of the final model to a checkpoint callback's filepath replace "
            "a file there that holds a better monitored value of the same config",
        ),
    ] = False,
    procs: Annotated[
        str | None,
        typer.Option(
            help="Processes to train in, data-parallel, on this machine: 'auto' (default: one "
            "per usable core, none with a shard under 32 images of the batch) or a number; "
            "--procs 1 trains in this process. Under your own mpiexec -n N, leave it out.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train the model a config describes; writes a run folder, checkpoints and reports."""
    requested, run_cfg = _config(config, set_ or [], resume)  # read once, checked early
    typed = _typed_outputs(config, set_ or [], requested) if resume else []
    if launched_by_mpi():
        if procs is not None:
            raise fail("--procs starts its own mpiexec; under mpiexec -n N, leave --procs out")
        note = os.environ.get(LAUNCH_NOTE)
    else:
        echo = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        n, note, free = _procs(procs or "auto", run_cfg, echo)
        if n > 1:
            args = _train_args(config, set_ or [], data_dir, resume, progress, force)
            _relaunch(n, args, note, free)
        note = _hold_blas_threads(free, note)
    try:
        replicas = world()
    except MPIUnavailable as exc:
        raise fail(str(exc)) from None
    if replicas.size == 1:
        _run(requested, data_dir, resume, progress, replicas, note, force, typed)
        return
    try:
        _run(requested, data_dir, resume, progress, replicas, note, force, typed)
    except typer.Exit as exc:
        if exc.exit_code not in (0, 130):  # an error on this rank: stop the other ranks too
            replicas.abort(exc.exit_code)
        raise
    except USER_ERRORS as exc:
        fail(f"(rank {replicas.rank}) {exc}")
        replicas.abort(2)
    except Exception as exc:  # any crash on one rank must stop every rank
        fail(f"rank {replicas.rank} crashed: {exc!r}; stopping all ranks", code=1)
        replicas.abort(1)
