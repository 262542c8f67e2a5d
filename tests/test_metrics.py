import numpy as np
import pytest

from fcnn import metrics


def test_confusion_and_derived_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 1, 1, 2, 2])
    conf = metrics.confusion_matrix(labels, preds, 3)
    np.testing.assert_array_equal(conf, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert metrics.accuracy(conf) == pytest.approx(4 / 6)
    # recalls 2/3, 1/2, 1 -> mean 13/18
    assert metrics.balanced_accuracy(conf) == pytest.approx(13 / 18)
    precision, recall, f1 = metrics.precision_recall_f1(conf)
    np.testing.assert_allclose(precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(recall, [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(f1, [0.8, 0.5, 2 / 3])


def test_balanced_accuracy_ignores_absent_classes_and_empty_ratios_are_zero():
    conf = metrics.confusion_matrix(np.array([0, 0]), np.array([0, 1]), 3)
    assert metrics.balanced_accuracy(conf) == 0.5
    precision, _, _ = metrics.precision_recall_f1(conf)
    assert precision[2] == 0.0


def test_auc_with_ties_matches_the_pair_count():
    scores = np.array([0.1, 0.4, 0.4, 0.4, 0.8, 0.9])
    positive = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    want = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    probs = np.stack([1 - scores, scores], axis=1)
    per_class, macro = metrics.roc_auc_ovr(positive.astype(int), probs)
    assert per_class[1] == pytest.approx(want)
    assert want == pytest.approx(6 / 9)  # 0.4 vs 0.4 ties count a half each
    assert macro == pytest.approx(np.mean(per_class))


def test_auc_is_nan_for_a_class_without_positives():
    per_class, macro = metrics.roc_auc_ovr(np.array([0, 0, 1]), np.array([[0.9, 0.1, 0.0]] * 3))
    assert np.isnan(per_class[2]) and not np.isnan(macro)


def test_ece_of_perfect_and_of_overconfident_predictions():
    labels = np.array([0, 1, 0, 1])
    sure_right = np.eye(2)[labels]
    assert metrics.expected_calibration_error(labels, sure_right) == 0.0
    sure_wrong = np.eye(2)[1 - labels]
    assert metrics.expected_calibration_error(labels, sure_wrong) == pytest.approx(1.0)
    half = np.full((4, 2), 0.5)
    assert metrics.expected_calibration_error(labels, half) == pytest.approx(0.0)


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_more_cases():
    rng = np.random.default_rng(0)

    def mean(x):
        return float(np.mean(x))

    small = (rng.random(100) < 0.7).astype(float)
    large = (rng.random(10_000) < 0.7).astype(float)
    lo_s, hi_s = metrics.bootstrap_interval(mean, small, rounds=500)
    lo_l, hi_l = metrics.bootstrap_interval(mean, large, rounds=500)
    assert lo_s <= mean(small) <= hi_s and lo_l <= mean(large) <= hi_l
    # the normal approximation: 2 * 1.96 * sqrt(0.21 / n), about 0.18 for n = 100
    assert 0.12 < hi_s - lo_s < 0.24
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    # seeded: the same call gives the same interval
    assert metrics.bootstrap_interval(mean, small, rounds=500) == (lo_s, hi_s)


def test_bootstrap_interval_resamples_rows_together_and_skips_undefined_resamples():
    labels = np.array([0, 0, 0, 1])
    preds = np.array([0, 0, 0, 1])

    def recall_of_1(y, p):
        return float(np.mean(p[y == 1] == 1)) if (y == 1).any() else float("nan")

    # rows drawn together: every resample with the positive case gets it right
    assert metrics.bootstrap_interval(recall_of_1, labels, preds, rounds=200) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same, non-zero number of cases"):
        metrics.bootstrap_interval(recall_of_1, labels, preds[:3])
