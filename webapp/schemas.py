"""The API's typed bodies and how the OpenAPI document describes them: responses, the
error body every 4xx/5xx carries, and the multipart upload Litestar cannot infer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

__all__ = [
    "ClassProbability",
    "Condition",
    "ErrorBody",
    "Health",
    "PredictOperation",
    "PredictResponse",
    "error_responses",
]


@dataclass
class ClassProbability:
    code: str
    name: str
    probability: float


@dataclass
class PredictResponse:
    predictions: list[ClassProbability]
    top: ClassProbability
    risk_level: Literal["high", "medium", "low"]
    uncertain: bool
    uncertain_reason: Literal["low_confidence", "not_skin"] | None
    malignant_probability: float
    model_version: str
    saliency_png: str | None = None


@dataclass
class Condition:
    code: str
    name: str
    short_name: str
    description: str
    appearance: str
    risk_level: Literal["high", "medium", "low"]
    recommended_action: str


@dataclass
class Health:
    status: str
    model_version: str
    classes: list[str]
    model_file: str  # the served checkpoint's file name
    model_sha256: str  # the first 12 hex digits of its SHA-256: which model this really is


@dataclass
class ErrorBody:
    status_code: int
    detail: str


@dataclass
class PredictOperation(Operation):
    """Documents the multipart body that the handler parses itself (in memory)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type="object",  # type: ignore[arg-type]
                        required=["file"],
                        properties={
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format="binary",  # type: ignore[arg-type]
                                description="The photo: JPEG, PNG or WebP",
                            ),
                            "explain": Schema(
                                type="boolean",  # type: ignore[arg-type]
                                description="true adds saliency_png, a base64 overlay "
                                "(true or false; default false)",
                            ),
                        },
                    )
                )
            },
        )


def error_responses(**described: str) -> dict[int, ResponseSpec]:
    """OpenAPI entries for error statuses, each with the error body's schema."""
    return {
        int(status[1:]): ResponseSpec(ErrorBody, description=text, generate_examples=False)
        for status, text in described.items()
    }
