"""The DermaScan Litestar app: ``create_app()``; ``uvicorn --factory webapp.app:create_app``.

- The model is loaded once, in the lifespan, into ``app.state``; the app holds no
  per-user state, so several uvicorn workers can run side by side.
- Uploads are read into memory (size-limited) and parsed there; nothing is written
  to disk and nothing about an upload is logged but its size and the outcome. At most
  ``max_uploads`` bodies are received at once (a request waits ``upload_wait_s`` for a
  place, then gets 503 with ``Retry-After``); a body
  must arrive within ``body_timeout_s`` with no pause over ``body_idle_s`` (408, and the
  connection is closed).
- Decoding and inference run in a worker thread, at most ``max_in_flight`` at a time; the
  decodes under way share ``decode_memory_mb`` (:mod:`webapp.images`); a request that waits
  longer than ``request_timeout_s`` gets 503.
- Every error is JSON ``{"status_code", "detail"}`` with a detail that says what to do and
  never echoes the request; no traceback ever leaves the server. Security headers and a
  content security policy (which the page itself satisfies) go on every response, and HEAD
  works on every GET route (:mod:`webapp.guard`).
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
from typing import Literal

import anyio
import anyio.to_thread
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, InternalServerException, NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from fcnn.inference import load
from fcnn.plugins import load_plugins
from webapp.guard import guard
from webapp.images import DecodeBudget, ImageProblem
from webapp.multipart import FormError, parse_form
from webapp.service import Predictor, load_conditions
from webapp.settings import Settings

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
MODEL_CARD = Path(__file__).parent / "model" / "MODEL_CARD.md"
log = logging.getLogger("dermascan")

NO_STORE = {"Cache-Control": "no-store"}  # an answer about someone's skin is never cached
CLOSE = {"Connection": "close"}  # the rest of the body is not read: the connection is done


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


def _errors(**described: str) -> dict[int, ResponseSpec]:
    """OpenAPI entries for error statuses, each with the error body's schema."""
    return {
        int(status[1:]): ResponseSpec(ErrorBody, description=text, generate_examples=False)
        for status, text in described.items()
    }


@get(
    "/api/conditions/{code:str}",
    sync_to_thread=False,
    responses=_errors(s404="No condition has that code"),
)
def condition(state: State, code: FromPath[str]) -> Condition:
    """One condition by its code (akiec, bcc, bkl, df, mel, nv, vasc)."""
    info = _predictor(state).conditions.get(code)
    if info is None:
        # the unknown code is not echoed back: a reflected string is an injection vector
        known = ", ".join(_predictor(state).conditions)
        raise NotFoundException(f"No condition has that code. Known codes: {known}.")
    return Condition(code=code, **info)


def _explain_flag(form: dict) -> bool:
    field = form.get("explain")
    if field is None:
        return False
    value = field.data.strip().lower()
    if value not in (b"true", b"false"):
        raise HTTPException(
            status_code=400, detail="The field 'explain' must be true or false.", headers=NO_STORE
        )
    return value == b"true"


async def _receive_body(request: Request, settings: Settings) -> bytes:
    """The request body, read within the body deadline and the idle timeout between chunks
    (408 and a closed connection otherwise); the body-size limit still applies (413)."""
    chunks: list[bytes] = []
    deadline = anyio.current_time() + settings.body_timeout_s
    stream = request.stream()
    try:
        while True:
            wait = min(settings.body_idle_s, deadline - anyio.current_time())
            with anyio.move_on_after(max(wait, 0.0)) as waited:
                try:
                    chunk = await anext(stream, None)
                except InternalServerException:  # Litestar's word for a client that left
                    raise HTTPException(
                        status_code=400,
                        detail="The upload was cut off before it ended.",
                        headers={**CLOSE, **NO_STORE},
                    ) from None
            if waited.cancelled_caught:
                raise HTTPException(
                    status_code=408,
                    detail="The upload stalled or took too long. Check the connection and "
                    "try again.",
                    headers={**CLOSE, **NO_STORE},
                )
            if chunk is None:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        await stream.aclose()


@asynccontextmanager
async def _upload_slot(state: State) -> AsyncIterator[None]:
    """One of ``max_uploads`` places for a body being received, waited for at most
    ``upload_wait_s`` (a burst of honest uploads queues briefly; when stalled clients hold
    every place the wait ends in 503)."""
    acquired = False
    with anyio.move_on_after(state.settings.upload_wait_s):
        await state.upload_slots.acquire()
        acquired = True
    if not acquired:
        raise HTTPException(
            status_code=503,
            detail="The server is receiving too many uploads. Please try again in a moment.",
            headers={"Retry-After": "5", **CLOSE, **NO_STORE},
        )
    try:
        yield
    finally:
        state.upload_slots.release()


@post(
    "/api/predict",
    operation_class=_PredictOperation,
    status_code=200,
    response_headers=NO_STORE,
    responses=_errors(
        s400="The upload is not a readable photo, or the form is malformed",
        s408="The upload stalled or took longer than the body deadline",
        s413="The upload, or the image's pixel count or decoded size, is over the limit",
        s415="The file is not a JPEG, PNG or WebP image",
        s503="Too many uploads or predictions at once; retry after a moment",
    ),
)
async def predict(request: Request, state: State) -> PredictResponse:
    """Classify one photo sent as multipart field ``file`` (``explain=true`` adds saliency)."""
    started = time.perf_counter()
    settings: Settings = state.settings
    async with _upload_slot(state):
        body = await _receive_body(request, settings)  # bounded by request_max_body_size
    try:
        form = parse_form(body, request.headers.get("content-type"))
    except FormError as exc:
        raise HTTPException(
            status_code=400, detail=f"Could not read the upload: {exc}.", headers=NO_STORE
        ) from None
    del body  # the form holds the file's own copy
    upload = form.get("file")
    if upload is None:
        raise HTTPException(
            status_code=400,
            detail="No file was uploaded. Send the photo in a form field named 'file'.",
            headers=NO_STORE,
        )
    explain = _explain_flag(form)
    predictor = _predictor(state)

    try:
        with anyio.fail_after(settings.request_timeout_s):
            answer = await anyio.to_thread.run_sync(
                predictor.predict, upload.data, explain, limiter=state.limiter
            )
    except ImageProblem as exc:
        log.info(json.dumps({"event": "predict", "status": exc.status, "bytes": len(upload.data)}))
        headers = {**NO_STORE, **({"Retry-After": "5"} if exc.status == 503 else {})}
        raise HTTPException(status_code=exc.status, detail=exc.detail, headers=headers) from None
    except TimeoutError:
        raise HTTPException(
            status_code=503,
            detail="The server is busy. Please try again in a moment.",
            headers={"Retry-After": "5", **NO_STORE},
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


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def favicon() -> File:
    """Browsers ask for it whatever the page says; answering saves a console error."""
    return File(
        STATIC / "favicon.ico", media_type="image/x-icon", content_disposition_type="inline"
    )


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
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        headers = dict(exc.headers or {})
        if status == 413 and "request entity" in detail.lower():
            limit = request.app.state.settings.max_body_bytes / 1024 / 1024
            detail = f"The upload is larger than {limit:g} MB. Choose a smaller photo."
            headers.update(CLOSE)  # the rest of the body is not read
        elif status == 404 and detail == "Not Found":
            detail = "There is nothing at this address. The API lives under /api/."
        elif status == 405:
            allow = [m.strip() for m in headers.pop("allow", "").split(",") if m.strip()]
            if "GET" in allow and "HEAD" not in allow:
                allow.append("HEAD")  # webapp.guard answers HEAD for every GET route
            headers["Allow"] = ", ".join(sorted(allow))
            detail = f"This method is not allowed here. Allowed: {headers['Allow']}."
        elif status >= 500 and status != 503:
            detail = "Something went wrong on our side. Please try again."
    else:
        log.exception("unhandled error")  # details go to the server log only
        status, detail = 500, "Something went wrong on our side. Please try again."
    return Response(
        ErrorBody(status, detail), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """The DermaScan app; ``settings`` default to :meth:`Settings.from_env`."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # not keep_freed_memory() as fcnn's training does: webapp.images gives a large
        # decode's memory back to the system after the request
        load_plugins()  # a model with user layers: their modules, named by FCNN_PLUGINS
        model = load(settings.model_path)
        app.state.predictor = Predictor(
            model,
            load_conditions(),
            settings.confidence_threshold,
            max_pixels=settings.max_pixels,
            budget=DecodeBudget(settings.decode_memory_bytes, wait_s=settings.request_timeout_s),
        )
        app.state.settings = settings
        app.state.limiter = anyio.CapacityLimiter(settings.max_in_flight)
        app.state.upload_slots = anyio.Semaphore(settings.max_uploads)
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

    app = Litestar(
        route_handlers=[
            health,
            conditions,
            condition,
            predict,
            index,
            about,
            favicon,
            create_static_files_router(
                path="/static", directories=[STATIC], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
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
    app.asgi_handler = guard(app.asgi_handler)  # in front of routing: see webapp.guard
    return app
