"""Checkpoints: one ``.npz`` file of arrays under tree-path keys plus a JSON manifest.

Layout of the archive:

- ``params/<path>``: trainable parameters (``path`` as in :func:`fcnn.tree.flatten_with_paths`);
- ``state/<path>``: non-trainable state (BatchNorm running statistics);
- ``opt_state/<path>``: optimizer state, only in resumable checkpoints;
- ``ema_params/<path>``, ``ema_state/<path>``: the weight average of a resumable run with
  ``train.ema_decay`` (:mod:`fcnn.optim.averaging`);
- ``slow_params/<path>``, ``slow_state/<path>``: the slow weights of a resumable run with
  ``train.lookahead``;
- ``ood/<name>``: the out-of-distribution detector's arrays (:mod:`fcnn.ood`);
- ``__manifest__``: a JSON string with the architecture spec, the input shape,
  class names, normalization, metrics, the resolved config and the fcnn version.

Nothing else: :mod:`fcnn.archive` refuses other members before reading any.

Files are written atomically (temporary file + rename) and read with
``allow_pickle=False``: a checkpoint can never run code.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fcnn import layers, tree
from fcnn import random as fr
from fcnn.archive import MANIFEST, ArchiveError, read_arrays
from fcnn.io import atomic_write
from fcnn.version import __version__

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ModelManifest",
    "ResumeState",
    "build",
    "fill",
    "input_shape",
    "load",
    "save",
]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match the expected architecture."""


@attrs.frozen
class ResumeState:
    """Where a resumable checkpoint (``last.npz``) stopped: the loop's progress (epoch, next
    batch, running sums), the epoch history, the callbacks' states and the run folder it
    was written in."""

    progress: dict[str, Any]
    history: tuple[dict[str, Any], ...] = ()
    callbacks: tuple[dict[str, Any], ...] = ()
    run_dir: str | None = None

    @property
    def epoch(self) -> int:
        return int(self.progress["epoch"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "progress": dict(self.progress),
            "history": [dict(h) for h in self.history],
            "run_dir": self.run_dir,
            "callbacks": [dict(c) for c in self.callbacks],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResumeState:
        return cls(
            dict(d["progress"]),
            tuple(d.get("history", ())),
            tuple(d.get("callbacks", ())),
            d.get("run_dir"),
        )


# the manifest's keys that ModelManifest names; any other key is kept in ``extra``
_NAMED = (
    "architecture",
    "input_shape",
    "class_names",
    "normalization",
    "model",
    "dataset",
    "config",
    "metrics",
    "calibration",
    "decision",
    "answer_rules",
    "ood",
    "kind",
    "model_version",
    "training",
    "data_root",
    "fcnn_version",
    "format_version",
)


# the JSON kind of each manifest section (None, where a section may be absent)
_KINDS: dict[str, type] = {
    **dict.fromkeys(
        ("architecture", "normalization", "config", "metrics", "calibration", "decision",
         "answer_rules", "ood", "training"),
        dict,
    ),
    "input_shape": list,
    "class_names": list,
    **dict.fromkeys(("model", "dataset", "kind", "model_version", "data_root"), str),
}  # fmt: skip


@attrs.frozen
class ModelManifest:
    """A checkpoint's manifest, typed. Sections that have their own types elsewhere
    (normalization, calibration, decision rule, answer rules, detector, config) stay plain
    data here and are parsed by their owners; ``training`` is the :class:`ResumeState` of a
    ``last.npz``. ``to_dict(from_dict(d)) == d`` for every manifest fcnn has written
    (format 1), unknown keys included (``extra``)."""

    architecture: dict[str, Any] | None = None
    input_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] = ()
    normalization: dict[str, Any] | None = None
    model: str | None = None
    dataset: str | None = None
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    answer_rules: dict[str, Any] | None = None  # fcnn.decision.AnswerRules
    ood: dict[str, Any] | None = None
    kind: str | None = None
    model_version: str | None = None
    training: ResumeState | None = None
    data_root: str | None = None  # the data root its run read (commands on it default to it)
    fcnn_version: str | None = None
    format_version: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelManifest:
        """The typed manifest; CheckpointError names a section of the wrong kind."""
        for key, value in d.items():
            kind = _KINDS.get(key)
            if kind is not None and value is not None and not isinstance(value, kind):
                raise CheckpointError(
                    f"the manifest's {key} is a {type(value).__name__}, not a "
                    f"{'list' if kind is list else 'JSON object' if kind is dict else 'string'}"
                )
        if not all(isinstance(c, str) for c in d.get("class_names") or ()):
            raise CheckpointError("the manifest's class_names are not all strings")
        named = {k: d[k] for k in _NAMED if k in d}
        if named.get("input_shape") is not None:
            named["input_shape"] = tuple(named["input_shape"])
        named["class_names"] = tuple(named.get("class_names") or ())
        if named.get("training") is not None:
            try:
                named["training"] = ResumeState.from_dict(named["training"])
            except (KeyError, TypeError, ValueError, AttributeError):
                raise CheckpointError("the manifest's training section is malformed") from None
        return cls(**named, extra={k: v for k, v in d.items() if k not in _NAMED})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as written into checkpoints (keys that are None left out)."""
        out: dict[str, Any] = {}
        for key in _NAMED:
            value = getattr(self, key)
            if value is None:
                continue
            if key in ("input_shape", "class_names"):
                value = list(value)
            elif key == "training":
                value = value.to_dict()
            out[key] = value
        if not self.class_names:
            out.pop("class_names", None)
        return {**out, **self.extra}

    @property
    def resumable(self) -> bool:
        return self.training is not None and self.config is not None

    def describe(self) -> str:
        """A short name for messages and the web app's ``model_version``."""
        return self.model_version or f"{self.model or 'model'}-fcnn{self.fcnn_version}"


@attrs.frozen(eq=False)
class Checkpoint:
    """What a checkpoint holds once loaded; ``arrays`` maps archive keys to arrays,
    ``manifest`` is the stored JSON and :attr:`info` the same typed."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def info(self) -> ModelManifest:
        return ModelManifest.from_dict(self.manifest)

    def group(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays stored under ``prefix/``, keyed by tree path."""
        start = prefix + "/"
        return {k[len(start) :]: v for k, v in self.arrays.items() if k.startswith(start)}


def save(path: str | Path, manifest: dict[str, Any] | ModelManifest, **trees: Any) -> Path:
    """Write ``trees`` (e.g. ``params=..., state=...``) and ``manifest`` atomically to ``path``."""
    path = Path(path)
    if isinstance(manifest, ModelManifest):
        manifest = {k: v for k, v in manifest.to_dict().items() if k != "format_version"}
    if path.suffix != ".npz":
        raise CheckpointError(f"checkpoint paths end in .npz, got {path}")
    arrays: dict[str, np.ndarray] = {}
    for group, t in trees.items():
        for leaf_path, leaf in tree.flatten_with_paths(t):
            arrays[f"{group}/{leaf_path}"] = np.asarray(leaf)
    full = {"format_version": FORMAT_VERSION, "fcnn_version": __version__, **manifest}
    arrays[MANIFEST] = np.array(json.dumps(full, sort_keys=True))
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # NumPy's stub: a key could be allow_pickle
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path``; :class:`CheckpointError` for a file that is
    not a complete ``.npz``. The file is opened here, so it is closed whatever happens."""
    with open(path, "rb") as f:
        head = f.read(4)
        if not head:
            raise CheckpointError(f"{path} is empty: not a checkpoint (was its writing cut off?)")
        if head != b"PK\x03\x04":
            raise CheckpointError(f"{path} is not a checkpoint (not an .npz archive)")
        f.seek(0)
        try:
            return read_arrays(f)
        except ArchiveError as exc:
            raise CheckpointError(f"{path} is not a checkpoint fcnn reads: {exc}") from None
        except zipfile.BadZipFile:
            raise CheckpointError(
                f"{path} is truncated or damaged (an incomplete .npz archive); use another "
                "copy, or the run's last.npz"
            ) from None
        except (OSError, ValueError, EOFError, KeyError, zlib.error) as exc:
            raise CheckpointError(
                f"{path} is damaged: an array in it cannot be read ({type(exc).__name__})"
            ) from None


MAX_DEPTH = 64  # of a manifest's JSON: architectures nest a few levels, never 64


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` says in one line what is wrong with a bad
    file (missing, empty, truncated, not a checkpoint, written by a newer fcnn)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        arrays = _read_arrays(path)
    except OSError as exc:  # opening or reading the file itself
        raise CheckpointError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        manifest = json.loads(str(arrays.pop(MANIFEST)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the manifest is not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: the manifest is nested too deeply") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: the manifest is not a JSON object")
    if tree.nests_deeper(manifest, MAX_DEPTH):
        raise CheckpointError(f"{path}: the manifest is nested more than {MAX_DEPTH} deep")
    version = manifest.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer fcnn ({manifest.get('fcnn_version')}, checkpoint "
            f"format {version}; this fcnn reads format {FORMAT_VERSION}): upgrade fcnn"
        )
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is not one fcnn wrote")
    return Checkpoint(manifest, arrays)


def fill(template: Any, stored: dict[str, np.ndarray], what: str) -> Any:
    """``template``'s tree with every leaf taken from ``stored`` (by path), shapes checked."""
    paths = [p for p, _ in tree.flatten_with_paths(template)]
    leaves, treedef = tree.flatten(template)
    missing = [p for p in paths if p not in stored]
    extra = sorted(set(stored) - set(paths))
    if missing or extra:
        raise CheckpointError(
            f"the checkpoint's {what} do not match the architecture: "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
        )
    out = []
    for p, leaf in zip(paths, leaves, strict=True):
        value = stored[p]
        if np.shape(value) != np.shape(leaf):
            raise CheckpointError(
                f"the checkpoint's {what} do not match the architecture: {p} has shape "
                f"{np.shape(value)}, the model expects {np.shape(leaf)}"
            )
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            out.append(int(value))  # a counter (an optimizer's step count) stays an int
        else:
            out.append(value.astype(np.asarray(leaf).dtype, copy=False) if value.ndim else value)
    return tree.unflatten(treedef, out)


MAX_INPUT_VALUES = 1 << 26  # one example: 3 x 4096 x 4096 pixels is 50 million


def input_shape(info: ModelManifest) -> tuple[int, ...]:
    """The manifest's input shape, checked: 1 to 3 positive integers, at most
    :data:`MAX_INPUT_VALUES` values in all (CheckpointError otherwise)."""
    shape = info.input_shape
    if (
        shape is None
        or not 1 <= len(shape) <= 3
        or not all(type(d) is int and d >= 1 for d in shape)
        or int(np.prod(shape, dtype=np.float64)) > MAX_INPUT_VALUES
    ):
        raise CheckpointError(
            f"the checkpoint's input_shape {shape!r} is not 1 to 3 positive integers of at "
            f"most {MAX_INPUT_VALUES:,} values in all"
        )
    return tuple(shape)


def build(ckpt: Checkpoint) -> tuple[layers.Layer, Any, Any]:
    """The network, params and state of a checkpoint, rebuilt from its architecture spec."""
    spec = ckpt.info.architecture
    if spec is None:
        raise CheckpointError("the checkpoint's manifest has no architecture")
    shape = input_shape(ckpt.info)
    try:
        net = layers.from_spec(spec)
        _, params, state = net.init(fr.key(0), shape)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's architecture cannot be built: {exc}") from None
    except MemoryError:
        raise CheckpointError("the checkpoint's architecture is too large to build") from None
    return (
        net,
        fill(params, ckpt.group("params"), "params"),
        fill(state, ckpt.group("state"), "state"),
    )
