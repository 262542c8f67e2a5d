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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fcnn import checkpoint
from fcnn.answer import Answer, decide
from fcnn.calibration import Calibration
from fcnn.data.imagefolder import decode_image
from fcnn.data.transforms import Normalization, normalize
from fcnn.decision import AnswerRules, DecisionRule
from fcnn.layers import Layer, fuse
from fcnn.layers.combinators import feature_split
from fcnn.layers.cost import layer_costs
from fcnn.layers.folding import fold_batchnorm
from fcnn.ood import OodDetector
from fcnn.predict import features, predict_logits
from fcnn.tta import LEVELS as TTA_LEVELS

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
    input_shape: tuple[int, ...]  # one example's, (C, H, W)
    normalization: Normalization
    manifest: checkpoint.ModelManifest
    calibration: Calibration = Calibration()
    ood: OodDetector | None = None
    decision: DecisionRule = DecisionRule()
    # how an answer is flagged (uncertain, high risk); None for models stored without them
    answer_rules: AnswerRules | None = None
    # test-time augmentation of raw_logits, predict and evaluate (fcnn.tta): the training
    # config's evaluate.tta; the site's analyse never uses it
    tta: int = 0

    @functools.cached_property
    def _runs(self) -> tuple[Layer, Layer | None, Any, Any]:
        """The network as inference runs it, built once: BatchNorms folded into the layers
        before them (:func:`fcnn.layers.folding.fold_batchnorm`), cut at its feature tap
        when it has an out-of-distribution detector to feed, each part fused
        (:func:`fcnn.layers.fuse`): ``(features part or whole net, rest or None, params,
        state)``."""
        net, params, state = fold_batchnorm(self.net, self.params, self.state)
        if self.ood is None:
            return fuse(net), None, params, state
        head, tail = feature_split(net)
        return fuse(head), fuse(tail), params, state

    def analyse(self, images: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Calibrated probabilities (N, K) and per-image out-of-distribution reasons, from one
        forward pass (the features are read off on the way to the logits)."""
        x = self.preprocess(images)
        head, tail, params, state = self._runs
        if tail is None or self.ood is None:
            logits = head.apply(params, x, state=state, train=False)[0]
            return self.calibration.probabilities(logits), [None] * len(x)
        k = len(head.children)
        feats = head.apply(params[:k], x, state=state[:k], train=False)[0]
        logits = tail.apply(params[k:], feats, state=state[k:], train=False)[0]
        return self.calibration.probabilities(logits), self.ood.reasons(np.asarray(images), feats)

    def answers(
        self,
        images: np.ndarray,
        batch_size: int = 256,
        *,
        class_risk: Mapping[str, str] | None = None,
    ) -> list[Answer]:
        """The model's answer for each raw-pixel image (N, C, H, W) by the rules stored in it
        (:func:`fcnn.answer.decide`): the class its decision rule names, the uncertain flag
        and, with answer rules or ``class_risk`` (a level per class name), the risk level."""
        images = self._checked(images)
        out: list[Answer] = []
        for start in range(0, len(images), batch_size):
            probs, reasons = self.analyse(images[start : start + batch_size])
            out += [
                decide(p, self.class_names, self.decision, self.answer_rules, r, class_risk)
                for p, r in zip(probs, reasons, strict=True)
            ]
        return out

    def features(
        self, images: np.ndarray, batch_size: int = 500, *, scale: float | None = None
    ) -> np.ndarray:
        """Penultimate (global-average-pooled) features of raw-pixel images."""
        images = self._checked(images, scale)
        return features(self.net, self.params, self.state, images, self.normalization, batch_size)

    def unfamiliar(self, images: np.ndarray) -> list[str | None]:
        """Per image ``"not_skin"`` when it does not look like the training data, else None
        (always None when the model has no out-of-distribution detector)."""
        if self.ood is None:
            return [None] * len(images)
        return self.ood.reasons(np.asarray(images), self.features(images))

    def _checked(self, images: np.ndarray, scale: float | None = None) -> np.ndarray:
        """``images`` as a non-empty (N, C, H, W) batch of 0..255 pixels, or ValueError saying
        what is wrong. One (C, H, W) image is taken as a batch of one. ``scale`` multiplies
        the values first (``scale=255`` for images in 0..1)."""
        images = np.asarray(images)
        want = f"(N, {', '.join(map(str, self.input_shape))})"
        if images.ndim == 3 and images.shape == self.input_shape:
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            hint = ""
            if images.ndim == 3 and images.shape[1:] == self.input_shape[1:]:
                hint = "; a batch of one-channel images needs its channel axis: images[:, None]"
            raise ValueError(f"this model takes images of shape {want}, got {images.shape}{hint}")
        if len(images) == 0:
            raise ValueError(f"the batch is empty: pass at least one image of shape {want}")
        if not (
            np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
        ):
            raise ValueError(f"images must be numbers (uint8 or float), got dtype {images.dtype}")
        if scale is not None:
            images = images.astype(np.float32) * np.float32(scale)
        if np.issubdtype(images.dtype, np.floating):
            _check_pixel_values(images, scale)
        return images

    def preprocess(self, images: np.ndarray, *, scale: float | None = None) -> np.ndarray:
        """Raw pixels (N, C, H, W) in 0..255 -> normalized float32, checked."""
        return normalize(self._checked(images, scale), self.normalization)

    def raw_logits(
        self, images: np.ndarray, batch_size: int = 500, *, scale: float | None = None
    ) -> np.ndarray:
        """The network's logits (N, K) before calibration."""
        images = self._checked(images, scale)
        return predict_logits(
            self.net, self.params, self.state, images, self.normalization, batch_size, tta=self.tta
        )

    def logits(
        self, images: np.ndarray, batch_size: int = 500, *, scale: float | None = None
    ) -> np.ndarray:
        """Calibrated logits (N, K) (the raw ones when the model has no calibration)."""
        return self.calibration.apply(self.raw_logits(images, batch_size, scale=scale))

    def predict(
        self, images: np.ndarray, batch_size: int = 500, *, scale: float | None = None
    ) -> np.ndarray:
        """Calibrated class probabilities (N, K) for raw-pixel images (N, C, H, W), 0..255.

        Images scaled to 0..1 are refused (a model trained on 0..255 pixels answers them
        wrongly, without a sign); pass ``scale=255`` for those.
        """
        return self.calibration.probabilities(self.raw_logits(images, batch_size, scale=scale))

    def classify(
        self, images: np.ndarray, batch_size: int = 500, *, scale: float | None = None
    ) -> np.ndarray:
        """The answered class index of each raw-pixel image: the model's decision rule on the
        calibrated probabilities (their argmax unless it stores a prior correction)."""
        return self.decision.decide(self.predict(images, batch_size, scale=scale))

    def load_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Image files decoded and resized to the model's input: uint8 (N, C, H, W)."""
        return np.stack([self.load_image(p) for p in paths])

    def load_image(self, path: str | Path) -> np.ndarray:
        """One image file through :func:`fcnn.data.preprocess.prepare_image`: (C, H, W) uint8."""
        mode = "L" if self.input_shape[0] == 1 else "RGB"
        return decode_image(Path(path), (self.input_shape[1], self.input_shape[2]), mode)

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


def _check_pixel_values(images: np.ndarray, scale: float | None) -> None:
    """ValueError for float pixels that are not finite, outside 0..255, or (without an
    explicit ``scale``) all in 0..1 with a fraction among them: images scaled to 0..1."""
    if not np.isfinite(images).all():
        raise ValueError("the images contain NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 255.0:
        raise ValueError(
            f"pixel values must lie in 0..255 (raw pixels; the model normalizes them itself), "
            f"got {low:g}..{high:g}"
        )
    if scale is None and high <= 1.0 and not np.array_equal(images, np.round(images)):
        raise ValueError(
            "the images look scaled to 0..1, but this model takes 0..255 pixels: multiply "
            "them by 255, or pass scale=255 (an all-black image of zeros is fine as it is)"
        )


def _tta_level(config: dict | None) -> int:
    """The test-time augmentation level a model's training config asks of its predictions."""
    level = ((config or {}).get("evaluate") or {}).get("tta", 0)
    if level not in TTA_LEVELS:
        raise checkpoint.CheckpointError(f"the checkpoint's config asks for tta {level!r}")
    return int(level)


def _from_checkpoint(ckpt: checkpoint.Checkpoint) -> Model:
    net, params, state = checkpoint.build(ckpt)
    m = ckpt.info
    if not m.class_names or m.normalization is None:
        missing = "class_names" if not m.class_names else "normalization"
        raise checkpoint.CheckpointError(f"the checkpoint's manifest lacks {missing!r}")
    if m.input_shape is None:
        raise checkpoint.CheckpointError("the checkpoint's manifest lacks 'input_shape'")
    input_shape = tuple(m.input_shape)
    # the layer table inference sizes its shards by (cached per spec and shape)
    rows = layer_costs(net.spec, input_shape)
    out_shape = rows[-1].output_shape if rows else input_shape
    if out_shape != (len(m.class_names),) or not all(isinstance(c, str) for c in m.class_names):
        raise checkpoint.CheckpointError(
            f"the checkpoint names {len(m.class_names)} classes for a network with outputs of "
            f"shape {out_shape}"
        )
    try:
        return Model(
            net,
            params,
            state,
            m.class_names,
            input_shape,
            Normalization.from_dict(m.normalization),
            m,
            Calibration.from_dict(m.calibration),
            OodDetector.from_manifest(m.ood, ckpt.group("ood")) if m.ood is not None else None,
            DecisionRule.from_dict(m.decision),
            None if m.answer_rules is None else AnswerRules.from_dict(m.answer_rules),
            _tta_level(m.config),
        )
    except KeyError as exc:
        raise checkpoint.CheckpointError(f"the checkpoint's manifest lacks {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        # a section of the right kind with the wrong insides: no traceback, one line
        raise checkpoint.CheckpointError(
            f"the checkpoint's manifest has a malformed section ({type(exc).__name__})"
        ) from None


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
