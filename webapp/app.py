"""The DermaScan Litestar app: ``create_app()``; ``uvicorn --factory webapp.app:create_app``.

- The model is loaded once, in the lifespan, into ``app.state``, and a self-test prediction
  must pass before the worker serves (``/health/ready``); the app holds no per-user state,
  so several uvicorn workers can run side by side.
- Every request is counted, timed and logged as one JSON line (:mod:`webapp.metrics`);
  ``/metrics`` serves the counts to this machine or to a bearer of the metrics token.
- Uploads are read into memory (size-limited) and parsed there; nothing is written
  to disk and nothing about an upload is logged but its size and the outcome. At most
  ``max_uploads`` bodies are received at once (a request waits ``upload_wait_s`` for a
  place, then gets 503 with ``Retry-After``); a body must arrive within ``body_timeout_s``
  with no pause over ``body_idle_s`` (408, and the connection is closed); see
  :mod:`webapp.uploads`.
- Inference runs in a worker thread, at most ``max_in_flight`` at a time; the upload is
  decoded in one of ``decode_workers`` decoder processes, each under ``decode_memory_mb``
  of memory and ``decode_cpu_s`` of CPU time (:mod:`webapp.sandbox`: 413 past them); a
  request not answered within ``request_timeout_s`` gets 503, and its decoder is stopped.
- Every error is JSON ``{"status_code", "detail"}`` with a detail that says what to do and
  never echoes the request; no traceback ever leaves the server. Security headers and a
  content security policy (which the page itself satisfies) go on every response, and HEAD
  works on every GET route (:mod:`webapp.guard`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
import attrs
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from fcnn.data.download import sha256_of
from fcnn.inference import load
from fcnn.plugins import load_plugins
from webapp.about import STATIC, about_page, markdown_to_html
from webapp.errors import SiteError
from webapp.guard import NOTHING_HERE, guard
from webapp.images import ImageProblem
from webapp.metrics import CONTENT_TYPE, Metrics, observe
from webapp.multipart import FormError, parse_form
from webapp.schemas import (
    ClassProbability,
    Condition,
    ErrorBody,
    Health,
    PredictOperation,
    PredictResponse,
    error_responses,
)
from webapp.service import Predictor, SelfTestError, self_test, site_predictor
from webapp.settings import Settings
from webapp.uploads import CLOSE, NO_STORE, explain_flag, receive_body, upload_slot

__all__ = ["create_app", "markdown_to_html"]

log = logging.getLogger("dermascan")


# ----------------------------------------------------------------------------- handlers


def _predictor(state: State) -> Predictor:
    return state.predictor


@get("/health", sync_to_thread=False)
def health(state: State) -> Health:
    """200 once the model is loaded and its self-test passed."""
    return _health(state)


def _health(state: State) -> Health:
    p = _predictor(state)
    return Health("ok", p.version, list(p.model.class_names), state.model_file, state.model_sha256)


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    """200 while the process answers at all (restart it when this fails)."""
    return {"status": "alive"}


@get("/health/ready", sync_to_thread=False, responses=error_responses(s503="Not serving"))
def ready(state: State) -> Health:
    """200 once the model is loaded and a self-test prediction passed (send traffic),
    503 from the moment the worker starts to stop."""
    if not state.ready:
        raise SiteError(status_code=503, detail="Not ready.", headers={"Retry-After": "1"})
    return _health(state)


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request, state: State) -> Response:
    """The Prometheus metrics (webapp.metrics), to loopback clients that did not come through
    a proxy or with ``Authorization: Bearer $DERMASCAN_METRICS_TOKEN``; 404 to anyone else."""
    if not _may_read_metrics(request, state.settings.metrics_token):
        raise SiteError(status_code=404, detail=NOTHING_HERE)
    decoders = _predictor(state).decoders
    if decoders is not None:
        state.metrics.decoder_memory(decoders.pids)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE, headers=NO_STORE)


def _may_read_metrics(request: Request, token: str | None) -> bool:
    if token:
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return True
    proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    host = request.client.host if request.client else ""
    try:
        return not proxied and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@get("/api/conditions", sync_to_thread=False)
def conditions(state: State) -> list[Condition]:
    """The conditions database: name, description, appearance, risk level, what to do."""
    conditions = _predictor(state).conditions.items()
    # conditions.json's risk levels are high, medium or low (a test in tests/webapp/test_api.py)
    return [Condition(code=code, **info) for code, info in conditions]  # type: ignore[arg-type]


@get(
    "/api/conditions/{code:str}",
    sync_to_thread=False,
    responses=error_responses(s404="No condition has that code"),
)
def condition(state: State, code: FromPath[str]) -> Condition:
    """One condition by its code (akiec, bcc, bkl, df, mel, nv, vasc)."""
    info = _predictor(state).conditions.get(code)
    if info is None:
        # the unknown code is not echoed back: a reflected string is an injection vector
        known = ", ".join(_predictor(state).conditions)
        raise SiteError(
            status_code=404, detail=f"No condition has that code. Known codes: {known}."
        )
    return Condition(code=code, **info)  # type: ignore[arg-type]  # as in conditions()


@post(
    "/api/predict",
    operation_class=PredictOperation,
    status_code=200,
    response_headers=NO_STORE,
    responses=error_responses(
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
    async with upload_slot(state):
        body = await receive_body(request, settings)  # bounded by request_max_body_size
    try:
        form = parse_form(body, request.headers.get("content-type"))
    except FormError as exc:
        raise SiteError(
            status_code=400, detail=f"Could not read the upload: {exc}.", headers=NO_STORE
        ) from None
    del body  # the form holds the file's own copy
    upload = form.get("file")
    if upload is None:
        raise SiteError(
            status_code=400,
            detail="No file was uploaded. Send the photo in a form field named 'file'.",
            headers=NO_STORE,
        )
    explain = explain_flag(form)
    predictor = _predictor(state)

    # the decode is stopped at the same deadline the answer must meet (webapp.sandbox)
    deadline = time.monotonic() + settings.request_timeout_s
    try:
        with anyio.fail_after(settings.request_timeout_s):
            answer = await anyio.to_thread.run_sync(
                predictor.predict, upload.data, explain, deadline, limiter=state.limiter
            )
    except ImageProblem as exc:
        log.info(json.dumps({"event": "predict", "status": exc.status, "bytes": len(upload.data)}))
        headers = {**NO_STORE, **({"Retry-After": "5"} if exc.status == 503 else {})}
        raise SiteError(status_code=exc.status, detail=exc.detail, headers=headers) from None
    except TimeoutError:
        raise SiteError(
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


def _error_response(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, SiteError):
        status, detail, headers = exc.status_code, str(exc.detail), dict(exc.headers or {})
    elif isinstance(exc, HTTPException):  # Litestar's own: reworded by its status alone
        status, detail = exc.status_code, str(exc.detail)
        headers = dict(exc.headers or {})
        if status == 413:  # the body-size limit (request_max_body_size)
            limit = request.app.state.settings.max_body_bytes / 1024 / 1024
            detail = f"The upload is larger than {limit:g} MB. Choose a smaller photo."
            headers.update(CLOSE)  # the rest of the body is not read
        elif status == 404:
            detail = NOTHING_HERE  # a router's or static file's detail names the path
        elif status == 405:
            allow = [m.strip() for m in headers.pop("allow", "").split(",") if m.strip()]
            if "GET" in allow and "HEAD" not in allow:
                allow.append("HEAD")  # webapp.guard answers HEAD for every GET route
            headers["Allow"] = ", ".join(sorted(allow))
            detail = f"This method is not allowed here. Allowed: {headers['Allow']}."
        elif status >= 500 and status != 503:
            detail = "Something went wrong on our side. Please try again."
    elif request.url.path.startswith("/static/"):
        # the static files router fails on paths no file can have: nothing is there
        log.info("static path refused: %s", type(exc).__name__)
        status, detail = 404, NOTHING_HERE
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
        app.state.ready = False
        predictor = site_predictor(settings, model)
        decoders = predictor.decoders
        assert decoders is not None  # the site always decodes in decoder processes
        try:
            self_test(predictor)  # SelfTestError: the worker does not start
        except SelfTestError:
            decoders.close()
            raise
        app.state.predictor = attrs.evolve(predictor, metrics=app.state.metrics)
        app.state.settings = settings
        app.state.model_file = settings.model_path.name
        app.state.model_sha256 = sha256_of(settings.model_path)[:12]
        app.state.limiter = anyio.CapacityLimiter(settings.max_in_flight)
        app.state.upload_slots = anyio.Semaphore(settings.max_uploads)
        app.state.about_html = about_page(settings.model_path.with_name("MODEL_CARD.md"))
        log.info(
            json.dumps(
                {
                    "event": "model_loaded",
                    "path": str(settings.model_path),
                    "version": app.state.predictor.version,
                }
            )
        )
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            decoders.close()
            app.state.metrics.worker_exited()

    app = Litestar(
        route_handlers=[
            health,
            live,
            ready,
            metrics,
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
    app.state.metrics = Metrics()
    # in front of routing: see webapp.guard; outermost, every request counted and logged
    app.asgi_handler = observe(guard(app.asgi_handler), app.state.metrics)
    return app
