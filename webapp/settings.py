"""DermaScan settings: explicit values, read from the environment only when asked to."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["DEFAULT_MODEL", "Settings"]

DEFAULT_MODEL = Path(__file__).parent / "model" / "dermascan.npz"


def _positive(inst, attr, value) -> None:
    if value <= 0:
        raise ValueError(f"{attr.name} must be positive, got {value!r}")


@attrs.frozen
class Settings:
    """Everything the app needs to know; pass one to ``create_app``."""

    model_path: Path = DEFAULT_MODEL
    host: str = "127.0.0.1"
    port: int = attrs.field(
        default=8000, validator=attrs.validators.and_(_positive, attrs.validators.le(65535))
    )
    workers: int = attrs.field(default=1, validator=_positive)
    max_body_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=_positive)
    max_pixels: int = attrs.field(default=100_000_000, validator=_positive)
    # None: the model's own "uncertain" threshold (its answer rules); a number overrides it
    confidence_threshold: float | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))
        ),
    )
    # uploads are decoded in decode_workers processes (webapp.sandbox), each allowed
    # decode_memory_mb beyond its own size and decode_cpu_s of CPU time per image (a
    # 24-megapixel RGB photo needs 92 MB; a 24-megapixel JPEG decodes, drafted, in ~0.1 s)
    decode_workers: int = attrs.field(default=2, validator=_positive)
    decode_memory_mb: float = attrs.field(default=256.0, validator=_positive)
    decode_cpu_s: float = attrs.field(default=1.0, validator=_positive)
    max_in_flight: int = attrs.field(default=4, validator=_positive)
    request_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    # a body must arrive within body_timeout_s, with no gap between chunks longer than
    # body_idle_s; at most max_uploads bodies are received at once, and a request waits
    # upload_wait_s for a place before it gets 503
    body_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    body_idle_s: float = attrs.field(default=10.0, validator=_positive)
    max_uploads: int = attrs.field(default=16, validator=_positive)
    upload_wait_s: float = attrs.field(default=2.0, validator=_positive)
    # a bearer token that lets /metrics be read from elsewhere than this machine (None: only
    # loopback clients not behind a proxy may read it)
    metrics_token: str | None = None
    # seconds a stopping worker waits for its requests in flight (SIGTERM, a reload)
    drain_s: float = attrs.field(default=30.0, validator=_positive)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from ``DERMASCAN_*`` variables, then ``overrides`` (None means unset).

        ``DERMASCAN_HOST`` (127.0.0.1), ``DERMASCAN_PORT`` (8000), ``DERMASCAN_MODEL``
        (the shipped model), ``DERMASCAN_WORKERS`` (1), ``DERMASCAN_MAX_BODY_MB`` (10),
        ``DERMASCAN_MAX_PIXELS`` (100000000), ``DERMASCAN_DECODE_WORKERS`` (2),
        ``DERMASCAN_DECODE_MEMORY_MB`` (256, per decoder), ``DERMASCAN_DECODE_CPU_S`` (1),
        ``DERMASCAN_THRESHOLD`` (the model's own), ``DERMASCAN_MAX_IN_FLIGHT`` (4),
        ``DERMASCAN_REQUEST_TIMEOUT_S`` (30), ``DERMASCAN_BODY_TIMEOUT_S`` (30),
        ``DERMASCAN_BODY_IDLE_S`` (10), ``DERMASCAN_MAX_UPLOADS`` (16),
        ``DERMASCAN_UPLOAD_WAIT_S`` (2), ``DERMASCAN_METRICS_TOKEN`` (none),
        ``DERMASCAN_DRAIN_S`` (30).
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        spec = {
            "DERMASCAN_HOST": ("host", str),
            "DERMASCAN_PORT": ("port", int),
            "DERMASCAN_MODEL": ("model_path", Path),
            "DERMASCAN_WORKERS": ("workers", int),
            "DERMASCAN_MAX_PIXELS": ("max_pixels", int),
            "DERMASCAN_THRESHOLD": ("confidence_threshold", float),
            "DERMASCAN_DECODE_WORKERS": ("decode_workers", int),
            "DERMASCAN_DECODE_MEMORY_MB": ("decode_memory_mb", float),
            "DERMASCAN_DECODE_CPU_S": ("decode_cpu_s", float),
            "DERMASCAN_MAX_IN_FLIGHT": ("max_in_flight", int),
            "DERMASCAN_REQUEST_TIMEOUT_S": ("request_timeout_s", float),
            "DERMASCAN_BODY_TIMEOUT_S": ("body_timeout_s", float),
            "DERMASCAN_BODY_IDLE_S": ("body_idle_s", float),
            "DERMASCAN_MAX_UPLOADS": ("max_uploads", int),
            "DERMASCAN_UPLOAD_WAIT_S": ("upload_wait_s", float),
            "DERMASCAN_METRICS_TOKEN": ("metrics_token", str),
            "DERMASCAN_DRAIN_S": ("drain_s", float),
        }
        for var, (field, kind) in spec.items():
            if env.get(var):
                try:
                    values[field] = kind(env[var])
                except ValueError:
                    raise ValueError(f"{var}={env[var]!r} is not a valid {kind.__name__}") from None
        if env.get("DERMASCAN_MAX_BODY_MB"):
            try:
                values["max_body_bytes"] = int(float(env["DERMASCAN_MAX_BODY_MB"]) * 1024 * 1024)
            except ValueError:
                raise ValueError("DERMASCAN_MAX_BODY_MB must be a number of megabytes") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
