"""The prediction service: safe image decoding, the model's answer in plain terms, saliency.

Everything here works on bytes in memory and returns plain data; the Litestar layer in
:mod:`webapp.app` only moves it over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fcnn import explain
from fcnn.data.preprocess import prepare_image
from fcnn.inference import Model

__all__ = ["CONDITIONS_FILE", "ImageProblem", "Predictor", "decode_image", "load_conditions"]

CONDITIONS_FILE = Path(__file__).parent / "conditions.json"
MALIGNANT = ("akiec", "bcc", "mel")
RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


class ImageProblem(Exception):
    """An upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def load_conditions(path: Path = CONDITIONS_FILE) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text(encoding="utf-8"))


def decode_image(data: bytes, content_type: str | None, max_pixels: int) -> Image.Image:
    """Open and fully decode ``data``; :class:`ImageProblem` with 400/413/415 otherwise."""
    if not data:
        raise ImageProblem(
            400, "The uploaded file is empty. Choose a photo of the skin lesion and try again."
        )
    too_big = ImageProblem(
        413, f"The image has more than the {max_pixels:,} pixels allowed. Resize it and try again."
    )
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb limit is process-wide; DermaScan applies its setting below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise too_big from None
    except UnidentifiedImageError:
        if content_type and content_type.startswith("image/"):
            raise ImageProblem(
                400,
                "The file says it is an image but cannot be read; it may "
                "be corrupt. Try another photo (JPEG, PNG or WebP).",
            ) from None
        raise ImageProblem(
            415,
            "This file is not an image DermaScan can read. Upload a photo "
            "in JPEG, PNG or WebP format.",
        ) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageProblem(
            413,
            f"The image has {width}×{height} pixels, more than the "
            f"{max_pixels:,} allowed. Resize it and try again.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked above
            img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageProblem(
            400, f"The image is damaged or truncated ({exc}). Try another photo."
        ) from None
    return img


def _overlay_png(img: Image.Image, saliency: np.ndarray, side: int = 224) -> str:
    """The photo (upright, RGB, no metadata) with the saliency map in red over it, as base64."""
    photo = (
        ImageOps.exif_transpose(img).convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    )
    heat = Image.fromarray((saliency * 255).astype(np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    base = np.asarray(photo, dtype=np.float32)
    alpha = np.asarray(heat, dtype=np.float32)[..., None] / 255.0 * 0.65
    red = np.array([255.0, 40.0, 40.0])
    out = (base * (1 - alpha) + red * alpha).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")  # a new image: no EXIF, no original bytes
    return base64.b64encode(buf.getvalue()).decode("ascii")


@attrs.frozen(eq=False)
class Predictor:
    """A loaded model plus the conditions database and the confidence threshold."""

    model: Model
    conditions: dict[str, dict[str, str]]
    confidence_threshold: float

    @property
    def version(self) -> str:
        m = self.model.manifest
        return str(
            m.get("model_version") or f"{m.get('model', 'model')}-fcnn{m.get('fcnn_version')}"
        )

    def saliency(self, x: np.ndarray, class_index: int) -> np.ndarray:
        """|d score / d input| (max over channels) of normalized ``x`` (1, C, H, W), in 0..1."""
        grad = explain.input_gradient(
            self.model.net, self.model.params, self.model.state, x, class_index
        )
        s = np.abs(grad[0]).max(axis=0)
        top = float(np.percentile(s, 99)) or 1.0
        return np.clip(s / top, 0.0, 1.0)

    def predict(self, img: Image.Image, explain_it: bool = False) -> dict[str, Any]:
        """The answer for one decoded image, as the API returns it."""
        arr = prepare_image(img, self.model.input_shape[1:], self.model.input_shape[0])[None]
        probs_batch, reasons = self.model.analyse(arr)  # one forward pass
        probs = probs_batch[0]
        codes = self.model.class_names
        order = np.argsort(-probs)
        predictions = [
            {
                "code": codes[i],
                "name": self.conditions[codes[i]]["short_name"],
                "probability": float(probs[i]),
            }
            for i in order
        ]
        # the answer is the model's decision (it may weigh rare conditions up), which is not
        # always the most probable class; the bars show every probability
        decided = codes[int(self.model.decision.decide(probs[None])[0])]
        top = next(p for p in predictions if p["code"] == decided)
        reason = reasons[0]
        if reason is None and predictions[0]["probability"] < self.confidence_threshold:
            reason = "low_confidence"
        malignant = float(sum(probs[codes.index(c)] for c in MALIGNANT if c in codes))
        risk = self.conditions[top["code"]]["risk_level"]
        if malignant >= 0.3 and RISK_ORDER[risk] < RISK_ORDER["high"]:
            risk = "high"  # a sizeable chance of a cancer outweighs a benign top answer
        elif reason == "low_confidence" and RISK_ORDER[risk] < RISK_ORDER["medium"]:
            risk = "medium"  # unsure: discuss it with a doctor
        answer: dict[str, Any] = {
            "predictions": predictions,
            "top": top,
            "risk_level": risk,
            "uncertain": reason is not None,
            "uncertain_reason": reason,
            "malignant_probability": malignant,
            "model_version": self.version,
        }
        if explain_it:
            x = self.model.preprocess(arr)
            answer["saliency_png"] = _overlay_png(img, self.saliency(x, codes.index(top["code"])))
        return answer
