"""The DermaScan Litestar app: ``create_app()``; ``uvicorn --factory webapp.app:create_app``.

- The model is loaded once, in the lifespan, into ``app.state``; the app holds no
  per-user state, so several uvicorn workers can run side by side.
- Inference runs in a worker thread, at most ``max_in_flight`` at a time, and a request
  that waits longer than ``request_timeout_s`` gets 503.
- Uploads are read into memory (size-limited) and parsed there; nothing is written
  to disk and nothing about an upload is logged but its size and the outcome.
- Every error is JSON ``{"status_code", "detail"}`` with a detail that says what to do;
  no traceback ever leaves the server. Security headers and a content security policy
  (which the page itself satisfies) go on every response.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from fcnn.inference import load
from fcnn.runtime import keep_freed_memory
from webapp.multipart import FormError, parse_form
from webapp.service import ImageProblem, Predictor, decode_image, load_conditions
from webapp.settings import Settings

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
MODEL_CARD = Path(__file__).parent / "model" / "MODEL_CARD.md"
log = logging.getLogger("dermascan")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
}


# ----------------------------------------------------------------------------- schemas


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


@dataclass
class ErrorBody:
    status_code: int
    detail: str


@dataclass
class _PredictOperation(Operation):
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
                                type="string",
                                format="binary",  # type: ignore[arg-type]
                                description="The photo (JPEG, PNG, WebP...)",
                            ),
                            "explain": Schema(
                                type="boolean",  # type: ignore[arg-type]
                                description="Add saliency_png, a base64 overlay",
                            ),
                        },
                    )
                )
            },
        )


# ----------------------------------------------------------------------------- handlers


def _predictor(state: State) -> Predictor:
    return state.predictor


@get("/health", sync_to_thread=False)
def health(state: State) -> Health:
    """200 once the model is loaded."""
    p = _predictor(state)
    return Health("ok", p.version, list(p.model.class_names))


@get("/api/conditions", sync_to_thread=False)
def conditions(state: State) -> list[Condition]:
    """The conditions database: name, description, appearance, risk level, what to do."""
    return [Condition(code=code, **info) for code, info in _predictor(state).conditions.items()]


@get("/api/conditions/{code:str}", sync_to_thread=False)
def condition(state: State, code: FromPath[str]) -> Condition:
    """One condition by its code (akiec, bcc, bkl, df, mel, nv, vasc)."""
    info = _predictor(state).conditions.get(code)
    if info is None:
        known = ", ".join(_predictor(state).conditions)
        raise NotFoundException(f"No condition with code {code!r}. Known codes: {known}.")
    return Condition(code=code, **info)


@post("/api/predict", operation_class=_PredictOperation, status_code=200)
async def predict(request: Request, state: State) -> PredictResponse:
    """Classify one photo sent as multipart field ``file`` (``explain=true`` adds saliency)."""
    started = time.perf_counter()
    body = await request.body()  # bounded by request_max_body_size (413 above it)
    try:
        form = parse_form(body, request.headers.get("content-type"))
    except FormError as exc:
        raise HTTPException(status_code=400, detail=f"Could not read the upload: {exc}.") from None
    upload = form.get("file")
    if upload is None:
        raise HTTPException(
            status_code=400,
            detail="No file was uploaded. Send the photo in a form field named 'file'.",
        )
    explain_it = form.get("explain") is not None and form["explain"].data.strip().lower() in (
        b"true",
        b"1",
        b"yes",
        b"on",
    )
    settings: Settings = state.settings
    predictor = _predictor(state)

    def work() -> dict[str, Any]:
        img = decode_image(upload.data, upload.content_type, settings.max_pixels)
        return predictor.predict(img, explain_it)

    try:
        with anyio.fail_after(settings.request_timeout_s):
            answer = await anyio.to_thread.run_sync(work, limiter=state.limiter)
    except ImageProblem as exc:
        log.info(json.dumps({"event": "predict", "status": exc.status, "bytes": len(upload.data)}))
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None
    except TimeoutError:
        raise HTTPException(
            status_code=503, detail="The server is busy. Please try again in a moment."
        ) from None
    log.info(
        json.dumps(
            {
                "event": "predict",
                "status": 200,
                "bytes": len(upload.data),
                "ms": round((time.perf_counter() - started) * 1e3, 1),
                "uncertain": answer["uncertain"],
            }
        )
    )
    return PredictResponse(
        predictions=[ClassProbability(**p) for p in answer["predictions"]],
        top=ClassProbability(**answer["top"]),
        risk_level=answer["risk_level"],
        uncertain=answer["uncertain"],
        uncertain_reason=answer["uncertain_reason"],
        malignant_probability=answer["malignant_probability"],
        model_version=answer["model_version"],
        saliency_png=answer.get("saliency_png"),
    )


@get("/", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def index() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


@get("/about", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def about(state: State) -> str:
    return state.about_html


# ----------------------------------------------------------------------------- plumbing


def markdown_to_html(text: str) -> str:
    """A small, escaping Markdown subset (headings, lists, tables, bold, code, paragraphs)."""
    out: list[str] = []
    in_list = in_table = False
    para: list[str] = []

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", s)

    def flush() -> None:
        nonlocal in_list, in_table
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False
        if in_table:
            out.append("</tbody></table>")
            in_table = False

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            flush()
        elif m := re.match(r"(#{1,4})\s+(.*)", stripped):
            flush()
            level = len(m.group(1)) + 1  # the page has its own h1
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            if para:
                flush()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(stripped[2:])}</li>")
        elif stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if not in_table:
                flush()
                out.append(
                    "<table><thead><tr>"
                    + "".join(f"<th>{inline(c)}</th>" for c in cells)
                    + "</tr></thead><tbody>"
                )
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells) + "</tr>")
        elif in_list and line.startswith("  "):
            out[-1] = out[-1][: -len("</li>")] + " " + inline(stripped) + "</li>"
        else:
            para.append(stripped)
    flush()
    return "\n".join(out)


def _about_page(card: Path) -> str:
    template = (STATIC / "about.html").read_text(encoding="utf-8")
    body = (
        markdown_to_html(card.read_text(encoding="utf-8"))
        if card.is_file()
        else ("<p>No model card was found next to the model.</p>")
    )
    return template.replace("<!--MODEL_CARD-->", body)


def _error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        if status == 413 and "request entity" in detail.lower():
            limit = request.app.state.settings.max_body_bytes / 1024 / 1024
            detail = f"The upload is larger than {limit:g} MB. Choose a smaller photo."
        elif status == 404 and detail == "Not Found":
            detail = "There is nothing at this address. The API lives under /api/."
        elif status == 405:
            detail = f"{request.method} is not allowed here."
    else:
        log.exception("unhandled error")  # details go to the server log only
        status, detail = 500, "Something went wrong on our side. Please try again."
    return Response(ErrorBody(status, detail), status_code=status, media_type=MediaType.JSON)


async def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings | None = None) -> Litestar:
    """The DermaScan app; ``settings`` default to :meth:`Settings.from_env`."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        keep_freed_memory()
        model = load(settings.model_path)
        app.state.predictor = Predictor(model, load_conditions(), settings.confidence_threshold)
        app.state.settings = settings
        app.state.limiter = anyio.CapacityLimiter(settings.max_in_flight)
        app.state.about_html = _about_page(settings.model_path.with_name("MODEL_CARD.md"))
        log.info(
            json.dumps(
                {
                    "event": "model_loaded",
                    "path": str(settings.model_path),
                    "version": app.state.predictor.version,
                }
            )
        )
        yield

    return Litestar(
        route_handlers=[
            health,
            conditions,
            condition,
            predict,
            index,
            about,
            create_static_files_router(
                path="/static", directories=[STATIC], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        after_request=_security_headers,
        exception_handlers={Exception: _error_response},
        openapi_config=OpenAPIConfig(
            title="DermaScan API",
            version="1",
            path="/schema",
            description="Educational skin-lesion classifier built on fcnn. Not a diagnosis.",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
    )
