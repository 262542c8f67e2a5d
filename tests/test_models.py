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
