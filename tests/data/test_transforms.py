import numpy as np
import pytest

from fcnn import random as fr
from fcnn.data.transforms import Augmentation, augment, fit_normalization, normalize

# every transform on at once
_EVERY = Augmentation(
    crop_padding=2,
    hflip=True,
    vflip=True,
    rot90=True,
    brightness=0.1,
    contrast=0.1,
    rotate=180,
    scale=0.2,
    shift=0.1,
    color=0.2,
)


def _batch():
    return fr.generator(fr.key(0)).standard_normal((6, 2, 5, 5)).astype(np.float32)


def test_same_key_same_result_and_input_untouched():
    x = _batch()
    before = x.copy()
    aug = _EVERY
    a, b = augment(x, aug, fr.key(1)), augment(x, aug, fr.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, augment(x, aug, fr.key(2)))
    np.testing.assert_array_equal(x, before)
    assert a.dtype == np.float32 and a.shape == x.shape


def test_crop_is_a_shift_with_zero_fill():
    x = _batch()
    out = augment(x, Augmentation(crop_padding=2), fr.key(3))
    for i in range(x.shape[0]):
        found = False
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                shifted = np.zeros_like(x[i])
                src = x[i][:, max(0, dr) : 5 + min(0, dr), max(0, dc) : 5 + min(0, dc)]
                shifted[:, max(0, -dr) : 5 + min(0, -dr), max(0, -dc) : 5 + min(0, -dc)] = src
                found = found or np.array_equal(out[i], shifted)
        assert found, f"image {i} is not a shifted copy"


def test_flips_and_rotations_permute_pixels():
    x = _batch()
    for aug in (Augmentation(hflip=True), Augmentation(vflip=True), Augmentation(rot90=True)):
        out = augment(x, aug, fr.key(4))
        for i in range(x.shape[0]):
            np.testing.assert_allclose(np.sort(out[i].ravel()), np.sort(x[i].ravel()))


@pytest.mark.parametrize("rows", [slice(0, 3), slice(3, 6), slice(2, 5), slice(5, 6)])
def test_a_shard_is_transformed_as_in_the_whole_batch(rows):
    x = _batch()
    aug = _EVERY
    whole = augment(x, aug, fr.key(5))
    part = augment(x[rows], aug, fr.key(5), rows=rows, batch=x.shape[0])
    np.testing.assert_array_equal(part, whole[rows])


def test_a_vanishing_warp_is_the_identity():
    # angle, zoom and move all ~1e-9: every output pixel samples its own input pixel
    x = _batch()
    out = augment(x, Augmentation(rotate=1e-7, scale=1e-9, shift=1e-9), fr.key(6))
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_a_warp_keeps_a_constant_image_constant():
    # bilinear weights sum to one and mirrored borders never sample outside the image
    x = np.full((4, 3, 7, 9), 2.5, np.float32)
    out = augment(x, Augmentation(rotate=180, scale=0.5, shift=0.5), fr.key(7))
    np.testing.assert_allclose(out, x, rtol=1e-6)


def test_rotation_turns_about_the_centre():
    # a round blob at the centre of an odd-sized image is the same at every angle (up to
    # bilinear blur), and a blob off the centre is moved: the turn is about the centre.
    # The image is large enough that the mirrored borders bring no blob back in.
    size = 41
    yy, xx = np.mgrid[:size, :size] - size // 2
    blob = np.exp(-(yy**2 + xx**2) / 4.0).astype(np.float32)[None, None].repeat(8, 0)
    turned = augment(blob, Augmentation(rotate=180), fr.key(8))
    # bilinear sampling lowers a peak this narrow by ~10 %; a turn about a point one pixel
    # off the centre would move it by ~0.4
    np.testing.assert_allclose(turned, blob, atol=0.15)
    off = np.exp(-((yy - 5) ** 2 + xx**2) / 4.0).astype(np.float32)[None, None].repeat(8, 0)
    moved = augment(off, Augmentation(rotate=180), fr.key(8))
    assert np.abs(moved - off).max() > 0.5
    # the blob's mean squared distance from the centre is kept: 5² for its centre plus its
    # variance 2 along each axis (bilinear blur adds a little)
    mass = moved[:, 0] / moved[:, 0].sum(axis=(1, 2), keepdims=True)
    radius = np.sqrt((mass * (yy**2 + xx**2)).sum(axis=(1, 2)))
    np.testing.assert_allclose(radius, np.sqrt(25 + 2 + 2), rtol=0.03)


def test_color_shifts_each_channel_by_its_own_constant():
    x = _batch()
    out = augment(x, Augmentation(color=0.3), fr.key(9))
    diff = out - x  # (N, C, H, W): constant over each image's channel plane
    per_plane = diff[:, :, :1, :1]
    np.testing.assert_allclose(diff, np.broadcast_to(per_plane, diff.shape), atol=1e-6)
    assert np.all(np.abs(per_plane) <= 0.3)
    assert np.unique(np.round(per_plane, 6)).size > x.shape[0]  # channels differ


def test_a_shard_that_does_not_match_its_rows_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        augment(_batch(), Augmentation(hflip=True), fr.key(0), rows=slice(0, 3), batch=6)


def test_inactive_augmentation_is_the_identity():
    x = _batch()
    assert augment(x, Augmentation(), fr.key(0)) is x


def test_normalization_gives_zero_mean_unit_std():
    images = fr.generator(fr.key(5)).integers(0, 256, (50, 3, 4, 4)).astype(np.uint8)
    norm = fit_normalization(images)
    x = normalize(images, norm)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-3)
    with pytest.raises(ValueError, match="channels"):
        normalize(images[:, :1], norm)


def test_alternating_flips_mirror_each_image_on_every_other_epoch():
    from fcnn.data.transforms import alternating_flips

    key = fr.key(5)
    idx = np.arange(1000)
    even, odd = alternating_flips(key, 1000, idx, 0), alternating_flips(key, 1000, idx, 1)
    assert 400 < even.sum() < 600  # a random half first
    np.testing.assert_array_equal(odd, ~even)  # then the other half
    np.testing.assert_array_equal(alternating_flips(key, 1000, idx, 2), even)
    np.testing.assert_array_equal(alternating_flips(key, 1000, idx[::7], 3), odd[::7])


def test_alternating_flip_mirrors_exactly_the_images_it_is_told():
    x = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    aug = Augmentation(alternating_flip=True)
    out = augment(x, aug, fr.key(0), flips=np.array([True, False]))
    np.testing.assert_array_equal(out[0], x[0, :, :, ::-1])
    np.testing.assert_array_equal(out[1], x[1])
    # a replica's shard: the whole batch's flips, sliced like the rows
    shard = augment(x[1:], aug, fr.key(0), rows=slice(1, 2), batch=2, flips=np.array([True, False]))
    np.testing.assert_array_equal(shard[0], x[1])
    with pytest.raises(ValueError, match="needs each image's flip"):
        augment(x, aug, fr.key(0))


def test_reflected_crops_hold_no_zeros():
    x = np.full((8, 1, 6, 6), 7.0, np.float32)
    x[:, :, 0, :] = 3.0  # the top row differs, so a reflected border shows it
    out = augment(x, Augmentation(crop_padding=2, crop_reflect=True), fr.key(1))
    assert out.min() > 0  # zero padding would put zeros in most crops
    zero = augment(x, Augmentation(crop_padding=2), fr.key(1))
    assert (zero == 0).any()
