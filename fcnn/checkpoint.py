"""Checkpoints: one ``.npz`` file of arrays under tree-path keys plus a JSON manifest.

Layout of the archive:

- ``params/<path>``: trainable parameters (``path`` as in :func:`fcnn.tree.flatten_with_paths`);
- ``state/<path>``: non-trainable state (BatchNorm running statistics);
- ``opt_state/<path>``: optimizer state, only in resumable checkpoints;
- ``__manifest__``: a JSON string with the architecture spec, the input shape,
  class names, normalization, metrics, the resolved config and the fcnn version.

Files are written atomically (temporary file + rename) and read with
``allow_pickle=False``: a checkpoint can never run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fcnn import layers, tree
from fcnn import random as fr
from fcnn.io import atomic_write
from fcnn.version import __version__

__all__ = ["Checkpoint", "CheckpointError", "build", "fill", "load", "save"]

FORMAT_VERSION = 1
_MANIFEST = "__manifest__"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match the expected architecture."""


@attrs.frozen(eq=False)
class Checkpoint:
    """What a checkpoint holds once loaded; ``arrays`` maps archive keys to arrays."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def group(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays stored under ``prefix/``, keyed by tree path."""
        start = prefix + "/"
        return {k[len(start) :]: v for k, v in self.arrays.items() if k.startswith(start)}


def save(path: str | Path, manifest: dict[str, Any], **trees: Any) -> Path:
    """Write ``trees`` (e.g. ``params=..., state=...``) and ``manifest`` atomically to ``path``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise CheckpointError(f"checkpoint paths end in .npz, got {path}")
    arrays: dict[str, np.ndarray] = {}
    for group, t in trees.items():
        for leaf_path, leaf in tree.flatten_with_paths(t):
            arrays[f"{group}/{leaf_path}"] = np.asarray(leaf)
    full = {"format_version": FORMAT_VERSION, "fcnn_version": __version__, **manifest}
    arrays[_MANIFEST] = np.array(json.dumps(full, sort_keys=True))
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` says what is wrong with a bad file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable fcnn checkpoint ({exc})") from None
    if _MANIFEST not in arrays:
        raise CheckpointError(f"{path} has no manifest: it was not written by fcnn")
    try:
        manifest = json.loads(str(arrays.pop(_MANIFEST)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {manifest.get('format_version')} is not supported "
            f"(this fcnn reads format {FORMAT_VERSION})"
        )
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
        out.append(value.astype(np.asarray(leaf).dtype, copy=False) if value.ndim else value)
    return tree.unflatten(treedef, out)


def build(ckpt: Checkpoint) -> tuple[layers.Layer, Any, Any]:
    """The network, params and state of a checkpoint, rebuilt from its architecture spec."""
    spec = ckpt.manifest.get("architecture")
    shape = ckpt.manifest.get("input_shape")
    if spec is None or shape is None:
        raise CheckpointError("the checkpoint's manifest has no architecture or input_shape")
    try:
        net = layers.from_spec(spec)
        _, params, state = net.init(fr.key(0), tuple(shape))
    except ValueError as exc:
        raise CheckpointError(f"the checkpoint's architecture cannot be built: {exc}") from None
    return (
        net,
        fill(params, ckpt.group("params"), "params"),
        fill(state, ckpt.group("state"), "state"),
    )
