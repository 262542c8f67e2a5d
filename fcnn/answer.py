"""A model's answer for one image, by the rules stored in it: what ``fcnn predict``, the
DermaScan site and the ONNX ``decision`` output all give for the same pixels.

- the answered class is the model's decision rule on the calibrated probabilities
  (:class:`fcnn.decision.DecisionRule`: the argmax unless it weighs rare classes up), which
  is not always the most probable class;
- ``uncertain_reason``: ``"not_skin"`` (or the detector's reason) when the image is out of
  the training distribution, else ``"low_confidence"`` when the top probability is below the
  answer rules' ``uncertain_below``, else None;
- ``risk_level``: the answered class's own level (from ``class_risk``, e.g. the site's
  conditions; without it the classes the rules call high risk are "high" and the others
  "low"), raised to "high" when the high-risk classes together reach ``high_risk_at``, and
  to "medium" when a low answer is uncertain for low confidence. None for a model without
  answer rules and no ``class_risk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from fcnn.decision import AnswerRules, DecisionRule

__all__ = ["RISK_ORDER", "Answer", "decide"]

RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


@attrs.frozen(eq=False)
class Answer:
    """One image's answer. ``probabilities`` (K,) are calibrated, in class order."""

    class_names: tuple[str, ...]
    probabilities: np.ndarray
    top: int  # the answered class's index
    uncertain_reason: str | None
    malignant_probability: float | None  # summed high-risk probability; None without rules
    risk_level: str | None

    @property
    def uncertain(self) -> bool:
        return self.uncertain_reason is not None

    def ranked(self, k: int | None = None) -> list[tuple[str, float]]:
        """``(class name, probability)`` pairs, most probable first (the first ``k``)."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, k: int | None = None, names: Mapping[str, str] | None = None) -> dict:
        """The JSON form, with the keys and meanings of DermaScan's ``POST /api/predict``:
        ``predictions`` (the first ``k`` by probability), ``top`` (the model's answer),
        ``risk_level``, ``uncertain``, ``uncertain_reason``, ``malignant_probability``.
        ``names`` maps class codes to display names (the site's conditions)."""

        def entry(code: str, p: float) -> dict[str, Any]:
            return {"code": code, **({"name": names[code]} if names else {}), "probability": p}

        code = self.class_names[self.top]
        return {
            "predictions": [entry(c, p) for c, p in self.ranked(k)],
            "top": entry(code, float(self.probabilities[self.top])),
            "risk_level": self.risk_level,
            "uncertain": self.uncertain,
            "uncertain_reason": self.uncertain_reason,
            "malignant_probability": self.malignant_probability,
        }


def decide(
    probs: np.ndarray,
    class_names: tuple[str, ...],
    decision: DecisionRule,
    rules: AnswerRules | None,
    ood_reason: str | None = None,
    class_risk: Mapping[str, str] | None = None,
) -> Answer:
    """The :class:`Answer` for one image's calibrated probabilities ``probs`` (K,), given the
    model's decision rule, its answer rules (None: none) and the out-of-distribution
    detector's reason (None: in distribution); see the module docstring."""
    probs = np.asarray(probs, np.float64)
    top = int(decision.decide(probs[None])[0])
    reason = ood_reason
    if reason is None and rules is not None and rules.is_uncertain(float(probs.max())):
        reason = "low_confidence"
    malignant = None if rules is None else rules.high_risk_probability(probs, class_names)
    code = class_names[top]
    if class_risk is not None:
        risk: str | None = class_risk[code]
    elif rules is not None:
        risk = "high" if code in rules.high_risk_classes else "low"
    else:
        risk = None
    if risk is not None and rules is not None:
        if rules.is_high_risk(probs, class_names) and RISK_ORDER[risk] < RISK_ORDER["high"]:
            risk = "high"  # a sizeable chance of a cancer outweighs a benign top answer
        elif reason == "low_confidence" and RISK_ORDER[risk] < RISK_ORDER["medium"]:
            risk = "medium"  # unsure: discuss it with a doctor
    return Answer(class_names, probs, top, reason, malignant, risk)
