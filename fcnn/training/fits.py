"""What is fitted on the validation split after training and stored in the model: the
calibration, the decision rule, the out-of-distribution detector and the answer rules'
thresholds (screening, uncertain). One function a fit, each of plain values;
:func:`finalize_model` runs those a :class:`FitRequest` asks for and rewrites the model file.
A :class:`FitRequest` is read from a config once, at the edge (:meth:`FitRequest.of`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np

from fcnn import calibration, checkpoint, decision, ood
from fcnn.layers import Layer
from fcnn.training.config import Config
from fcnn.training.data import PreparedData
from fcnn.training.loop import evaluate, features

__all__ = [
    "Finalized",
    "FitRequest",
    "finalize_model",
    "fit_calibration",
    "fit_decision",
    "fit_screening",
    "fit_uncertain",
]


@attrs.frozen
class FitRequest:
    """What to fit on validation, as plain values."""

    calibration: str = "none"  # none, temperature, bias or vector
    prior_corrected: bool = False  # the decision rule; else plain argmax
    min_accuracy: float = 0.0
    min_recall: dict[str, float] = attrs.field(factory=dict)  # floors by class name
    answer_rules: decision.AnswerRules | None = None  # whose thresholds are refitted
    screening_sensitivity: float | None = None
    uncertain_share: float | None = None
    ood_quantile: float | None = None
    batch_size: int = 500

    @classmethod
    def of(cls, config: Config) -> FitRequest:
        return cls(
            calibration=config.calibration,
            prior_corrected=config.decision.rule != "argmax",
            min_accuracy=config.decision.min_accuracy,
            min_recall=dict(config.decision.min_recall),
            answer_rules=config.answer_rules,
            screening_sensitivity=config.screening_sensitivity,
            uncertain_share=config.uncertain_share,
            ood_quantile=config.ood_quantile,
            batch_size=config.train.eval_batch_size,
        )

    @property
    def anything(self) -> bool:
        return (
            self.calibration != "none"
            or self.prior_corrected
            or self.ood_quantile is not None
            or self.screening_sensitivity is not None
            or self.uncertain_share is not None
        )


class Finalized(NamedTuple):
    calibration: calibration.Calibration
    decision: decision.DecisionRule
    lines: list[str]  # what was fitted, for the log


def fit_calibration(
    logits: np.ndarray, labels: np.ndarray, method: str
) -> tuple[calibration.Calibration, str]:
    """``method`` fitted on validation ``logits`` (N, K) and ``labels``, and a line."""
    cal = calibration.fit(logits, labels, method)
    before = calibration.nll(logits, labels)
    after = calibration.nll(cal.apply(logits.astype(np.float64)), labels)
    return cal, (
        f"calibration ({cal.method}, T={cal.temperature:.3f}) fitted on validation: "
        f"NLL {before:.4f} -> {after:.4f}"
    )


def fit_decision(
    probs: np.ndarray,
    labels: np.ndarray,
    class_counts: np.ndarray,
    names: tuple[str, ...],
    min_accuracy: float,
    min_recall: dict[str, float],
) -> tuple[decision.DecisionRule, str]:
    """The prior-corrected decision rule fitted on calibrated validation ``probs`` (N, K)
    with the training ``class_counts`` (K,) as priors, keeping ``min_accuracy`` and the
    recall floors by class name; and a line."""
    unknown = sorted(set(min_recall) - set(names))
    if unknown:
        raise ValueError(f"decision.min_recall names {unknown}, which are not classes: {names}")
    counts = class_counts.astype(np.float64)
    rule, table = decision.fit_prior_correction(
        probs,
        labels,
        np.maximum(counts, 1.0) / counts.sum(),
        min_accuracy,
        min_recall={names.index(n): f for n, f in min_recall.items()},
    )
    chosen = decision.chosen_row(rule, table)
    floors = f"accuracy floor {min_accuracy}" + "".join(
        f", {n} recall floor {f}" for n, f in min_recall.items()
    )
    met = (
        ""
        if chosen["meets"]
        else "; no exponent and boost met the recall floors, so they were dropped"
        if chosen["meets_accuracy"]
        else "; no exponent met the accuracy floor, so plain argmax"
    )
    boost = "".join(f", {names[c]} ×{rule.boost:.2f}" for c in rule.boosted)
    return rule, (
        f"decision rule (prior exponent {rule.alpha:.2f}{boost}) fitted on validation: "
        f"accuracy {chosen['accuracy']:.4f}, "
        f"balanced accuracy {chosen['balanced_accuracy']:.4f} ({floors}{met})"
    )


def _checked_rules(rules: decision.AnswerRules | None, names: tuple[str, ...]):
    """The answer rules to refit thresholds of (none yet: the defaults), naming classes."""
    rules = rules or decision.AnswerRules()
    unknown = sorted(set(rules.high_risk_classes) - set(names))
    if unknown:
        raise ValueError(
            f"answer_rules.high_risk_classes names {unknown}, which are not classes: {list(names)}"
        )
    return rules


def fit_screening(
    rules: decision.AnswerRules,
    probs: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    sensitivity: float,
) -> tuple[decision.AnswerRules, str]:
    """``rules`` with ``high_risk_at`` fitted on the validation ``probs`` (N, K) and
    ``labels`` for ``sensitivity``, and a line saying so."""
    if not rules.high_risk_classes:
        raise ValueError(
            "screening_sensitivity fits answer_rules.high_risk_at, so the config needs an "
            "answer_rules section naming high_risk_classes"
        )
    risk = np.array([rules.high_risk_probability(p, names) for p in probs])  # (N,)
    positive = np.isin(labels, [names.index(c) for c in rules.high_risk_classes])  # (N,)
    threshold = decision.fit_screening_threshold(risk, positive, sensitivity)
    flagged = risk >= threshold
    line = (
        f"screening operating point high_risk_at={threshold:.4f} fitted on validation: "
        f"{'+'.join(rules.high_risk_classes)} lesions flagged high "
        f"{flagged[positive].mean():.3f} (asked {sensitivity}), other "
        f"lesions flagged high {flagged[~positive].mean() if (~positive).any() else 0.0:.3f}"
    )
    return attrs.evolve(rules, high_risk_at=threshold), line


def fit_uncertain(
    share: float, rules: decision.AnswerRules, probs: np.ndarray, far: np.ndarray
) -> tuple[decision.AnswerRules, str]:
    """``rules`` with ``uncertain_below`` fitted on the validation ``probs`` (N, K) so that at
    most ``share`` of the lesions are answered uncertain, the ``far`` (N,) ones (out of
    distribution) included, and a line saying so."""
    top = probs.max(axis=1)  # (N,)
    threshold = decision.fit_uncertain_threshold(top, far, share)
    uncertain = far | (top < threshold)
    line = (
        f"uncertain threshold uncertain_below={threshold:.4f} fitted on validation: "
        f"{uncertain.mean():.3f} of the lesions answered uncertain (asked at most {share}; "
        f"{far.mean():.3f} out of distribution)"
    )
    return attrs.evolve(rules, uncertain_below=threshold), line


def finalize_model(
    net: Layer,
    params: Any,
    state: Any,
    data: PreparedData,
    request: FitRequest,
    model_path: Path,
) -> Finalized:
    """Run the fits ``request`` asks for on ``data``'s validation split and rewrite
    ``model_path`` with them (what is not refitted is kept); returns the calibration, the
    decision rule and lines describing what was done."""
    if not request.anything:
        return Finalized(calibration.Calibration(), decision.DecisionRule(), [])
    batch, names = request.batch_size, tuple(data.train.class_names)
    val = evaluate(net, params, state, data.val.images, data.val.labels, data.normalization, batch)
    cal, line = fit_calibration(val.logits, val.labels, request.calibration)
    lines = [line]
    val_probs = cal.probabilities(val.logits.astype(np.float64))  # (N, K), calibrated
    rule = decision.DecisionRule()
    if request.prior_corrected:
        rule, line = fit_decision(
            val_probs,
            val.labels,
            data.train.class_counts(),
            names,
            request.min_accuracy,
            request.min_recall,
        )
        lines.append(line)
    fitted: dict[str, Any] = {"calibration": cal.to_dict(), "decision": rule.to_dict()}
    stored = checkpoint.load(model_path)
    trees_extra: dict[str, Any] = {}
    detector = (
        ood.OodDetector.from_manifest(stored.info.ood, stored.group("ood"))
        if stored.info.ood is not None
        else None
    )
    wants_uncertain = request.uncertain_share is not None
    if request.ood_quantile is not None or (wants_uncertain and detector is not None):
        val_features = features(net, params, state, data.val.images, data.normalization, batch)
    if request.ood_quantile is not None:
        detector = ood.fit(
            features(net, params, state, data.train.images, data.normalization, batch),
            data.train.labels,
            data.train.images,
            val_features,
            request.ood_quantile,
            data.train.num_classes,
        )
        fitted["ood"], trees_extra["ood"] = detector.to_manifest()
        lines.append(
            f"out-of-distribution detector: distance threshold {detector.threshold:.1f} "
            f"(validation quantile {request.ood_quantile})"
        )
    if request.screening_sensitivity is not None or wants_uncertain:
        rules = _checked_rules(request.answer_rules, names)
        if request.screening_sensitivity is not None:
            rules, line = fit_screening(
                rules, val_probs, val.labels, names, request.screening_sensitivity
            )
            lines.append(line)
        if wants_uncertain:
            far = np.zeros(len(val_probs), bool)  # (N,): out of distribution
            if detector is not None:  # answered "uncertain" too, so they count in the share
                reasons = detector.reasons(data.val.images, val_features)
                far = np.array([r is not None for r in reasons])
            share = request.uncertain_share
            assert share is not None  # wants_uncertain
            rules, line = fit_uncertain(share, rules, val_probs, far)
            lines.append(line)
        fitted["answer_rules"] = rules.to_dict()
    groups = {key.split("/", 1)[0] for key in stored.arrays}
    trees: dict[str, Any] = {g: stored.group(g) for g in groups}  # keep what is not refitted
    trees.update(params=params, state=state, **trees_extra)  # a refit replaces the old one
    checkpoint.save(model_path, attrs.evolve(stored.info, **fitted), **trees)
    return Finalized(cal, rule, [f"{line}; stored in {model_path}" for line in lines])
