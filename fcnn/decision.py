"""Which class to answer, given calibrated probabilities: a prior-corrected decision rule.

Calibration makes the probabilities honest, which includes honest about the class
prior: on HAM10000 a lesion is a naevus (nv) two times in three, so the most
probable class is nv for most borderline lesions, and the rare classes (melanoma
among them) are seldom answered. A decision rule may weigh the classes
differently from the probabilities without making the probabilities less true::

    answer = argmax_k  p_k · w_k        w_k = π_k^(−α)

with ``π`` the training-set class frequencies. ``α = 0`` is the plain argmax
(most accurate); ``α = 1`` divides out the prior, the Bayes rule for *balanced*
accuracy when the probabilities are calibrated. :func:`fit_prior_correction`
picks ``α`` on the validation split: the largest balanced accuracy among the
exponents that keep accuracy at or above a floor (and, optionally, the recall of chosen
classes, such as melanoma, at or above theirs). When ``α`` alone cannot lift a class to
its recall floor, the classes with floors get one more factor ``β ≥ 1`` on their weights
(``w_k = β π_k^(−α)``), fitted with ``α``: a screening aid may answer melanoma more often
than the prior correction alone would, at the cost of some accuracy on the common classes.

The flags around the answer (:class:`AnswerRules`) are fitted on validation too:
:func:`fit_screening_threshold` places the high-risk flag for a sensitivity, and
:func:`fit_uncertain_threshold` the "uncertain" threshold for a share of abstentions.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = [
    "AnswerRules",
    "DecisionRule",
    "chosen_row",
    "fit_prior_correction",
    "fit_screening_threshold",
    "fit_uncertain_threshold",
]


@attrs.frozen
class DecisionRule:
    """``argmax_k p_k · weights_k``; no weights means the plain argmax."""

    weights: tuple[float, ...] = ()
    alpha: float = 0.0  # the prior exponent the weights came from (for reports)
    boost: float = 1.0  # the extra factor of the classes ``boosted`` (for reports)
    boosted: tuple[int, ...] = ()

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """The answered class of each row of ``probs`` (N, K)."""
        probs = np.asarray(probs)
        if not self.weights:
            return probs.argmax(axis=1)
        if len(self.weights) != probs.shape[1]:
            raise ValueError(
                f"the decision rule has {len(self.weights)} class weights but the "
                f"probabilities have {probs.shape[1]} classes"
            )
        return (probs * np.asarray(self.weights, probs.dtype)).argmax(axis=1)

    def describe(self, class_names: tuple[str, ...] | list[str] = ()) -> str:
        """In words; ``class_names`` name the boosted classes (their indices without)."""
        if not self.weights:
            return "argmax of the calibrated probabilities"
        names = [class_names[c] if c < len(class_names) else f"class {c}" for c in self.boosted]
        extra = (
            f", {' and '.join(names)} weighed ×{self.boost:.2f} more"
            if self.boost != 1.0 and self.boosted
            else ""
        )
        return (
            f"prior-corrected argmax of the calibrated probabilities (α = {self.alpha:.2f}{extra})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "alpha": self.alpha,
            "boost": self.boost,
            "boosted": list(self.boosted),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DecisionRule:
        if not d:
            return cls()
        return cls(
            tuple(float(w) for w in d["weights"]),
            float(d.get("alpha", 0.0)),
            float(d.get("boost", 1.0)),  # models fitted before the boost have none
            tuple(int(c) for c in d.get("boosted", ())),
        )


def _probability(_instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


@attrs.frozen
class AnswerRules:
    """How a model's answer is flagged beyond the class it names; they belong to the model
    (fitted or chosen with it, stored in its manifest) and the web app only applies them.

    - ``uncertain_below``: a top calibrated probability below it makes the answer
      "uncertain" (0: never).
    - ``high_risk_classes`` and ``high_risk_at``: when the calibrated probabilities of those
      classes add up to ``high_risk_at`` or more, the answer is flagged high risk whatever
      class it names (a sizeable chance of a cancer outweighs a benign top answer); with
      ``high_risk_at`` None there is no such flag.
    """

    uncertain_below: float = attrs.field(default=0.0, validator=_probability)
    high_risk_classes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    high_risk_at: float | None = attrs.field(default=None, validator=_probability)

    def is_uncertain(self, top_probability: float) -> bool:
        return top_probability < self.uncertain_below

    def high_risk_probability(self, probs: np.ndarray, class_names: tuple[str, ...]) -> float:
        """The summed probability (of one answer's ``probs`` (K,)) of the high-risk classes."""
        return float(
            sum(probs[class_names.index(c)] for c in self.high_risk_classes if c in class_names)
        )

    def is_high_risk(self, probs: np.ndarray, class_names: tuple[str, ...]) -> bool:
        if self.high_risk_at is None:
            return False
        return self.high_risk_probability(probs, class_names) >= self.high_risk_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "uncertain_below": self.uncertain_below,
            "high_risk_classes": list(self.high_risk_classes),
            "high_risk_at": self.high_risk_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerRules:
        return cls(
            float(d.get("uncertain_below", 0.0)),
            tuple(d.get("high_risk_classes", ())),
            None if d.get("high_risk_at") is None else float(d["high_risk_at"]),
        )


def _scores(labels: np.ndarray, preds: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """(accuracy, balanced accuracy over the classes present, recall per class (NaN when
    a class is absent))."""
    recalls = np.full(k, np.nan)
    for c in np.unique(labels):
        if c < k:
            recalls[c] = np.mean(preds[labels == c] == c)
    return float(np.mean(preds == labels)), float(np.nanmean(recalls)), recalls


def fit_prior_correction(
    probs: np.ndarray,
    labels: np.ndarray,
    priors: np.ndarray,
    min_accuracy: float,
    alphas: np.ndarray | None = None,
    min_recall: dict[int, float] | None = None,
    boosts: np.ndarray | None = None,
) -> tuple[DecisionRule, list[dict[str, float]]]:
    """The prior exponent ``α`` (from ``alphas``, default 0, 0.05, …, 1) and the boost ``β``
    of the classes in ``min_recall`` (from ``boosts``, default 1 to 8 in 30 geometric steps;
    only 1 without recall floors) with the best balanced accuracy on (``probs``, ``labels``)
    among the pairs whose accuracy is at least ``min_accuracy`` and whose recall of each
    class ``c`` in ``min_recall`` is at least ``min_recall[c]``. Ties go to the smaller
    ``β``, then the smaller ``α``.

    When no pair meets the recall floors, they are dropped: the best balanced accuracy at the
    accuracy floor with ``β = 1`` (the plain argmax would answer the rare classes least).
    When none meets the accuracy floor either, the plain argmax. Returns the rule and the
    table of every candidate (alpha, boost, accuracy, balanced_accuracy, meets_accuracy,
    meets — the latter: every floor) it was chosen from.
    """
    probs = np.asarray(probs, np.float64)
    k = probs.shape[1]
    priors = np.asarray(priors, np.float64)
    if priors.shape != (k,) or np.any(priors <= 0):
        raise ValueError(f"priors must be {k} positive class frequencies, got {priors}")
    floors = dict(min_recall or {})
    if any(not 0 <= c < k for c in floors):
        raise ValueError(f"min_recall names classes {sorted(floors)}; the classes are 0..{k - 1}")
    alphas = np.linspace(0.0, 1.0, 21) if alphas is None else np.asarray(alphas, np.float64)
    if not floors:
        boosts = np.ones(1)
    elif boosts is None:
        boosts = np.geomspace(1.0, 8.0, 30)
    boosts = np.asarray(boosts, np.float64)
    if boosts.size == 0 or np.any(boosts < 1.0):
        raise ValueError(f"boosts must be factors >= 1, got {boosts}")
    boosted = tuple(sorted(floors))
    extra = np.ones(k)  # (K,): the factor β of the classes with floors, 1 for the others
    table = []
    every_floor: tuple[float, DecisionRule] | None = None  # (balanced accuracy, rule)
    accuracy_floor: tuple[float, DecisionRule] | None = None
    for boost in boosts:
        extra[list(boosted)] = boost
        for alpha in alphas:
            weights = priors ** (-alpha) * extra
            rule = DecisionRule(
                tuple(weights.tolist()), float(alpha), float(boost), boosted if boost != 1 else ()
            )
            acc, bal, recalls = _scores(labels, rule.decide(probs), k)
            meets_accuracy = acc >= min_accuracy
            meets = meets_accuracy and all(recalls[c] >= f for c, f in floors.items())
            table.append(
                {
                    "alpha": float(alpha),
                    "boost": float(boost),
                    "accuracy": acc,
                    "balanced_accuracy": bal,
                    "meets_accuracy": meets_accuracy,
                    "meets": meets,
                }
            )
            rule = rule if alpha != 0.0 or boost != 1.0 else DecisionRule()
            if meets and (every_floor is None or bal > every_floor[0]):
                every_floor = (bal, rule)
            # the floors dropped: the prior correction alone, as without floors
            if (
                boost == 1.0
                and meets_accuracy
                and (accuracy_floor is None or bal > accuracy_floor[0])
            ):
                accuracy_floor = (bal, rule)
    chosen = every_floor or accuracy_floor
    return (chosen[1] if chosen else DecisionRule()), table


def chosen_row(rule: DecisionRule, table: list[dict[str, float]]) -> dict[str, float]:
    """The row of :func:`fit_prior_correction`'s ``table`` that ``rule`` (which it returned)
    was scored in: its accuracy, balanced accuracy and which floors it meets."""
    return next(row for row in table if (row["alpha"], row["boost"]) == (rule.alpha, rule.boost))


def fit_screening_threshold(risk: np.ndarray, positive: np.ndarray, sensitivity: float) -> float:
    """The largest threshold ``t`` at which at least ``sensitivity`` of the positive cases
    have ``risk >= t``: the operating point of a screening flag.

    ``risk`` (N,) is each case's score (for the high-risk flag, the summed calibrated
    probability of the high-risk classes) and ``positive`` (N,) bool says which cases the
    flag must catch. The largest such threshold flags the fewest negatives for that
    sensitivity. It is returned halfway between the last positive score it must flag and
    the next lower score of any case: the same cases are flagged, and a score recomputed
    in another precision (float32 at serving time) does not fall off the threshold.
    Raises ValueError when there is no positive case to fit on.
    """
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity!r}")
    risk = np.asarray(risk, dtype=np.float64)
    scores = np.sort(risk[np.asarray(positive, dtype=bool)])[::-1]
    if scores.size == 0:
        raise ValueError("no positive case to fit a screening threshold on")
    # the k-th largest positive score flags exactly the k best-scored positives (or more, on ties)
    k = int(np.ceil(sensitivity * scores.size - 1e-9))
    last = scores[max(k, 1) - 1]
    lower = risk[risk < last]
    return float((last + lower.max()) / 2.0) if lower.size else float(last)


def fit_uncertain_threshold(
    top_probability: np.ndarray, already_uncertain: np.ndarray, max_share: float
) -> float:
    """The largest ``uncertain_below`` at which at most ``max_share`` of the cases are
    answered "uncertain": those whose ``top_probability`` (N,) lies below it, together with
    those ``already_uncertain`` (N,) bool for another reason (out of distribution, say).

    The largest such threshold abstains on the least sure answers the budget allows. It is
    returned halfway between the highest top probability it abstains on and the next higher
    one, so a probability recomputed in float32 abstains on the same cases. 0.0 (never
    uncertain by confidence) when even the least sure case does not fit in the budget, the
    cases already uncertain having used it up.
    """
    if not 0.0 <= max_share <= 1.0:
        raise ValueError(f"max_share must be in [0, 1], got {max_share!r}")
    top = np.asarray(top_probability, dtype=np.float64)
    already = np.asarray(already_uncertain, dtype=bool)
    if top.size == 0 or top.shape != already.shape:
        raise ValueError(
            f"need one top probability and one flag per case, got {top.shape} and {already.shape}"
        )
    budget = int(np.floor(max_share * top.size + 1e-9))  # cases that may abstain
    levels = np.unique(top)  # ascending; abstaining "below just above levels[i]"
    others = np.sort(top[~already])
    # cases answered uncertain when every case with top <= levels[i] abstains
    abstaining = already.sum() + np.searchsorted(others, levels, side="right")  # (L,)
    fits = np.flatnonzero(abstaining <= budget)
    if fits.size == 0:
        return 0.0
    i = fits[-1]
    if i + 1 == levels.size:  # every case may abstain
        return 1.0
    return float((levels[i] + levels[i + 1]) / 2.0)
