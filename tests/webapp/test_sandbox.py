"""Uploads decoded in processes bounded from the outside (webapp.sandbox), and the first gate
in front of them (webapp.images): the costs a decoder's own limits do not see."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from helpers import image_bytes, lesion_like

from benchmarks.serving import (
    Server,
    attacks,
    lossless_webp,
    many_scans_jpeg,
    progressive_jpeg,
    under_attack,
)
from webapp.images import MAX_JPEG_SCANS, DecodeBudget, ImageProblem, jpeg_scans, read_image
from webapp.sandbox import DecoderPool

MB = 2**20


def _read(data: bytes, memory_mb: float = 256):
    return read_image(data, (64, 64), 3, max_pixels=10**9, budget=DecodeBudget(memory_mb * MB))


def test_scans_are_counted_by_the_markers_not_by_the_bytes():
    assert jpeg_scans(image_bytes(lesion_like(), "JPEG")) == 1
    assert 6 <= jpeg_scans(progressive_jpeg(64)) <= 12
    assert jpeg_scans(many_scans_jpeg(64, 500)) == MAX_JPEG_SCANS + 1  # counting stops there
    assert jpeg_scans(many_scans_jpeg(64, 500)[:200]) < 5  # cut off: no crash


def test_a_jpeg_of_thousands_of_scans_is_refused_before_any_decoding():
    data = many_scans_jpeg(10_000, 3000)
    t0 = time.perf_counter()
    with pytest.raises(ImageProblem) as problem:
        _read(data)
    assert problem.value.status == 413 and "scans" in problem.value.detail
    assert time.perf_counter() - t0 < 1.0  # the attack's version took ~2 minutes


@pytest.mark.parametrize(
    ("make", "held_mb"),
    [
        # what the codec was measured to hold: 2 bytes a pixel a component (coefficients),
        # however small the output is drafted; ~16 bytes a pixel for WebP
        (lambda: progressive_jpeg(10_000, "RGB"), 572),
        (lambda: progressive_jpeg(10_000, "CMYK"), 763),
        (lambda: lossless_webp(8900), 1213),
    ],
    ids=["progressive RGB JPEG", "progressive CMYK JPEG", "lossless WebP"],
)
def test_the_estimate_covers_what_the_codec_holds(make, held_mb):
    with pytest.raises(ImageProblem) as problem:
        _read(make())
    needs = re.search(r"needs (\d+) MB", problem.value.detail)
    assert problem.value.status == 413 and needs and int(needs.group(1)) >= held_mb


@pytest.fixture
def pool():
    decoders = DecoderPool(workers=1, memory_mb=256, cpu_s=1, max_pixels=10**9)
    yield decoders
    decoders.close()


def _honest(decoders):
    data = image_bytes(lesion_like(), "JPEG")
    return decoders.read(data, (64, 64), 3, time.monotonic() + 30)


def test_a_decode_that_spins_is_ended_at_its_cpu_limit_and_the_decoder_replaced(pool):
    slow = many_scans_jpeg(10_000, MAX_JPEG_SCANS - 10)  # under the scan cap: ~6 s of decoding
    (first,) = pool.pids
    t0 = time.monotonic()
    with pytest.raises(ImageProblem) as problem:
        pool.read(slow, (64, 64), 3, time.monotonic() + 30)
    assert problem.value.status == 413 and "more time to decode" in problem.value.detail
    assert time.monotonic() - t0 < 2.5  # a 1 s CPU limit, read every 50 ms
    assert _honest(pool).shape == (3, 64, 64) and pool.pids != [first]


def test_a_decode_still_running_at_the_deadline_is_stopped(tmp_path):
    decoders = DecoderPool(workers=1, memory_mb=256, cpu_s=60, max_pixels=10**9)
    try:
        slow = many_scans_jpeg(10_000, MAX_JPEG_SCANS - 10)
        t0 = time.monotonic()
        with pytest.raises(ImageProblem) as problem:
            decoders.read(slow, (64, 64), 3, time.monotonic() + 1.0)
        assert problem.value.status == 503 and time.monotonic() - t0 < 2.0
        assert _honest(decoders).shape == (3, 64, 64)
    finally:
        decoders.close()


def test_a_problem_found_in_a_decoder_is_the_same_answer_as_in_process(pool):
    with pytest.raises(ImageProblem) as problem:
        pool.read(b"GIF89a....", (64, 64), 3, time.monotonic() + 30)
    assert problem.value.status == 415
    with pytest.raises(ImageProblem) as problem:
        pool.read(lossless_webp(8900), (64, 64), 3, time.monotonic() + 30)
    assert problem.value.status == 413 and "needs 1284 MB" in problem.value.detail
    assert _honest(pool).shape == (3, 64, 64)


def test_close_ends_every_decoder(pool):
    pids = pool.pids
    pool.close()
    time.sleep(0.2)
    assert all(not _alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except OSError:
        return False


@pytest.mark.slow
def test_four_hostile_uploads_at_once_keep_the_server_bounded_and_answering(tiny_model):
    timeout_s = 30.0  # DERMASCAN_REQUEST_TIMEOUT_S's default
    with Server(tiny_model) as server:  # the defaults: 2 decoders, 256 MB and 1 s each
        time.sleep(1.0)
        for name, data in attacks().items():
            # 2 s in, the third and fourth uploads are still being decoded (the attacker's
            # own honest photo came 3 s in; python -m benchmarks.serving --attacks: 1 s)
            r = under_attack(server, data, at_once=4, honest_after_s=2.0)
            assert r["honest_status"] == 200 and r["honest_s"] < 2.0, (name, r)
            assert set(r["statuses"]) == {413} and r["slowest_s"] < timeout_s, (name, r)
            # the decoders' limits, 2 x 256 MB, and the four bodies: under 800 MB
            assert r["peak_rise_mb"] < 2 * 256 + 100, (name, r)


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ({"ok": True}, b"\x00" * 11),  # pixels of the wrong length
        ({"ok": False, "status": 200, "detail": "fine"}, b""),  # a status no decoder answers
        ({"ok": False, "status": 400, "detail": "\x1b[31mred"}, b""),  # control characters
        ({"ok": False, "status": 413}, b""),  # no detail
        (["ok"], b""),  # not a header at all
    ],
)
def test_a_reply_no_decoder_writes_is_refused_not_trusted(header, payload):
    from webapp.sandbox import _pixels

    with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
        _pixels(header, payload, (3, 2, 2))


def test_the_decoders_honest_reply_is_the_in_process_answer(pool):
    data = image_bytes(lesion_like(), "PNG")
    here = read_image(data, (16, 16), 3, max_pixels=10**9, budget=DecodeBudget(64 * MB))
    there = pool.read(data, (16, 16), 3, time.monotonic() + 30)
    assert there.dtype == np.uint8 and np.array_equal(here, there)


def test_a_decoder_that_ended_while_idle_is_replaced_not_blamed_on_the_upload(pool):
    import os
    import signal

    (pid,) = pool.pids
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert _honest(pool).shape == (3, 64, 64) and pool.pids != [pid]
