import numpy as np
import pytest

from fcnn import calibration
from fcnn import random as fr


def _overconfident(n=2000, k=4, sharpness=4.0, prior_shift=None):
    rng = fr.generator(fr.key(0))
    labels = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), labels] += 1.0
    logits *= sharpness  # far too confident
    if prior_shift is not None:
        logits = logits + prior_shift
    return logits, labels


def test_temperature_scaling_lowers_nll_and_keeps_the_argmax():
    logits, labels = _overconfident()
    cal = calibration.fit(logits, labels, "temperature")
    assert cal.temperature > 1.5
    assert calibration.nll(cal.apply(logits), labels) < calibration.nll(logits, labels) - 0.1
    np.testing.assert_array_equal(cal.apply(logits).argmax(1), logits.argmax(1))


def test_vector_scaling_removes_a_prior_shift():
    shift = np.array([3.0, 0.0, 0.0, -1.0])
    logits, labels = _overconfident(sharpness=1.0, prior_shift=shift)
    temp = calibration.fit(logits, labels, "temperature")
    vec = calibration.fit(logits, labels, "vector")
    assert vec.method == "vector"
    assert calibration.nll(vec.apply(logits), labels) < calibration.nll(temp.apply(logits), labels)
    assert (vec.apply(logits).argmax(1) == labels).mean() > (logits.argmax(1) == labels).mean()


def test_round_trip_and_unknown_method():
    cal = calibration.Calibration("vector", 2.0, (1.0, 0.5), (0.1, -0.1))
    assert calibration.Calibration.from_dict(cal.to_dict()) == cal
    assert calibration.Calibration.from_dict(None).method == "none"
    with pytest.raises(ValueError, match="calibration method"):
        calibration.fit(np.zeros((2, 2)), np.array([0, 1]), "platt")


def test_bias_scaling_removes_a_prior_shift_with_one_temperature():
    shift = np.array([3.0, 0.0, 0.0, -1.0])
    logits, labels = _overconfident(sharpness=2.0, prior_shift=shift)
    temp = calibration.fit(logits, labels, "temperature")
    bias = calibration.fit(logits, labels, "bias")
    assert bias.method == "bias" and bias.scale == () and len(bias.bias) == 4
    assert calibration.nll(bias.apply(logits), labels) < calibration.nll(temp.apply(logits), labels)
    # the fitted biases undo the shift (up to a constant, which softmax ignores)
    undone = np.asarray(bias.bias) + shift / bias.temperature
    assert np.ptp(undone) < 0.3
    np.testing.assert_allclose(
        bias.apply(logits), logits / bias.temperature + np.asarray(bias.bias), rtol=1e-12
    )
    assert calibration.Calibration.from_dict(bias.to_dict()) == bias
