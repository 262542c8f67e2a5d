"""DermaScan settings: explicit values, read from the environment only when asked to."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

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
    confidence_threshold: float = attrs.field(
        default=0.35,  # chosen on validation: <= 10 % of real lesions answered "uncertain"
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )
    max_in_flight: int = attrs.field(default=4, validator=_positive)
    request_timeout_s: float = attrs.field(default=30.0, validator=_positive)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from ``DERMASCAN_*`` variables, then ``overrides`` (None means unset).

        ``DERMASCAN_HOST`` (127.0.0.1), ``DERMASCAN_PORT`` (8000), ``DERMASCAN_MODEL``
        (the shipped model), ``DERMASCAN_WORKERS`` (1), ``DERMASCAN_MAX_BODY_MB`` (10),
        ``DERMASCAN_MAX_PIXELS`` (100000000), ``DERMASCAN_THRESHOLD`` (0.35).
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        spec = {
            "DERMASCAN_HOST": ("host", str),
            "DERMASCAN_PORT": ("port", int),
            "DERMASCAN_MODEL": ("model_path", Path),
            "DERMASCAN_WORKERS": ("workers", int),
            "DERMASCAN_MAX_PIXELS": ("max_pixels", int),
            "DERMASCAN_THRESHOLD": ("confidence_threshold", float),
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
