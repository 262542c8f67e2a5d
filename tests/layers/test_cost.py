import pytest

from fcnn import models
from fcnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, residual, serial
from fcnn.layers.cost import multiply_adds


def test_lenet_counts_its_convolutions_and_dense_layers():
    preset = models.get("lenet_mnist")
    conv1 = 6 * 28 * 28 * (1 * 5 * 5)  # 'same' padding keeps 28x28
    conv2 = 16 * 10 * 10 * (6 * 5 * 5)  # valid on the pooled 14x14
    dense = 400 * 120 + 120 * 84 + 84 * 10
    assert multiply_adds(preset.network.spec, preset.input_shape) == conv1 + conv2 + dense


def test_element_wise_layers_cost_nothing():
    net = serial(ReLU(), MaxPool2D(2), Flatten())
    assert multiply_adds(net.spec, (3, 8, 8)) == 0


def test_residual_counts_block_and_shortcut():
    block = serial(Conv2D(4, 3, padding=1), ReLU(), Conv2D(8, 3, padding=1))
    net = residual(block, Conv2D(8, 1))
    expected = 4 * 6 * 6 * (2 * 9) + 8 * 6 * 6 * (4 * 9) + 8 * 6 * 6 * 2
    assert multiply_adds(net.spec, (2, 6, 6)) == expected


@pytest.mark.parametrize("kernel", [3, (3, 3)])
def test_kernel_size_as_int_or_pair(kernel):
    net = serial(Conv2D(2, kernel), Flatten(), Dense(5))
    assert multiply_adds(net.spec, (1, 5, 5)) == 2 * 3 * 3 * 9 + 18 * 5
