"""A whole training run from a config: data, model, loop, callbacks, checkpoints, reports.

:func:`train` is what ``fcnn train`` calls. :mod:`fcnn.training.setup` turns the config
(or a run's ``last.npz``) into the objects a run needs; this module runs the epoch loop
with the pure pieces of :mod:`fcnn.training.loop` and keeps the side effects here;
:mod:`fcnn.training.finalize` fits what is fitted after training and writes the reports:

- each run gets its own folder ``<runs_dir>/<date>-<time>-<config name>/`` with the
  resolved config, ``log.txt``, ``metrics.csv``, ``last.npz``, ``best.npz`` and figures;
- ``last.npz`` is a resumable checkpoint written at the end of every epoch and on
  Ctrl-C; ``train(..., resume=path)`` continues from it exactly (same batches,
  same optimizer state, same random keys), with the config stored in it
  (:mod:`fcnn.training.run_config`); the run folder is the folder that holds it;
- every run keeps its best model in ``<run>/best.npz`` (by a ``checkpoint`` callback's
  monitor, else ``val_acc``; its last epoch's with ``keep: last``); the callback's
  ``filepath`` only receives a copy at the end, unless a better model of the same config is there
  (:func:`fcnn.training.finalize.copy_model`; nothing reads it back);
- with ``train.ema_decay`` the run validates, keeps and finishes with an average of the
  weights over the steps (:mod:`fcnn.optim.averaging`), which ``last.npz`` also holds;
- a loss that becomes NaN or infinite stops the run (:class:`TrainingDiverged`)
  without touching the last good checkpoints;
- at the end the run's best model is evaluated on the test split and the run's row is
  written to ``<reports_dir>/results.csv`` (by default ``<runs_dir>/results.csv``, never
  the project's tracked ``reports/`` unless asked; a resumed run replaces its row).

With several ``replicas`` (processes started by ``mpiexec``) every replica runs
this same code on the same global batches (see :mod:`fcnn.training.loop`); only
rank 0 creates the run folder and writes checkpoints, logs, CSV rows, reports and
progress, and validation is sharded. Batch order and random keys do not depend on
the number of replicas, so a run resumes with the same or another number of them.
Ctrl-C or SIGTERM only raises a flag (:mod:`fcnn.training.interrupts`), with one replica
or several; after every step the replicas sum their flags, so all of them stop after the
same step (rank 0 saving ``last.npz``) instead of one leaving the others waiting in a
collective.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fcnn import checkpoint, distributed, metrics, tree
from fcnn import random as fr
from fcnn.data.batching import balanced_order, batch_slices, shuffled_order
from fcnn.data.dataset import Dataset
from fcnn.data.transforms import alternating_flips
from fcnn.optim import averaging
from fcnn.training.callbacks import make_callbacks
from fcnn.training.config import Config
from fcnn.training.finalize import RunResult, finish_run
from fcnn.training.interrupts import InterruptFlag
from fcnn.training.loop import EvalResult, evaluate, train_step
from fcnn.training.setup import LoopState, Setup, build

__all__ = [
    "EpochProgress",
    "RunResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "train",
]

log = logging.getLogger("fcnn.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoints were kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: a resumable checkpoint was saved at ``path``."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


class EpochProgress:
    """Receives progress events; the CLI renders them with rich, tests ignore them."""

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None: ...
    def end_epoch(self, summary: str) -> None: ...


# ----------------------------------------------------------------------------- pieces


def _attach_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


# ----------------------------------------------------------------------------- the run


def train(
    config: Config | None,
    *,
    data_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: EpochProgress | None = None,
    echo: Callable[[str], None] = print,
    replicas: distributed.Replicas = distributed.SINGLE,
    launch_note: str | None = None,
    force: bool = False,
    typed_outputs: Sequence[str] = (),
) -> RunResult:
    """Train ``config``'s model; see the module docstring for what is written where.

    With ``resume``, the config stored in the checkpoint is used (so the run continues
    exactly); ``config`` may then be None, and if given must agree with it except in
    ``train.epochs`` (:func:`fcnn.training.run_config.resumed_config`). Every one of several
    ``replicas`` calls this; ranks other than 0 show no progress and write nothing. ``launch_note``
    (how the process count was chosen) goes to the log. ``force``: the copy of the final
    model to a checkpoint callback's ``filepath`` replaces a file there even when that file
    holds a better monitored value of the same config (:func:`fcnn.training.finalize.copy_model`).
    ``typed_outputs``: with ``resume``, the paths outside the run folder the stored config
    may still write to, because the user gave them again (:mod:`fcnn.training.outputs`:
    without them a resumed run writes only inside its folder and its runs folder).
    """
    t_start = time.perf_counter()
    config, setup, loop, saved, notes = build(config, data_dir, resume, replicas, typed_outputs)
    lead = replicas.rank == 0
    display = (progress or EpochProgress()) if lead else EpochProgress()
    handler = _attach_log(setup.run_dir) if lead else None
    try:
        run = _Run(setup, loop, saved, display, echo if lead else _silent, t_start, replicas)
        run.force = force
        log.info("processes: %d (%s)", replicas.size, launch_note or "one process")
        for note in notes:  # a resumed run's changes, fine-tuning's loaded weights
            log.info(note)
            run.echo(note)
        return run.run()
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def _silent(_: str) -> None:
    """The echo of ranks other than 0."""


class _Run:
    """The epoch loop with its callbacks and checkpoints (side effects live here)."""

    def __init__(
        self,
        setup: Setup,
        loop: LoopState,
        saved,
        display: EpochProgress,
        echo: Callable[[str], None],
        t_start: float,
        replicas: distributed.Replicas = distributed.SINGLE,
    ):
        self.setup, self.loop, self.display, self.echo = setup, loop, display, echo
        self.t_start, self.replicas = t_start, replicas
        self.force = False  # replace a better copy at the checkpoint's filepath
        self.writes = replicas.rank == 0  # only rank 0 touches files
        self.interrupts = InterruptFlag(replicas)  # Ctrl-C with several replicas
        self.history: list[dict[str, float]] = list(saved.history) if saved else []
        self.callbacks, self.best_cb = make_callbacks(
            setup.config.callbacks, self._save_best, setup.best_path, setup.run_dir, self.writes
        )
        if saved:
            if len(saved.callbacks) != len(self.callbacks):
                raise checkpoint.CheckpointError(
                    f"{setup.last_path} holds the state of {len(saved.callbacks)} callbacks, "
                    f"the run keeps {len(self.callbacks)} (it was written by an older fcnn, or "
                    "changed): start a new run"
                )
            for i, (cb, cb_state) in enumerate(zip(self.callbacks, saved.callbacks, strict=True)):
                try:
                    cb.load_state_dict(cb_state)
                except (KeyError, TypeError, ValueError, AttributeError):
                    raise checkpoint.CheckpointError(
                        f"{setup.last_path}: the saved state of callback {i} "
                        f"({type(cb).__name__}) is malformed"
                    ) from None

    def _save_best(self, path: Path, epoch_metrics: dict[str, float]) -> None:
        if not self.writes:
            return
        params, state = self.loop.evaluated
        checkpoint.save(
            path,
            attrs.evolve(self.setup.manifest, metrics=epoch_metrics, kind="best"),
            params=params,
            state=state,
        )

    def _save_last(self) -> None:
        if not self.writes:
            return
        p = self.loop
        training = checkpoint.ResumeState(
            progress=p.progress(),
            history=tuple(self.history),
            callbacks=tuple(cb.state_dict() for cb in self.callbacks),
            run_dir=str(self.setup.run_dir),
        )
        averaged = {} if p.ema is None else {"ema_params": p.ema[0], "ema_state": p.ema[1]}
        if p.slow is not None:
            averaged.update(slow_params=p.slow[0], slow_state=p.slow[1])
        checkpoint.save(
            self.setup.last_path,
            attrs.evolve(self.setup.manifest, kind="last", training=training),
            params=p.params,
            state=p.state,
            opt_state=p.opt_state,
            **averaged,
        )

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        train = self.setup.data.train
        key = fr.fold_in(self.setup.order_key, epoch)
        if self.setup.config.data.sampler == "balanced":
            order = balanced_order(train.labels, key, train.num_classes)
        else:
            order = shuffled_order(len(train), key)
        return batch_slices(order, self.setup.config.train.batch_size)

    def _train_epoch(self, epoch: int) -> float:
        """Run the rest of ``epoch``'s batches; returns the epoch's images per second."""
        train = self.setup.data.train
        batches = self._epoch_batches(epoch)
        self.display.start_epoch(epoch, self.setup.config.train.epochs, len(batches))
        t0, images = time.perf_counter(), 0
        try:
            for b in range(self.loop.batch, len(batches)):
                idx = batches[b]
                p = self.loop
                key = fr.fold_in(fr.fold_in(self.setup.step_key, epoch), b)
                flips = None
                if self.setup.recipe.augmentation.alternating_flip:
                    flips = alternating_flips(self.setup.flip_key, len(train), idx, epoch)
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
                    out = train_step(
                        self.setup.recipe,
                        p.params,
                        p.state,
                        p.opt_state,
                        train.images[idx],
                        train.labels[idx],
                        key,
                        self.replicas,
                        flips,
                    )
                if not math.isfinite(out.loss):
                    self._diverged(out.loss, epoch, b)
                step = epoch * self.setup.steps_per_epoch + b
                (params, state), slow = self._lookahead(p.slow, out, step)
                # one assignment: an interrupt sees either the old or the new progress
                self.loop = LoopState(
                    params=params,
                    state=state,
                    opt_state=out.opt_state,
                    epoch=epoch,
                    batch=b + 1,
                    loss_sum=p.loss_sum + out.loss * len(idx),
                    correct=p.correct + out.correct,
                    seen=p.seen + len(idx),
                    ema=self._averaged(p.ema, out, step),
                    slow=slow,
                )
                images += len(idx)
                if self.interrupts.agreed():
                    raise KeyboardInterrupt
                elapsed = max(time.perf_counter() - t0, 1e-9)
                self.display.step(
                    b + 1,
                    self.loop.loss_sum / self.loop.seen,
                    self.loop.correct / self.loop.seen,
                    images / elapsed,
                )
        except KeyboardInterrupt:
            self._save_last()
            log.info(
                "interrupted at epoch %d batch %d; saved %s",
                epoch + 1,
                self.loop.batch,
                self.setup.last_path,
            )
            raise TrainingInterrupted(self.setup.last_path) from None
        return images / max(time.perf_counter() - t0, 1e-9)

    def _averaged(self, ema: Any, out: Any, step: int) -> Any:
        """The weight average after ``step`` (its weights in ``out``), or None without one."""
        if ema is None:
            return None
        rate = self.setup.config.train.ema_decay
        assert rate is not None  # an average is kept only with a decay
        decay = averaging.ema_decay(rate, step)
        return averaging.ema_update(ema, (out.params, out.state), decay)

    def _lookahead(self, slow: Any, out: Any, step: int) -> tuple[Any, Any]:
        """``((params, state), slow)`` after ``step`` (from 0) with train.lookahead
        (:func:`fcnn.optim.averaging.lookahead`); without it, ``out``'s weights and None."""
        la, fast = self.setup.config.train.lookahead, (out.params, out.state)
        if la is None or slow is None:
            return fast, None
        return averaging.lookahead(slow, fast, step + 1, self.setup.total_steps, la.every, la.decay)

    def _diverged(self, loss: float, epoch: int, batch: int) -> None:
        log.error("loss became %s at epoch %d batch %d", loss, epoch + 1, batch + 1)
        kept = [str(p) for p in (self.setup.last_path, self.best_cb.path) if Path(p).exists()]
        raise TrainingDiverged(
            f"the loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
            + (f"Last good checkpoints kept: {', '.join(kept)}. " if kept else "")
            + "Lower train.lr or set train.clip_norm."
        )

    def _end_epoch(self, epoch: int, images_per_s: float, epoch_time: float) -> bool:
        """Validate, run callbacks, save ``last``; True when a callback stops training."""
        cfg, data = self.setup.config.train, self.setup.data
        self._share_state()
        p = self.loop
        val = self._evaluate(data.val)
        val_conf = metrics.confusion_matrix(val.labels, val.preds, data.val.num_classes)
        report_only = {}
        if self.setup.config.evaluate.test_every_epoch:  # a report run; never chooses a model
            tta = self.setup.config.evaluate.tta
            report_only["test_acc"] = self._evaluate(data.test, tta).accuracy
        row = {
            "epoch": epoch + 1,
            "train_loss": p.loss_sum / max(p.seen, 1),
            "train_acc": p.correct / max(p.seen, 1),
            "val_loss": val.loss,
            "val_acc": val.accuracy,
            "val_balanced_acc": metrics.balanced_accuracy(val_conf),
            "lr": float(self.setup.schedule((epoch + 1) * self.setup.steps_per_epoch - 1)),
            "epoch_time_s": epoch_time,
            "images_per_s": images_per_s,
            **report_only,
        }
        self.history.append(row)
        stop = False
        for cb in self.callbacks:
            stop = cb.on_epoch_end(epoch, {k: v for k, v in row.items() if k != "epoch"}) or stop
        self.loop = LoopState(
            params=p.params,
            state=p.state,
            opt_state=p.opt_state,
            epoch=epoch + 1,
            ema=p.ema,
            slow=p.slow,
        )
        self._save_last()
        summary = (
            f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  "
            f"acc {row['train_acc']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_acc {row['val_acc']:.4f}  val_bal_acc {row['val_balanced_acc']:.4f}  "
            f"{images_per_s:.0f} img/s  {epoch_time:.1f}s"
        )
        log.info(summary)
        self.display.end_epoch(summary)
        return stop

    def _evaluate(self, split: Dataset, tta: int = 0) -> EvalResult:
        """The weights the run evaluates (:attr:`LoopState.evaluated`) on ``split``."""
        params, state = self.loop.evaluated
        data, cfg = self.setup.data, self.setup.config.train
        return evaluate(
            self.setup.recipe.net, params, state, split.images, split.labels,
            data.normalization, cfg.eval_batch_size, self.replicas, tta=tta,
        )  # fmt: skip

    def _share_state(self) -> None:
        """Give every replica the same layer state (BatchNorm running statistics): their
        mean, when each replica normalized with its own shard's statistics."""
        n = self.replicas.size
        if n == 1 or self.setup.recipe.sync_batchnorm or not tree.leaves(self.loop.state):
            return
        p = self.loop
        ema = None if p.ema is None else (p.ema[0], self._mean_over_replicas(p.ema[1]))
        slow = None if p.slow is None else (p.slow[0], self._mean_over_replicas(p.slow[1]))
        self.loop = attrs.evolve(p, state=self._mean_over_replicas(p.state), ema=ema, slow=slow)

    def _mean_over_replicas(self, state: Any) -> Any:
        buf, layout = distributed.to_buffer(state, dtype=np.float64)
        mean, _ = distributed.from_buffer(self.replicas.sum(buf) / self.replicas.size, layout)
        return mean

    def run(self) -> RunResult:
        cfg = self.setup.config
        log.info(
            "config %s, seed %d: every random key derives from fcnn.random.key(%d)",
            cfg.name,
            cfg.seed,
            cfg.seed,
        )
        data = self.setup.data
        self.echo(f"run folder: {self.setup.run_dir}")
        self.echo(
            f"data: {len(data.train)} train / {len(data.val)} validation / "
            f"{len(data.test)} test; seed {cfg.seed}"
        )
        for note in data.notes:
            log.warning("skipped: %s", note)
        if data.notes:
            self.echo(
                f"the loader skipped {len(data.notes)} rows (listed in log.txt), "
                f"e.g. {data.notes[0]}"
            )
        stopped_early = False
        with self.interrupts:
            for epoch in range(self.loop.epoch, cfg.train.epochs):
                t0 = time.perf_counter()
                images_per_s = self._train_epoch(epoch)
                stop = self._end_epoch(epoch, images_per_s, time.perf_counter() - t0)
                if self.interrupts.agreed():  # during validation: last.npz is saved already
                    log.info(
                        "interrupted after epoch %d; saved %s", epoch + 1, self.setup.last_path
                    )
                    raise TrainingInterrupted(self.setup.last_path)
                if stop:
                    stopped_early = True
                    log.info("early stopping after epoch %d", epoch + 1)
                    self.echo(f"early stopping after epoch {epoch + 1}")
                    break
        return self._finish(stopped_early)

    def _finish(self, stopped_early: bool) -> RunResult:
        params, state = self.loop.evaluated
        return finish_run(
            self.setup,
            params,
            state,
            self.history,
            monitor=(self.best_cb.tracker.monitor, self.best_cb.tracker.mode),
            keep=self.best_cb.cfg.keep,
            force=self.force,
            copy_to=self.best_cb.cfg.filepath,
            elapsed_s=time.perf_counter() - self.t_start,
            stopped_early=stopped_early,
            replicas=self.replicas,
            echo=self.echo,
        )
