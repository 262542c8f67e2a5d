"""Where a resumed run may write: a stored config is data, never a place to write.

A run's ``last.npz`` holds the config it was started with, and so the paths it wrote to
besides its own folder: ``reports_dir`` (the ledger), a checkpoint callback's ``filepath``
(a copy of the final model) and a CSV logger's ``filepath``. Anyone can hand over a
``last.npz``, and one crafted to name ``/some/where/precious.npz`` would have the resumed run
replace that file. So on ``--resume`` (:func:`confine`) each such path is kept only when

- the user typed it: the command line gives it again (in a CONFIG file or a ``--set``),
  which reaches :func:`fcnn.training.run.train` as ``typed_outputs``, or
- it lies inside the run folder (a relative path is taken relative to the run folder);

any other is refused: not written, and the run says which and how to allow it. The ledger
of a run whose config names no ``reports_dir`` goes to the folder that holds the run folder
(its runs folder, wherever it has been moved), never to the stored ``runs_dir``.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from fcnn.training.config import CheckpointConfig, Config, CsvLoggerConfig

__all__ = ["confine", "output_paths"]


def _inside(path: str, run_dir: Path) -> str | None:
    """``path`` (relative: to ``run_dir``) resolved, when it lies inside ``run_dir``."""
    target = Path(path).expanduser()
    target = (run_dir / target if not target.is_absolute() else target).resolve()
    root = run_dir.resolve()
    return str(target) if target == root or root in target.parents else None


def output_paths(config: Config) -> list[str]:
    """Every path ``config`` writes to besides the run folder (the ledger's folder, callback
    files), for the ``typed_outputs`` of a config the user gave."""
    paths = [config.reports_dir] + [
        cb.filepath
        for cb in config.callbacks
        if isinstance(cb, (CheckpointConfig, CsvLoggerConfig))
    ]
    return [p for p in paths if p is not None]


def confine(
    config: Config, run_dir: Path, typed: frozenset[str] | set[str] = frozenset()
) -> tuple[Config, list[str]]:
    """``config`` (a resumed run's, from its ``last.npz``) with every path it writes to kept
    inside ``run_dir`` or among ``typed`` (the paths the command line gave); the others are
    dropped. Returns the config and a line per refused path."""
    refused: list[str] = []

    def place(key: str, value: str | None) -> str | None:
        if value is None or value in typed:
            return value
        inside = _inside(value, run_dir)
        if inside is None:
            refused.append(
                f"not writing {key} {value}: a resumed run writes outside its folder only to "
                "paths given on the command line (give the CONFIG that names it, or "
                f"--set {key.split('[')[0]}=...)"
            )
        return inside

    reports = place("reports_dir", config.reports_dir) or str(run_dir.parent)
    callbacks = []
    for i, cb in enumerate(config.callbacks):
        if isinstance(cb, (CheckpointConfig, CsvLoggerConfig)):
            cb = attrs.evolve(cb, filepath=place(f"callbacks[{i}].filepath", cb.filepath))
        callbacks.append(cb)
    return attrs.evolve(config, reports_dir=reports, callbacks=tuple(callbacks)), refused
