"""Uploaded bytes to pixels (webapp.images): the allow-list, the decode budget, fuzzing."""

from __future__ import annotations

import io
import threading
import time

import hostile_images as hostile
import numpy as np
import pytest
from helpers import image_bytes, lesion_like
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from fcnn.data.imagefolder import decode_image
from webapp.images import DecodeBudget, ImageProblem, read_image, sniff

SIZE = (16, 16)
BUDGET = DecodeBudget(320 * 2**20, wait_s=5.0)


def _read(data: bytes, size=SIZE, budget=BUDGET) -> np.ndarray:
    return read_image(data, size, 3, max_pixels=100_000_000, budget=budget)


def _outcome(data: bytes) -> int:
    """200 for pixels of the right shape, else the ImageProblem's status; anything else
    raised fails the test."""
    try:
        arr = _read(data)
    except ImageProblem as exc:
        assert exc.detail and "Traceback" not in exc.detail
        return exc.status
    assert arr.shape == (3, *SIZE) and arr.dtype == np.uint8
    return 200


def test_sniff_knows_the_allowed_formats_by_their_first_bytes():
    assert sniff(image_bytes(lesion_like(), "JPEG")) == "JPEG"
    assert sniff(image_bytes(lesion_like(), "PNG")) == "PNG"
    assert sniff(image_bytes(lesion_like(), "WEBP")) == "WEBP"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None  # RIFF, but audio
    assert sniff(b"") is None


@pytest.mark.parametrize(("name", "data"), list(hostile.other_formats()))
def test_other_formats_are_415_before_any_decoder_runs(name, data, monkeypatch):
    def no_decoder(*args, **kwargs):
        raise AssertionError(f"{name}: a decoder ran on a refused format")

    monkeypatch.setattr(Image, "open", no_decoder)
    with pytest.raises(ImageProblem) as err:
        _read(data)
    assert err.value.status == 415 and "JPEG, PNG or WebP" in err.value.detail


def test_heic_refusal_says_how_to_convert():
    heic = dict(hostile.other_formats())["heic"]
    with pytest.raises(ImageProblem) as err:
        _read(heic)
    assert err.value.status == 415 and "Most Compatible" in err.value.detail


def test_every_cut_point_of_a_small_photo_is_answered_4xx_or_decoded():
    outcomes = {name: _outcome(data) for name, data in hostile.cut_points()}
    assert set(outcomes.values()) <= {200, 400, 415}
    # a file cut before its image data cannot give pixels
    assert all(status != 200 for name, status in outcomes.items() if name.endswith("[:8]"))
    assert sum(status == 400 for status in outcomes.values()) > len(outcomes) // 2


def test_malformed_headers_are_answered_4xx_or_decoded():
    outcomes = {name: _outcome(data) for name, data in hostile.malformed_headers()}
    assert set(outcomes.values()) <= {200, 400, 413, 415}, outcomes
    assert outcomes["png-huge"] == 413 and outcomes["jpeg-huge"] in (400, 413)
    assert outcomes["png-bad-depth"] == 400 and outcomes["jpeg-magic-only"] == 400


def test_decoder_messages_stay_out_of_the_answer():
    data = hostile.small_photos()["webp-lossy"]
    with pytest.raises(ImageProblem) as err:
        _read(data[: len(data) // 2])
    detail = err.value.detail.lower()
    assert err.value.status == 400 and "webp" in detail
    assert "decoder" not in detail and "truncated file read" not in detail


@given(
    prefix=st.sampled_from(
        [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBP"]
    ),
    rest=st.binary(max_size=300),
)
def test_random_bytes_are_never_anything_but_a_4xx(prefix, rest):
    assert _outcome(prefix + rest) in (400, 413, 415)


PHOTOS = {fmt: hostile.small_photo(fmt, size=24) for fmt in ("JPEG", "PNG", "WEBP")}


@given(
    fmt=st.sampled_from(sorted(PHOTOS)),
    flips=st.lists(st.tuples(st.floats(0.2, 1.0), st.integers(1, 255)), min_size=1, max_size=8),
    keep=st.floats(0.5, 1.0),
)
def test_corrupted_photos_reach_the_decoder_and_are_pixels_or_a_4xx(fmt, flips, keep):
    # a valid photo's header with its data damaged and maybe cut: random bytes alone
    # rarely get past the header, these reach the decoder
    data = bytearray(PHOTOS[fmt])
    for where, xor in flips:
        i = min(len(data) - 1, int(where * len(data)))
        data[i] ^= xor
    assert _outcome(bytes(data[: max(16, int(keep * len(data)))])) in (200, 400, 413, 415)


def test_sixteen_bit_bomb_is_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("I;16", (10_000, 10_000)).save(buf, format="PNG")  # ~200 kB, 477 MB to decode
    t0 = time.perf_counter()
    with pytest.raises(ImageProblem) as err:
        _read(buf.getvalue())
    assert err.value.status == 413 and "MB" in err.value.detail
    assert time.perf_counter() - t0 < 5.0  # the 10.7 s full decode never starts


def test_a_photo_bigger_than_the_free_budget_waits_for_it():
    budget = DecodeBudget(1000, wait_s=5.0)
    order = []
    with budget.reserve(800):
        worker = threading.Thread(target=lambda: (budget.reserve(600).__enter__(), order.append(2)))
        worker.start()
        time.sleep(0.2)
        order.append(1)  # the second reservation is still waiting
    worker.join(5)
    assert order == [1, 2]


def test_a_budget_that_stays_taken_is_503():
    budget = DecodeBudget(10 * 2**20, wait_s=0.2)
    with budget.reserve(10 * 2**20), pytest.raises(ImageProblem) as err:
        _read(image_bytes(lesion_like(), "PNG"), budget=budget)
    assert err.value.status == 503


def test_a_photo_bigger_than_the_whole_budget_is_413():
    with pytest.raises(ImageProblem) as err:
        _read(image_bytes(lesion_like(size=64), "PNG"), budget=DecodeBudget(1000))
    assert err.value.status == 413


def test_a_24_megapixel_png_header_fits_the_default_budget():
    # a valid header of 6000x4000 RGB with broken image data: it passes every size check
    # (so a real one is decoded) and fails in the decoder: 400, not 413
    png = hostile._png(6000, 4000, idat=b"\x78\x9c\x00")
    with pytest.raises(ImageProblem) as err:
        _read(png)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("fmt", "mode", "exif_orientation"),
    [
        ("JPEG", "RGB", None),
        ("JPEG", "RGB", 6),
        ("JPEG", "L", None),
        ("JPEG", "CMYK", None),
        ("PNG", "RGB", None),
        ("PNG", "RGBA", 3),
        ("PNG", "P", None),
        ("PNG", "LA", None),
        ("PNG", "I;16", None),
        ("WEBP", "RGB", 8),
    ],
)
def test_the_site_and_the_training_loader_give_the_same_pixels(
    tmp_path, fmt, mode, exif_orientation
):
    arr = lesion_like(size=300)
    arr[:40] = [200, 30, 30]
    if mode == "I;16":
        img = Image.fromarray(arr[..., 0].astype(np.uint16) * 200)
    else:
        img = Image.fromarray(arr).convert(mode)
    if mode in ("RGBA", "LA"):
        img.putalpha(Image.fromarray(np.tile(np.arange(300, dtype=np.uint8)[None] // 2, (300, 1))))
    save = {}
    if exif_orientation:
        exif = img.getexif()
        exif[0x0112] = exif_orientation
        save["exif"] = exif.tobytes()
    path = tmp_path / f"photo.{fmt.lower()}"
    img.save(path, format=fmt, **save)
    site = _read(path.read_bytes(), (64, 64))
    training = decode_image(path, (64, 64), "RGB")
    np.testing.assert_array_equal(site, training)


def test_exif_orientation_turns_the_image_upright():
    arr = lesion_like(size=48)
    arr[:, :24] = [200, 40, 40]  # left half red
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: the left edge goes to the top
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    upright = _read(buf.getvalue())
    assert upright[0, :8].mean() > upright[0, 8:].mean() + 50
