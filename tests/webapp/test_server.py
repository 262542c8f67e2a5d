"""DermaScan as a real ``fcnn serve`` process on 127.0.0.1, spoken to over raw sockets:
what Litestar's TestClient skips (the HTTP parser, slow clients, the worker's memory)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import image_bytes, lesion_like

from benchmarks.serving import (
    Server,
    big_png,
    gray16_png,
    multipart,
    post,
    read_until_closed,
    status_kb,
)

IDLE_S = 1.0
BODY_S = 3.0
MAX_UPLOADS = 3


@pytest.fixture(scope="module")
def server(tiny_model):
    env = {
        "DERMASCAN_BODY_IDLE_S": str(IDLE_S),
        "DERMASCAN_BODY_TIMEOUT_S": str(BODY_S),
        "DERMASCAN_MAX_UPLOADS": str(MAX_UPLOADS),
        "DERMASCAN_UPLOAD_WAIT_S": "0.5",
    }
    with Server(tiny_model, env) as s:
        yield s


def _upload_head(length: int, ctype: str = "multipart/form-data; boundary=b") -> bytes:
    return (
        f"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_photo_is_answered(server):
    status, body = post(server, image_bytes(lesion_like()), "image/jpeg")
    assert status == 200 and body["top"]["code"]


def test_a_stalled_upload_is_dropped_after_the_idle_timeout(server):
    with server.connect() as s:
        s.sendall(_upload_head(100_000) + b"--b\r\n" + b"x" * 1000)
        t0 = time.monotonic()
        out, closed = read_until_closed(s, 10 * IDLE_S)
        waited = time.monotonic() - t0
    assert _status(out) == 408 and closed
    assert IDLE_S * 0.8 <= waited < IDLE_S + 3.0


def test_a_trickling_upload_is_dropped_at_the_body_deadline(server):
    with server.connect() as s:
        s.sendall(_upload_head(100_000) + b"--b\r\n")
        t0 = time.monotonic()
        s.settimeout(0.2)
        out = b""
        while time.monotonic() - t0 < 4 * BODY_S:
            try:
                s.sendall(b"x" * 10)  # never idle, never done
            except OSError:
                break
            try:
                out += s.recv(65536)
                if out:
                    break
            except TimeoutError:
                pass
        waited = time.monotonic() - t0
    assert _status(out) == 408
    assert BODY_S * 0.8 <= waited < BODY_S + 3.0


def test_uploads_beyond_the_cap_get_503_with_retry_after(server):
    stalled = [server.connect() for _ in range(MAX_UPLOADS)]
    try:
        for s in stalled:
            s.sendall(_upload_head(100_000) + b"--b\r\n")
        time.sleep(0.3)  # all of them are being received now
        out, closed = server.raw(_upload_head(10) + b"0123456789", timeout=5)
        assert _status(out) == 503 and b"retry-after: " in out.lower() and closed
        for s in stalled:  # the held uploads are still dropped in time
            out, closed = read_until_closed(s, 10 * IDLE_S)
            assert _status(out) == 408 and closed
    finally:
        for s in stalled:
            s.close()
    status, _ = post(server, image_bytes(lesion_like()), "image/jpeg")
    assert status == 200  # the places are free again


def test_a_burst_of_honest_uploads_beyond_the_cap_waits_instead_of_failing(server):
    photo = image_bytes(lesion_like(size=256), "PNG")  # ~200 kB: several reads each
    with ThreadPoolExecutor(4 * MAX_UPLOADS) as pool:
        statuses = list(pool.map(lambda _: post(server, photo)[0], range(4 * MAX_UPLOADS)))
    assert statuses == [200] * (4 * MAX_UPLOADS)


def test_many_stalled_connections_are_all_closed(server):
    conns = [server.connect() for _ in range(60)]
    try:
        for s in conns:
            s.sendall(_upload_head(50_000) + b"--b\r\n")
        time.sleep(IDLE_S + 2.0)
        statuses = []
        for s in conns:
            out, closed = read_until_closed(s, 5.0)
            assert closed
            statuses.append(_status(out))
        assert set(statuses) <= {408, 503} and statuses.count(408) <= MAX_UPLOADS
    finally:
        for s in conns:
            s.close()


def test_content_length_with_transfer_encoding_is_refused_and_closed(server):
    body, ctype = multipart(image_bytes(lesion_like()), "image/jpeg")
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    request = (
        f"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked
    out, closed = server.raw(request, timeout=5)
    assert _status(out) == 400 and closed and b"x-content-type-options: nosniff" in out.lower()


def test_a_large_photo_is_answered_within_bounded_memory(tiny_model):
    with Server(tiny_model) as server:
        time.sleep(0.5)
        idle_kb = status_kb(server.pid, "VmRSS")
        status, _ = post(server, big_png(6000, 4000))  # 24 megapixels
        assert status == 200
        status, body = post(server, gray16_png(10_000))  # 200 kB that decode to 477 MB
        assert status == 413 and "MB" in body["detail"]
        time.sleep(1.0)
        peak_rise_mb = (status_kb(server.pid, "VmHWM") - idle_kb) / 1024
        after_rise_mb = (status_kb(server.pid, "VmRSS") - idle_kb) / 1024
    assert peak_rise_mb <= 500, peak_rise_mb
    assert after_rise_mb <= 300, after_rise_mb  # the memory was given back


def test_the_server_is_not_slowed_to_death_by_a_connection_that_sends_nothing(server):
    with socket.create_connection(("127.0.0.1", server.port)):
        status, _ = post(server, image_bytes(lesion_like()), "image/jpeg")
    assert status == 200
