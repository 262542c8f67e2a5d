"""benchmarks.winograd measures both ways of a layer and reports what the rule picks."""

import numpy as np

from benchmarks.winograd import LAYERS, _row, measure


def test_a_layer_is_measured_both_ways_with_small_float32_errors():
    result = measure(("tiny", 2, 8, 8, 6), rounds=1, rng=np.random.default_rng(0))
    assert result["chosen"] == "grid"  # 8 x 8 channels: below the rule's product
    assert max(result["errors"]) < 1e-5  # the same convolution, in float32
    assert all(t > 0 for t in (*result["fwd"], *result["bwd"], result["step_ratio"]))
    assert _row(result).startswith("| tiny | (2, 8, 8, 6) |")


def test_the_measured_layers_are_every_3x3_layer_of_the_presets_past_the_first():
    presets = {layer[0] for layer in LAYERS}
    assert presets == {"bn_net_mnist", "tiny_vgg_cifar", "dermascan 64 px", "dermascan 96 px"}
