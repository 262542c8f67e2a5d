import numpy as np
import pytest

from fcnn import check_grad
from fcnn import random as fr
from fcnn.gradcheck import GradientCheckError
from fcnn.layers import dense


def test_check_grad_accepts_a_correct_backward_and_reports_errors_per_leaf():
    _, params = dense.init(fr.key(0), (3,), out_features=2)
    errors = check_grad(dense.forward, dense.backward, params, np.ones((2, 3)))
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-6


def test_check_grad_catches_a_wrong_weight_gradient():
    _, params = dense.init(fr.key(0), (3,), out_features=2)

    def bad_backward(p, cache, dy):
        dx, g = dense.backward(p, cache, dy)
        return dx, dense.DenseParams(w=g.w * 1.01, b=g.b)

    with pytest.raises(GradientCheckError, match="param 'w'"):
        check_grad(dense.forward, bad_backward, params, np.ones((2, 3)))


def test_check_grad_catches_a_wrong_input_gradient_shape():
    _, params = dense.init(fr.key(0), (3,), out_features=2)
    with pytest.raises(GradientCheckError, match="shape"):
        check_grad(dense.forward, lambda p, c, dy: (dy, p), params, np.ones((2, 3)))
