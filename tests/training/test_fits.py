import numpy as np
import pytest

from fcnn.decision import AnswerRules
from fcnn.training.config import load_config
from fcnn.training.fits import FitRequest, fit_decision, fit_screening, fit_uncertain

NAMES = ("benign", "cancer", "other")


def test_a_request_is_read_from_the_config_once():
    request = FitRequest.of(load_config("configs/dermascan.yaml"))
    assert request.calibration == "vector" and request.prior_corrected
    assert request.min_accuracy == 0.75 and request.screening_sensitivity == 0.9
    assert request.uncertain_share == 0.10 and request.ood_quantile == 0.95
    assert request.answer_rules.high_risk_classes == ("akiec", "bcc", "mel")
    assert request.anything and not FitRequest().anything


def test_screening_flags_the_asked_share_of_the_high_risk_class():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    cancer_p = np.clip(rng.normal(np.where(labels == 1, 0.6, 0.2), 0.15), 0.0, 1.0)  # (N,)
    probs = np.stack([1 - cancer_p, cancer_p, np.zeros_like(cancer_p)], axis=1)  # (N, 3)
    rules = AnswerRules(high_risk_classes=("cancer",))
    fitted, line = fit_screening(rules, probs, labels, NAMES, 0.9)
    flagged = probs[:, 1] >= fitted.high_risk_at
    assert flagged[labels == 1].mean() >= 0.9 and flagged[labels != 1].mean() < 0.5
    assert "flagged high" in line
    with pytest.raises(ValueError, match="naming high_risk_classes"):
        fit_screening(AnswerRules(), probs, labels, NAMES, 0.9)


def test_uncertain_keeps_the_share_with_the_far_ones_counted():
    top = np.linspace(0.3, 1.0, 100)
    probs = np.stack([top, 1 - top], axis=1)
    far = np.zeros(100, bool)
    far[-5:] = True  # confident, but out of distribution: uncertain all the same
    fitted, _ = fit_uncertain(0.10, AnswerRules(), probs, far)
    uncertain = far | (probs.max(axis=1) < fitted.uncertain_below)
    assert uncertain.mean() <= 0.10 and uncertain.mean() >= 0.08


def test_a_recall_floor_must_name_a_class():
    probs = np.full((6, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"names \['mel'\], which are not classes"):
        fit_decision(probs, np.arange(6) % 3, np.array([2, 2, 2]), NAMES, 0.0, {"mel": 0.5})
