"""The presets: every one builds, its init predicts the shape apply produces, and bad names
or options are clear errors."""

import numpy as np
import pytest

from fcnn import models
from fcnn import random as fr


@pytest.mark.parametrize("name", models.names())
def test_every_preset_outputs_one_logit_per_class(name):
    preset = models.get(name)
    out_shape, params, state = preset.network.init(fr.key(0), preset.input_shape)
    x = np.random.default_rng(0).standard_normal((2, *preset.input_shape)).astype(np.float32)
    y, _, _ = preset.network.apply(params, x, state=state, train=False)
    assert y.shape == (2, *out_shape) and out_shape[0] in (7, 10)
    assert np.isfinite(y).all() and y.dtype == np.float32


def test_options_reach_the_preset_and_unknown_ones_are_refused():
    small = models.get("dermascan_cnn", widths=(8, 16), image_size=32, num_classes=3)
    assert small.input_shape == (3, 32, 32)
    assert small.network.init(fr.key(0), small.input_shape)[0] == (3,)
    assert models.takes_option("dermascan_cnn", "widths")
    assert not models.takes_option("lenet_mnist", "widths")
    with pytest.raises(ValueError, match="lenet_mnist"):
        models.get("no_such_net")
    with pytest.raises(ValueError, match="depths"):
        models.get("dermascan_cnn", widths=(8, 16), depths=(1,))


def test_a_residual_dermascan_net_adds_identity_pairs_after_each_stages_first_block():
    plain = models.get("dermascan_cnn", widths=(8, 16), depths=(1, 3), image_size=16)
    res = models.get("dermascan_cnn", widths=(8, 16), depths=(1, 3), image_size=16, residual=True)
    kinds = [layer["type"] for layer in res.network.spec["layers"]]
    assert kinds.count("residual") == 2 and "residual" not in str(plain.network.spec)
    out_shape, params, state = res.network.init(fr.key(0), res.input_shape)
    x = np.random.default_rng(1).standard_normal((2, *res.input_shape)).astype(np.float32)
    y, _, _ = res.network.apply(params, x, state=state, train=False)
    assert y.shape == (2, *out_shape) == (2, 7) and np.isfinite(y).all()
    # each pair holds two convs: 1 + 1 + 2 * 2 convs in all, against plain's 1 + 3
    assert str(res.network.spec).count("Conv2D") == 6
    assert str(plain.network.spec).count("Conv2D") == 4
