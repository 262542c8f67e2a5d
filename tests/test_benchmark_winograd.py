"""benchmarks.winograd measures every way of a layer and reports what the rule picks."""

import numpy as np

from benchmarks.winograd import LAYERS, _row, measure


def test_a_layer_is_measured_both_ways_with_small_float32_errors():
    result = measure(("tiny", 2, 8, 8, 6), rounds=1, rng=np.random.default_rng(0))
    assert result["chosen"] == "grid"  # 8 x 8 channels: below the rule's product
    for way, bound in (("grid", 1e-5), ("winograd2", 1e-5), ("winograd4", 1e-4)):
        assert max(result[way, "errors"]) < bound  # the same convolution, in float32
        assert min(result[way]) > 0
    assert result["winograd4", "step"] > 0
    assert _row(result).startswith("| tiny | (2, 8, 8, 6) |")


def test_the_measured_layers_are_every_3x3_layer_of_the_presets_past_the_first():
    presets = {layer[0] for layer in LAYERS}
    assert presets == {"bn_net_mnist", "tiny_vgg_cifar", "dermascan 64 px", "dermascan 96 px"}


def test_a_layer_whose_chunks_are_cut_is_also_timed_uncut():
    result = measure(("big", 32, 128, 128, 24), rounds=1, rng=np.random.default_rng(0))
    assert result["chosen"] == "winograd4" and result["cut"] > 0
    assert _row(result).endswith(f"| winograd4 | {result['cut']:.2f}× |")
    small = measure(("small", 64, 32, 32, 28), rounds=1, rng=np.random.default_rng(0))
    assert "cut" not in small and _row(small).endswith("| winograd4 | – |")
