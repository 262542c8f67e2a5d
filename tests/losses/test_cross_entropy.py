import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import smooth_arrays

from fcnn.gradcheck import numeric_vjp
from fcnn.losses import cross_entropy as ce


def _draw(data):
    n, k = data.draw(st.integers(1, 4), label="n"), data.draw(st.integers(2, 5), label="k")
    logits = data.draw(smooth_arrays((n, k), low=-5, high=5), label="logits")
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    return logits, labels, k


@given(st.data(), st.floats(0.0, 0.5))
def test_gradient_matches_finite_differences_with_weights_and_smoothing(data, smoothing):
    logits, labels, k = _draw(data)
    weights = data.draw(st.none() | smooth_arrays((k,), low=0.1, high=3.0), label="weights")
    kwargs = {"class_weights": weights, "label_smoothing": smoothing}
    _, cache = ce.forward(logits, labels, **kwargs)
    for dloss in (1.0, -2.5):
        numeric = numeric_vjp(lambda z: ce.forward(z, labels, **kwargs)[0], logits, np.array(dloss))
        np.testing.assert_allclose(ce.backward(cache, dloss), numeric, rtol=1e-5, atol=1e-7)


def test_plain_gradient_is_p_minus_y_over_n():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    loss, cache = ce.forward(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.eye(3)[labels]
    np.testing.assert_allclose(ce.backward(cache), (p - y) / 2)
    np.testing.assert_allclose(loss, -np.mean(np.log(p[[0, 1], labels])))


def test_stable_for_huge_logits_and_keeps_dtype():
    logits = np.array([[1e4, -1e4], [-1e4, 1e4]], np.float32)
    loss, cache = ce.forward(logits, np.array([0, 0]))
    assert np.isfinite(loss) and loss.dtype == np.float32
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)
    assert ce.backward(cache).dtype == np.float32


def test_label_smoothing_changes_the_loss_as_defined():
    logits = np.array([[2.0, 0.0, -1.0]])
    logp = ce.log_softmax(logits)
    loss, _ = ce.forward(logits, np.array([0]), label_smoothing=0.3)
    want = -(0.7 * logp[0, 0] + 0.1 * logp[0].sum())
    np.testing.assert_allclose(loss, want)
    assert loss > ce.forward(logits, np.array([0]))[0]


def test_class_weights_give_a_weighted_mean():
    logits = np.array([[0.0, 1.0], [1.0, 0.0]])
    labels = np.array([0, 1])
    per_sample = -ce.log_softmax(logits)[[0, 1], labels]
    loss, _ = ce.forward(logits, labels, class_weights=np.array([3.0, 1.0]))
    np.testing.assert_allclose(loss, (3 * per_sample[0] + per_sample[1]) / 4)


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (np.array([0, 3]), {}, r"must lie in \[0, 3\)"),
        (np.array([0.0, 1.0]), {}, "integer"),
        (np.array([0]), {}, "2 rows of logits but 1 labels"),
        (np.array([0, 1]), {"label_smoothing": 1.0}, "label_smoothing"),
        (np.array([0, 1]), {"class_weights": np.ones(2)}, "class_weights must be 3"),
    ],
)
def test_bad_arguments_are_explained(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ce.forward(np.zeros((2, 3)), labels, **kwargs)
