"""Fine-tuning: start a run from another model's weights, and keep some of them fixed.

``train.init_from: CHECKPOINT`` loads every parameter and state leaf (BatchNorm running
statistics) whose tree path and shape match the new network's; the rest keep their fresh
initialization (a classifier head for another class count, say). :func:`load_matching`
says which did which, for the run's log.

``train.freeze: [...]`` names layers by index (``0``: the network's first layer) or by tree
path prefix (``"3.0"``: the first child of layer 3): :func:`frozen_mask` marks their
parameters, which the optimizer then leaves exactly as they are
(:func:`fcnn.optim.freeze`). When the network's first layers are frozen whole,
:func:`frozen_prefix` counts them; the training step runs them as a fixed feature
extractor, in inference mode (BatchNorm with its loaded running statistics, no dropout, as
Keras does for frozen layers) and without a backward pass, so their weight gradients are
never computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcnn import tree
from fcnn.checkpoint import Checkpoint

__all__ = ["frozen_mask", "frozen_prefix", "load_matching", "path_matches"]


def path_matches(path: str, prefix: str) -> bool:
    """Whether tree path ``path`` lies under ``prefix`` (whole components: "1" covers "1.w"
    and "1.0.b", not "10.w")."""
    return path == prefix or path.startswith(prefix + ".")


def _take_matching(template: Any, stored: dict[str, np.ndarray], group: str):
    """``template`` with each leaf replaced by ``stored``'s of the same path and shape;
    (tree, loaded paths, lines for the paths that kept their initialization)."""
    out, loaded, kept = [], [], []
    for path, leaf in tree.flatten_with_paths(template):
        value = stored.get(path)
        if value is None:
            kept.append(f"{group} {path}: not in the checkpoint")
            out.append(leaf)
        elif np.shape(value) != np.shape(leaf):
            kept.append(
                f"{group} {path}: shape {tuple(np.shape(value))} in the checkpoint, "
                f"{tuple(np.shape(leaf))} here"
            )
            out.append(leaf)
        else:
            loaded.append(f"{group} {path}")
            out.append(np.asarray(value).astype(np.asarray(leaf).dtype, copy=True))
    _, treedef = tree.flatten(template)
    return tree.unflatten(treedef, out), loaded, kept


def load_matching(
    params: Any, state: Any, source: Checkpoint
) -> tuple[Any, Any, list[str], list[str]]:
    """``params`` and ``state`` with every leaf that ``source`` holds at the same path with
    the same shape; also (loaded leaves, leaves kept fresh with the reason), for the log.

    Raises ValueError when nothing matches: a fine-tuning run that loads no weight is a
    mistake (another architecture), not a fresh start."""
    new_params, loaded_p, kept_p = _take_matching(params, source.group("params"), "params")
    new_state, loaded_s, kept_s = _take_matching(state, source.group("state"), "state")
    if not loaded_p:
        raise ValueError(
            "train.init_from: no parameter of the checkpoint matches this network by path "
            "and shape (was it trained with another architecture?)"
        )
    return new_params, new_state, loaded_p + loaded_s, kept_p + kept_s


def frozen_mask(params: Any, freeze: tuple[int | str, ...]) -> Any:
    """A tree like ``params`` of bools: True where a leaf lies under one of ``freeze``'s layer
    indices or path prefixes. ValueError names an entry that matches no parameter."""
    prefixes = [str(entry) for entry in freeze]
    paths = [path for path, _ in tree.flatten_with_paths(params)]
    for entry in prefixes:
        if not any(path_matches(p, entry) for p in paths):
            layers = sorted({p.split(".", 1)[0] for p in paths}, key=_index_order)
            raise ValueError(
                f"train.freeze: {entry!r} matches no parameter of the network; the layers "
                f"with parameters are {', '.join(layers)} (see fcnn summary for the paths)"
            )
    flags = [any(path_matches(p, entry) for entry in prefixes) for p in paths]
    if flags and all(flags):
        raise ValueError("train.freeze covers every parameter of the network: nothing to train")
    _, treedef = tree.flatten(params)
    return tree.unflatten(treedef, flags)


def _index_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def frozen_prefix(params: Any, mask: Any) -> int:
    """How many of a serial network's first layers run forward-only: the layers up to and
    including the last one with parameters in the leading run of layers whose parameters are
    all frozen (layers without parameters between them count in; those after it do not, so a
    Dropout after a frozen backbone still drops). ``params`` is the serial's tuple of
    per-layer params and ``mask`` its :func:`frozen_mask`; 0 for a network that is not a tuple
    of layers or whose first layer with parameters trains."""
    if not isinstance(params, tuple):
        return 0
    count = 0
    for i, (layer_params, layer_mask) in enumerate(zip(params, mask, strict=True)):
        flags = tree.leaves(layer_mask)
        if not all(flags):
            break
        if tree.leaves(layer_params):
            count = i + 1
    return count
