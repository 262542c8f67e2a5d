"""Inference in scripts: load a trained model and predict on arrays or image files.

::

    model = fcnn.load("checkpoints/lenet_mnist_best.npz")   # or an exported folder
    probs = model.predict(images)          # uint8 or 0..255 float images, (N, C, H, W)
    top = model.predict_files(["digit.png"], k=3)

Images are normalized with the statistics stored in the checkpoint, so callers
pass raw pixels.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fcnn import checkpoint
from fcnn.calibration import Calibration
from fcnn.data.imagefolder import decode_image
from fcnn.data.transforms import Normalization, normalize
from fcnn.decision import DecisionRule
from fcnn.explain import split_layers
from fcnn.layers import Layer
from fcnn.layers.folding import fold_batchnorm
from fcnn.ood import OodDetector
from fcnn.training.loop import features, predict_logits

__all__ = ["EXPORT_ARCHITECTURE", "EXPORT_WEIGHTS", "Model", "load"]

EXPORT_ARCHITECTURE = "model.json"
EXPORT_WEIGHTS = "weights.npz"


@attrs.frozen(eq=False)
class Model:
    """A network with its trained params, state and preprocessing facts."""

    net: Layer
    params: Any
    state: Any
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    normalization: Normalization
    manifest: dict[str, Any]
    calibration: Calibration = Calibration()
    ood: OodDetector | None = None
    decision: DecisionRule = DecisionRule()

    @functools.cached_property
    def _folded(self) -> tuple[list[Layer], Any, Any]:
        """(top-level layers, params, state) of the network with its BatchNorms folded into
        the layers before them (:func:`fcnn.layers.folding.fold_batchnorm`), built once."""
        net, params, state = fold_batchnorm(self.net, self.params, self.state)
        return split_layers(net), params, state

    def analyse(self, images: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Calibrated probabilities (N, K) and per-image out-of-distribution reasons, from one
        forward pass (the features are read off on the way to the logits)."""
        x = self.preprocess(images)
        feats = None
        layers, params, state = self._folded
        for i, layer in enumerate(layers):
            x, _, _ = layer.apply(params[i], x, state=state[i], train=False)
            if layer.name == "GlobalAvgPool2D":
                feats = x
        probs = self.calibration.probabilities(x)
        if self.ood is None or feats is None:
            return probs, [None] * len(probs)
        return probs, self.ood.reasons(np.asarray(images), feats)

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Penultimate (global-average-pooled) features of raw-pixel images."""
        images = self._checked(images)
        return features(self.net, self.params, self.state, images, self.normalization, batch_size)

    def unfamiliar(self, images: np.ndarray) -> list[str | None]:
        """Per image ``"not_skin"`` when it does not look like the training data, else None
        (always None when the model has no out-of-distribution detector)."""
        if self.ood is None:
            return [None] * len(images)
        return self.ood.reasons(np.asarray(images), self.features(images))

    def _checked(self, images: np.ndarray) -> np.ndarray:
        """``images`` as (N, C, H, W), or ValueError naming the shape the model takes."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.shape[1:] != self.input_shape:
            raise ValueError(
                f"this model takes images of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {images.shape}"
            )
        return images

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Raw pixels (N, C, H, W) in 0..255 -> normalized float32, shape checked."""
        return normalize(self._checked(images), self.normalization)

    def raw_logits(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """The network's logits (N, K) before calibration."""
        images = self._checked(images)
        return predict_logits(
            self.net, self.params, self.state, images, self.normalization, batch_size
        )

    def logits(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Calibrated logits (N, K) (the raw ones when the model has no calibration)."""
        return self.calibration.apply(self.raw_logits(images, batch_size))

    def predict(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Calibrated class probabilities (N, K) for raw-pixel images (N, C, H, W)."""
        return self.calibration.probabilities(self.raw_logits(images, batch_size))

    def classify(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """The answered class index of each raw-pixel image: the model's decision rule on the
        calibrated probabilities (their argmax unless it stores a prior correction)."""
        return self.decision.decide(self.predict(images, batch_size))

    def load_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Image files decoded and resized to the model's input: uint8 (N, C, H, W)."""
        return np.stack([self.load_image(p) for p in paths])

    def load_image(self, path: str | Path) -> np.ndarray:
        """One image file through :func:`fcnn.data.preprocess.prepare_image`: (C, H, W) uint8."""
        mode = "L" if self.input_shape[0] == 1 else "RGB"
        return decode_image(Path(path), self.input_shape[1:], mode)

    def predict_files(
        self, paths: Sequence[str | Path], k: int = 3
    ) -> list[list[tuple[str, float]]]:
        """The top ``k`` ``(class name, probability)`` pairs for each image file."""
        probs = self.predict(self.load_images(paths))
        top = np.argsort(-probs, axis=1)[:, :k]
        return [
            [(self.class_names[j], float(p[j])) for j in row]
            for p, row in zip(probs, top, strict=True)
        ]


def _from_checkpoint(ckpt: checkpoint.Checkpoint) -> Model:
    net, params, state = checkpoint.build(ckpt)
    m = ckpt.manifest
    try:
        return Model(
            net,
            params,
            state,
            tuple(m["class_names"]),
            tuple(m["input_shape"]),
            Normalization.from_dict(m["normalization"]),
            m,
            Calibration.from_dict(m.get("calibration")),
            OodDetector.from_manifest(m["ood"], ckpt.group("ood")) if "ood" in m else None,
            DecisionRule.from_dict(m.get("decision")),
        )
    except KeyError as exc:
        raise checkpoint.CheckpointError(f"the checkpoint's manifest lacks {exc}") from None


def load(path: str | Path) -> Model:
    """A :class:`Model` from a checkpoint ``.npz`` or a folder written by ``fcnn export``."""
    path = Path(path)
    if path.is_dir():
        arch_file, weights = path / EXPORT_ARCHITECTURE, path / EXPORT_WEIGHTS
        if not arch_file.is_file() or not weights.is_file():
            raise checkpoint.CheckpointError(
                f"{path} is not an exported model: it needs {EXPORT_ARCHITECTURE} "
                f"and {EXPORT_WEIGHTS}"
            )
        try:
            manifest = json.loads(arch_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise checkpoint.CheckpointError(f"{arch_file} is not valid JSON ({exc})") from None
        ckpt = checkpoint.load(weights)
        return _from_checkpoint(checkpoint.Checkpoint({**ckpt.manifest, **manifest}, ckpt.arrays))
    return _from_checkpoint(checkpoint.load(path))
