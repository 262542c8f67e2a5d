import numpy as np
import pytest

import fcnn
from fcnn import models, tree
from fcnn import random as fr
from fcnn.layers import BatchNorm2D, Conv2D, Dense, Flatten, ReLU, residual, serial


def _sizes(t):
    return int(sum(np.size(leaf) for leaf in tree.leaves(t)))


@pytest.mark.parametrize("name", models.names())
def test_counts_match_the_params_tree_of_every_preset(name):
    preset = models.get(name)
    out_shape, params, state = preset.network.init(fr.key(0), preset.input_shape)
    s = fcnn.summary(preset.network, preset.input_shape)
    assert s.params == _sizes(params) and s.state == _sizes(state)
    assert s.output_shape == tuple(out_shape)
    # each row's count is its own subtree's, at the path it names
    by_path = dict(tree.flatten_with_paths(params))
    for row in s.rows:
        under = [v for p, v in by_path.items() if p == row.path or p.startswith(row.path + ".")]
        assert row.params == sum(np.size(v) for v in under), row


def test_rows_inside_combinators_have_their_tree_paths_and_shapes():
    block = serial(Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(), Conv2D(4, 3, padding=1))
    net = serial(Conv2D(4, 3, padding=1), residual(block), Flatten(), Dense(2))
    s = fcnn.summary(net, (1, 5, 5))
    assert [r.path for r in s.rows] == ["0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "2", "3"]
    assert s.rows[2].state == 8 and s.rows[5].output_shape == (100,)
    assert s.multiply_adds == 25 * 4 * 9 + 2 * (25 * 4 * 4 * 9) + 100 * 2
    text = str(s)
    assert "1.0.1  BatchNorm2D" in text and "trainable parameters: " + f"{s.params:,}" in text


def test_a_shape_the_network_cannot_take_is_a_value_error():
    with pytest.raises(ValueError):
        fcnn.summary(serial(Flatten(), Conv2D(2, 3)), (1, 4, 4))
