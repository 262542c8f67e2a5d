"""Patch whitening: the filters whiten the patches they were computed from."""

import numpy as np
import pytest

from fcnn import random as fr
from fcnn.im2col import geometry, im2col
from fcnn.whitening import patch_whitening


def _correlated_images(n=64, seed=0):
    """Images whose neighbouring pixels and channels are strongly correlated, as photos are."""
    rng = fr.generator(fr.key(seed))
    base = rng.standard_normal((n, 1, 10, 10))
    smooth = base + np.roll(base, 1, axis=2) + np.roll(base, 1, axis=3)
    return np.concatenate([smooth, 0.5 * smooth + 0.1 * rng.standard_normal(smooth.shape),
                           rng.standard_normal(smooth.shape)], axis=1)  # (N, 3, 10, 10)


def test_the_filtered_patches_have_unit_second_moment_and_no_correlation():
    images = _correlated_images()
    filters = patch_whitening(images, (2, 2), eps=1e-9)
    d = 3 * 2 * 2
    assert filters.shape == (2 * d, 3, 2, 2)
    patches = im2col(images, geometry(images.shape, (2, 2)))  # (12, n·OH·OW)
    coords = filters[:d].reshape(d, -1) @ patches  # each patch in the whitened basis
    moment = coords @ coords.T / coords.shape[1]
    # float64 over ~5,000 patches: the identity up to eps's and rounding's share
    np.testing.assert_allclose(moment, np.eye(d), atol=1e-6)
    np.testing.assert_array_equal(filters[d:], -filters[:d])  # the negated copies


def test_strongest_direction_first_and_eps_damps_weak_ones():
    images = _correlated_images()
    norms = [np.linalg.norm(f) for f in patch_whitening(images, (2, 2), eps=1e-9)[:12]]
    assert norms == sorted(norms)  # 1/sqrt(λ): smallest for the largest eigenvalue
    damped = patch_whitening(images, (2, 2), eps=10.0)
    assert np.linalg.norm(damped[11]) < np.linalg.norm(patch_whitening(images, (2, 2), 1e-9)[11])


def test_chunking_does_not_change_the_result():
    images = _correlated_images(n=1200)  # more than one chunk of 500
    whole = patch_whitening(images, (2, 2), eps=5e-4)
    again = patch_whitening(images[::-1].copy(), (2, 2), eps=5e-4)  # other chunk contents
    # eigenvectors are defined up to sign: compare the filters' absolute values
    np.testing.assert_allclose(np.abs(again), np.abs(whole), rtol=1e-6, atol=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="needs images"):
        patch_whitening(np.zeros((0, 3, 4, 4)), (2, 2), 1e-3)
    with pytest.raises(ValueError, match="eps must be positive"):
        patch_whitening(np.ones((2, 3, 4, 4)), (2, 2), 0.0)
