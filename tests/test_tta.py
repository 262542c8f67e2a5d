"""Test-time augmentation: the averages each level promises."""

import numpy as np
import pytest

from fcnn.tta import with_tta


def _run(x):
    """A 'network' whose logits see position and orientation: a few pixel values."""
    return np.stack([x[:, 0, 0, 0], x[:, 0, 0, -1], x[:, 0, 1, 1]], axis=1)  # (N, 3)


def test_levels_average_the_promised_transforms():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    np.testing.assert_array_equal(with_tta(_run, 0)(x), _run(x))
    mirror = x[:, :, :, ::-1]
    np.testing.assert_allclose(with_tta(_run, 1)(x), 0.5 * (_run(x) + _run(mirror)))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    shifted = [padded[:, :, :4, :4], padded[:, :, 2:, 2:]]

    def level1(v):
        return 0.5 * (_run(v) + _run(v[:, :, :, ::-1]))

    expected = 0.5 * level1(x) + 0.25 * (level1(shifted[0]) + level1(shifted[1]))
    np.testing.assert_allclose(with_tta(_run, 2)(x), expected)


def test_a_mirror_symmetric_input_is_unchanged_by_level_1():
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 5))
    x = x + x[:, :, :, ::-1]  # symmetric under the mirror
    np.testing.assert_allclose(with_tta(_run, 1)(x), _run(x))


def test_unknown_level():
    with pytest.raises(ValueError, match="must be one of"):
        with_tta(_run, 3)
