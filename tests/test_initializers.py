"""Weight initializers: their scales, and dirac's identity."""

import numpy as np
import pytest

from fcnn import initializers
from fcnn import layers as L
from fcnn import random as fr


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("he_normal", np.sqrt(2 / 200)),
        ("he_uniform", np.sqrt(2 / 200)),
        ("glorot_normal", np.sqrt(2 / 300)),
        ("glorot_uniform", np.sqrt(2 / 300)),
        ("fan_in_uniform", np.sqrt(1 / (3 * 200))),  # uniform on ±1/√fan_in
    ],
)
def test_each_initializer_has_its_scale(name, std):
    w = initializers.get(name)(fr.key(0), (100, 200), 200, 100)
    assert w.dtype == np.float32 and w.shape == (100, 200)
    # 20,000 draws: the sample std is within 2 % of the true one
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 0.05 * std


def test_fan_in_uniform_is_pytorchs_default_bound():
    w = initializers.fan_in_uniform(fr.key(1), (64, 27), 27, 64)
    assert np.abs(w).max() <= 1 / np.sqrt(27)
    assert np.abs(w).max() > 0.95 / np.sqrt(27)


def test_a_dirac_convolution_starts_as_the_identity_on_its_first_channels():
    conv = L.Conv2D(6, 3, w_init="dirac", padding=1)
    _, params, _ = conv.init(fr.key(0), (4, 5, 5))
    x = fr.generator(fr.key(1)).standard_normal((2, 4, 5, 5)).astype(np.float32)
    y = conv.apply(params, x, state=None)[0]
    np.testing.assert_allclose(y[:, :4], x, atol=1e-6)  # bias 0: exactly the input, in float32
    assert not np.allclose(y[:, 4:], 0)  # the other filters are random
    w = params.w
    assert np.count_nonzero(w[:4]) == 4 and np.all(w[np.arange(4), np.arange(4), 1, 1] == 1)


def test_dirac_with_fewer_outputs_than_inputs_and_its_errors():
    w = initializers.dirac(fr.key(0), (2, 5, 3, 3), 45, 18)
    assert np.all(w[[0, 1], [0, 1], 1, 1] == 1) and np.count_nonzero(w) == 2
    with pytest.raises(ValueError, match="odd kernels"):
        initializers.dirac(fr.key(0), (2, 2, 2, 2), 8, 8)
    with pytest.raises(ValueError, match="choose one of"):
        initializers.get("orthogonal")
