"""``fcnn serve``: start the DermaScan site with uvicorn, or check that it would start.

The workers always run under uvicorn's process supervisor, whatever their number, so that the
signals an operator sends mean the same with one worker or eight: SIGTERM (``systemctl
stop``) lets each worker finish its requests in flight for up to ``DERMASCAN_DRAIN_S``
seconds while refusing new connections, and SIGHUP (``systemctl reload``) replaces the
workers one at a time, each new one loading the model file anew and passing its self-test
before the old one stops, so a model upgrade drops no request (and a model that fails its
self-test never takes over). The workers share their metrics through a folder
(``DERMASCAN_METRICS_DIR``; by default a fresh one for this run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import console, fail
from webapp.settings import Settings

if TYPE_CHECKING:
    from fcnn.inference import Model

# what a worker logs: the site's JSON lines as they are, uvicorn's own lines as text
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"format": "%(message)s"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "text": {
            "class": "logging.StreamHandler",
            "formatter": "text",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "dermascan": {"handlers": ["json"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["text"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
    },
}


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Address to bind [env DERMASCAN_HOST; 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [env DERMASCAN_PORT; 8000]")] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Checkpoint to serve [env DERMASCAN_MODEL; the shipped model]"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [env DERMASCAN_WORKERS; 1]")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Load the model and the conditions, run the self-test prediction and exit "
            "0 (it would serve) or 1 (it would not): run it before a reload",
        ),
    ] = False,
) -> None:
    """Serve the DermaScan site and API (the model is loaded once per worker at start-up)."""
    try:
        settings = Settings.from_env(host=host, port=port, model_path=model, workers=workers)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not settings.model_path.is_file():
        raise fail(
            f"no model at {settings.model_path}; train one with "
            "'fcnn train configs/dermascan.yaml' or pass --model"
        )
    if check:
        _check(settings)
        return
    _check_classes(settings)
    # Workers are separate processes: they rebuild the same settings from the environment.
    os.environ.update(
        {
            "DERMASCAN_HOST": settings.host,
            "DERMASCAN_PORT": str(settings.port),
            "DERMASCAN_MODEL": str(settings.model_path),
            "DERMASCAN_WORKERS": str(settings.workers),
        }
    )
    metrics_dir = _metrics_dir()
    console.print(
        f"DermaScan on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker(s), model {settings.model_path})",
        highlight=False,
        soft_wrap=True,
    )
    try:
        _run(settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_classes(settings: Settings) -> Model:
    """The model to serve; a model the site cannot answer for fails here, in one line, not
    at every upload."""
    from fcnn.checkpoint import CheckpointError
    from fcnn.inference import load
    from webapp.service import check_classes, load_conditions

    try:  # (the root command has imported the plugins)
        model = load(settings.model_path)
        check_classes(model.class_names, load_conditions())
    except (CheckpointError, ValueError) as exc:
        raise fail(f"cannot serve {settings.model_path}: {exc}") from None
    return model


def _check(settings: Settings) -> None:
    """``--check``: what a worker does before it serves, then exit 0 or 1."""
    from fcnn.data.download import sha256_of
    from webapp.service import SelfTestError, self_test, site_predictor

    predictor = site_predictor(settings, _check_classes(settings), decode_workers=1)
    try:
        answer = self_test(predictor)
    except SelfTestError as exc:
        console.print(f"[red]error:[/red] {settings.model_path}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if predictor.decoders is not None:
            predictor.decoders.close()
    console.print(
        f"ok: {settings.model_path} (sha256 {sha256_of(settings.model_path)[:12]}, "
        f"{predictor.version}) answers the self-test photo with {answer['top']['code']}",
        highlight=False,
        soft_wrap=True,
    )


def _metrics_dir() -> Path | None:
    """The workers' shared metrics folder (prometheus-client's multiprocess mode), emptied
    of an earlier run's files; returns the folder to remove at exit when it made one."""
    given = os.environ.get("DERMASCAN_METRICS_DIR") or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    made = None
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = made = Path(tempfile.mkdtemp(prefix="dermascan-metrics-"))
    # read by prometheus-client when a worker first imports it
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return made


def _run(settings: Settings) -> None:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "webapp.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=LOGGING,
        access_log=False,  # the site writes its own, as JSON (webapp.metrics)
        # h11 rather than httptools when both are installed: one parser, the one the tests
        # run against (the app refuses conflicting framing under either)
        http="h11",
        timeout_graceful_shutdown=int(settings.drain_s),
        # a new worker loads the model and runs the self-test before it counts as started
        timeout_worker_healthcheck=30,
    )
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    # a worker that could not start (its model failed the self-test, say) stops the
    # supervisor; say so in the exit status, for systemd and scripts
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise fail("a worker failed to start (the log above says why); the site is not served")
