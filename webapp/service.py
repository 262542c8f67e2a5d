"""The prediction service: the model's answer in plain terms, and saliency.

Uploaded bytes become pixels through :func:`webapp.images.read_image` (allow-listed
formats, bounded memory, the training loader's preprocessing).

Everything here works on bytes in memory and returns plain data; the Litestar layer in
:mod:`webapp.app` only moves it over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from PIL import Image

from fcnn import explain
from fcnn.answer import decide
from fcnn.decision import AnswerRules
from fcnn.inference import Model
from webapp.images import DecodeBudget, read_image
from webapp.metrics import Metrics
from webapp.sandbox import DecoderPool
from webapp.settings import Settings

__all__ = [
    "CONDITIONS_FILE",
    "Predictor",
    "SelfTestError",
    "check_classes",
    "class_terms",
    "load_conditions",
    "self_test",
    "site_predictor",
]

CONDITIONS_FILE = Path(__file__).parent / "conditions.json"
# the rules this site applied before models stored their own (fcnn.decision.AnswerRules):
# a model saved without them is answered as it was then
RULES_OF_OLDER_MODELS = AnswerRules(
    uncertain_below=0.35, high_risk_classes=("akiec", "bcc", "mel"), high_risk_at=0.3
)
OVERLAY_SIDE = 224
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_DECODE_MEMORY = 320 * 2**20


def load_conditions(path: Path = CONDITIONS_FILE) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text(encoding="utf-8"))


def check_classes(class_names: tuple[str, ...], conditions: dict[str, dict[str, str]]) -> None:
    """ValueError unless the conditions database describes every class of the model: the
    site answers in its terms (names, risk levels, what to do), so it serves only models of
    skin-lesion classes it knows."""
    missing = [c for c in class_names if c not in conditions]
    if missing:
        raise ValueError(
            f"the model's classes {missing[:5]} are not in DermaScan's conditions database "
            f"(it knows {', '.join(conditions)}): DermaScan serves skin-lesion models trained "
            "on those classes, e.g. fcnn train configs/dermascan.yaml"
        )


def class_terms(
    conditions: dict[str, dict[str, str]], codes: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """The risk level and the display name of each class code, from the conditions database:
    the terms the site (and ``fcnn predict``, for a skin-lesion model) answers in."""
    return (
        {c: conditions[c]["risk_level"] for c in codes},
        {c: conditions[c]["short_name"] for c in codes},
    )


def _overlay_png(photo: np.ndarray, saliency: np.ndarray) -> str:
    """``photo`` (3, S, S) uint8 with the saliency map in red over it, as base64 PNG."""
    side = photo.shape[-1]
    heat = Image.fromarray((saliency * 255).astype(np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    base = photo.transpose(1, 2, 0).astype(np.float32)  # (3, S, S) -> (S, S, 3)
    alpha = np.asarray(heat, dtype=np.float32)[..., None] / 255.0 * 0.65
    red = np.array([255.0, 40.0, 40.0])
    out = (base * (1 - alpha) + red * alpha).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")  # a new image: no EXIF, no original bytes
    return base64.b64encode(buf.getvalue()).decode("ascii")


@attrs.frozen(eq=False)
class Predictor:
    """A loaded model, the conditions database, an optional override of the model's
    "uncertain" threshold (``confidence_threshold``; None: the model's own), and the limits
    on what uploads may cost to decode (see :func:`webapp.images.read_image`; one budget is
    shared by every request of a worker)."""

    model: Model
    conditions: dict[str, dict[str, str]] = attrs.field(
        validator=lambda self, _attribute, value: check_classes(self.model.class_names, value)
    )
    confidence_threshold: float | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    budget: DecodeBudget = attrs.field(factory=lambda: DecodeBudget(DEFAULT_DECODE_MEMORY))
    # the site decodes in these processes (webapp.sandbox); None: in this process, under
    # ``budget`` (scripts, benchmarks)
    decoders: DecoderPool | None = None
    # what the site counts and times (webapp.metrics); none by default
    metrics: Metrics = attrs.field(factory=lambda: Metrics(enabled=False))

    @property
    def rules(self) -> AnswerRules:
        """The model's answer rules (an older model's: those of the site then), with the
        override of the uncertain threshold applied."""
        rules = self.model.answer_rules or RULES_OF_OLDER_MODELS
        if self.confidence_threshold is None:
            return rules
        return attrs.evolve(rules, uncertain_below=self.confidence_threshold)

    @property
    def version(self) -> str:
        return self.model.manifest.describe()

    def saliency(self, x: np.ndarray, class_index: int) -> np.ndarray:
        """|d score / d input| (max over channels) of normalized ``x`` (1, C, H, W), in 0..1."""
        grad = explain.input_gradient(
            self.model.net, self.model.params, self.model.state, x, class_index
        )
        s = np.abs(grad[0]).max(axis=0)
        top = float(np.percentile(s, 99)) or 1.0
        return np.clip(s / top, 0.0, 1.0)

    def read(
        self,
        data: bytes,
        size: tuple[int, int] | None = None,
        channels: int | None = None,
        deadline: float | None = None,
    ) -> np.ndarray:
        """Uploaded bytes as (C, H, W) uint8 pixels of ``size`` and ``channels`` (the model's
        by default); :class:`webapp.images.ImageProblem` for a file that is not a usable photo
        or, with decoder processes, one too costly to decode or not decoded by ``deadline``
        (a :func:`time.monotonic` time; default: 30 s from now)."""
        model_channels, model_h, model_w = self.model.input_shape
        size, channels = size or (model_h, model_w), channels or model_channels
        with self.metrics.decoding():
            if self.decoders is None:
                return read_image(
                    data, size, channels, max_pixels=self.max_pixels, budget=self.budget
                )
            deadline = time.monotonic() + 30.0 if deadline is None else deadline
            try:
                return self.decoders.read(data, size, channels, deadline)
            finally:
                self.metrics.decoder_memory(self.decoders.pids)

    def predict(
        self, data: bytes, explain: bool = False, deadline: float | None = None
    ) -> dict[str, Any]:
        """The answer for one uploaded photo, as the API returns it; ``explain`` adds the
        saliency overlay (the photo decoded again at the overlay's size)."""
        arr = self.read(data, deadline=deadline)[None]  # (1, C, H, W)
        codes = self.model.class_names
        risk, names = class_terms(self.conditions, codes)
        with self.metrics.predicting():
            probs_batch, reasons = self.model.analyse(arr)  # one forward pass
            # the answer is the model's decision (it may weigh rare conditions up), which is
            # not always the most probable class; the bars show every probability
            decided = decide(
                probs_batch[0], codes, self.model.decision, self.rules, reasons[0], risk
            )
        answer: dict[str, Any] = {
            **decided.to_dict(names=names),
            "model_version": self.version,
        }
        self.metrics.answer(answer["risk_level"], answer["uncertain_reason"])
        top = answer["top"]
        if explain:
            x = self.model.preprocess(arr)
            side = (OVERLAY_SIDE, OVERLAY_SIDE)
            photo = self.read(data, side, channels=3, deadline=deadline)  # RGB to draw on
            answer["saliency_png"] = _overlay_png(photo, self.saliency(x, codes.index(top["code"])))
        return answer


def site_predictor(
    settings: Settings, model: Model, decode_workers: int | None = None
) -> Predictor:
    """The predictor the site answers with under ``settings``: ``model``, the conditions, the
    override of the uncertain threshold, and ``decode_workers`` decoder processes (default:
    the settings') at the settings' limits. The caller closes ``predictor.decoders``."""
    decoders = DecoderPool(
        settings.decode_workers if decode_workers is None else decode_workers,
        settings.decode_memory_mb,
        settings.decode_cpu_s,
        settings.max_pixels,
    )
    try:
        return Predictor(
            model,
            load_conditions(),
            settings.confidence_threshold,
            max_pixels=settings.max_pixels,
            decoders=decoders,
        )
    except Exception:
        decoders.close()
        raise


class SelfTestError(RuntimeError):
    """The served model did not give a well-formed answer to the start-up self-test."""


def sample_photo(side: int = 96) -> bytes:
    """A PNG made here, never a person's: a skin-toned disc on a lighter ground."""
    yy, xx = np.mgrid[:side, :side]
    inside = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 3) ** 2
    pixels = np.where(inside[..., None], [150, 95, 75], [225, 185, 160]).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def self_test(predictor: Predictor) -> dict[str, Any]:
    """One prediction through the whole path (the decoder processes, the network, the
    answer rules) on :func:`sample_photo`: the answer, or SelfTestError saying what was wrong
    with it. The site is ready only once this has passed; ``fcnn serve --check`` runs it."""
    try:
        answer = predictor.predict(sample_photo())
    except Exception as exc:  # whatever broke, the site must not start on it
        raise SelfTestError(
            f"the self-test prediction failed: {type(exc).__name__}: {exc}"
        ) from exc
    probs = np.array([p["probability"] for p in answer["predictions"]], dtype=np.float64)
    codes = [p["code"] for p in answer["predictions"]]
    if sorted(codes) != sorted(predictor.model.class_names):
        raise SelfTestError(f"the self-test answer names {codes}, not the model's classes")
    if not (np.isfinite(probs).all() and abs(probs.sum() - 1.0) < 1e-3 and (probs >= 0).all()):
        raise SelfTestError(f"the self-test probabilities are not a distribution: {probs}")
    if answer["top"]["code"] not in codes:
        raise SelfTestError(f"the self-test answer {answer['top']['code']!r} is not a class")
    return answer
