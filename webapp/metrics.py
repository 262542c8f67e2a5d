"""What an operator sees of a running DermaScan: Prometheus metrics and JSON access logs.

:class:`Metrics` holds the site's metrics (``prometheus-client``, the ``[deploy]`` extra;
without it every method does nothing and ``/metrics`` says how to get them):

- ``dermascan_http_requests_total{route, method, status}`` and
  ``dermascan_http_request_duration_seconds{route}``: every request, by the route's template
  (``/api/conditions/{code}``, or ``unmatched``), never by its raw path;
- ``dermascan_decode_duration_seconds`` and ``dermascan_predict_duration_seconds``: the two
  parts of a prediction, the sandboxed decode and the network with its answer rules;
- ``dermascan_answers_total{risk_level, uncertain_reason}``;
- ``dermascan_rejections_total{cause}``: answers of 400, 408, 413, 415 and 503;
- ``dermascan_uploads_in_progress``, ``dermascan_decodes_in_progress`` and
  ``dermascan_decode_memory_bytes`` (the resident memory of the decoder processes, as of
  each worker's last decode or scrape).

With several uvicorn workers the values live in ``PROMETHEUS_MULTIPROC_DIR`` (``fcnn serve``
sets it), so a scrape of any worker sees the sum over all of them: prometheus-client's
multiprocess mode, which reads that variable when it is first imported.

:func:`observe` is the ASGI wrapper that counts and times every request and writes one JSON
line per request to the ``dermascan.access`` logger: method, route, status, duration and a
request id (the proxy's ``X-Request-ID`` when it is a plain token, else a new one, echoed in
the response). It never logs a path, a query, a file name or a byte of an upload.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["CONTENT_TYPE", "Metrics", "observe", "request_id"]

access_log = logging.getLogger("dermascan.access")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format
REJECTED = (400, 408, 413, 415, 503)  # statuses counted as rejections, by cause
_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,64}")  # an X-Request-ID worth passing on
# seconds: a decode takes milliseconds to the sandbox's CPU limit; a request up to its timeout
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _client():
    try:
        import prometheus_client
    except ImportError:
        return None
    return prometheus_client


class Metrics:
    """The site's metrics, registered in a registry of their own (one per app);
    ``enabled=False`` (or no prometheus-client) makes every method do nothing."""

    def __init__(self, enabled: bool = True) -> None:
        prom = _client() if enabled else None
        self.enabled = prom is not None
        if prom is None:
            return
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        reg = self.registry
        self.requests = prom.Counter(
            "dermascan_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=reg,
        )
        self.request_seconds = prom.Histogram(
            "dermascan_http_request_duration_seconds", "Whole requests", ["route"],
            buckets=_BUCKETS, registry=reg,
        )  # fmt: skip
        self.decode_seconds = prom.Histogram(
            "dermascan_decode_duration_seconds",
            "Sandboxed image decodes",
            buckets=_BUCKETS,
            registry=reg,
        )
        self.predict_seconds = prom.Histogram(
            "dermascan_predict_duration_seconds", "The network and its answer rules",
            buckets=_BUCKETS, registry=reg,
        )  # fmt: skip
        self.answers = prom.Counter(
            "dermascan_answers", "Answers given", ["risk_level", "uncertain_reason"], registry=reg
        )
        self.rejections = prom.Counter(
            "dermascan_rejections", "Requests refused, by status", ["cause"], registry=reg
        )
        self.uploads = prom.Gauge(
            "dermascan_uploads_in_progress",
            "Bodies being received",
            registry=reg,
            multiprocess_mode="livesum",  # summed over the live workers
        )
        self.decodes = prom.Gauge(
            "dermascan_decodes_in_progress",
            "Images being decoded",
            registry=reg,
            multiprocess_mode="livesum",  # summed over the live workers
        )
        self.decode_memory = prom.Gauge(
            "dermascan_decode_memory_bytes",
            "Resident memory of the decoder processes",
            registry=reg,
            multiprocess_mode="livesum",  # summed over the live workers
        )

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)
        if status in REJECTED:
            self.rejections.labels(str(status)).inc()

    def answer(self, risk_level: str | None, uncertain_reason: str | None) -> None:
        if self.enabled:
            self.answers.labels(risk_level or "none", uncertain_reason or "none").inc()

    @contextmanager
    def uploading(self) -> Iterator[None]:
        with self.uploads.track_inprogress() if self.enabled else _nothing():
            yield

    @contextmanager
    def decoding(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with self.decodes.track_inprogress(), self.decode_seconds.time():
            yield

    @contextmanager
    def predicting(self) -> Iterator[None]:
        with self.predict_seconds.time() if self.enabled else _nothing():
            yield

    def decoder_memory(self, pids: list[int]) -> None:
        """Record the resident memory of the decoder processes ``pids`` (this worker's)."""
        if self.enabled:
            self.decode_memory.set(sum(_resident_bytes(pid) for pid in pids))

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format: all workers' in multiprocess mode."""
        if not self.enabled:
            return b"# prometheus-client is not installed: pip install 'fcnn[deploy]'\n"
        prom = self._prom
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return prom.generate_latest(registry)
        return prom.generate_latest(self.registry)

    def worker_exited(self) -> None:
        """Drop this worker's live gauges (multiprocess mode); its counters stay counted."""
        if self.enabled and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _resident_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0  # the process has ended, or this is not Linux


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The proxy's ``X-Request-ID`` when it is a plain token, else a fresh one."""
    for name, value in headers:
        if name.lower() == b"x-request-id" and _TOKEN.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


ASGIApp = Callable[..., Any]


def observe(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """``app`` with every HTTP request counted, timed and logged (see the module docstring)."""

    async def observed(scope: Mapping[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started, method = time.perf_counter(), scope["method"]
        rid = request_id(scope["headers"])
        status = 500  # unless the app answers

        async def send_observed(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode("ascii"))]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            # the router writes the matched route's template into the scope it is given
            route = str(scope.get("path_template") or "unmatched")
            metrics.request(route, method, status, seconds)
            access_log.info(
                json.dumps(
                    {
                        "event": "request",
                        "method": method,
                        "route": route,
                        "status": status,
                        "ms": round(seconds * 1e3, 1),
                        "request_id": rid,
                    }
                )
            )

    return observed
