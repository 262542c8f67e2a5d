"""``fcnn serve``: start the DermaScan site with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail
from webapp.settings import Settings


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
) -> None:
    """Serve the DermaScan site and API (the model is loaded once per worker at start-up)."""
    import uvicorn

    try:
        settings = Settings.from_env(host=host, port=port, model_path=model, workers=workers)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not settings.model_path.is_file():
        raise fail(
            f"no model at {settings.model_path}; train one with "
            "'fcnn train configs/dermascan.yaml' or pass --model"
        )
    # a model the site cannot answer for fails here, in one line, not at every upload
    from fcnn.checkpoint import CheckpointError
    from fcnn.inference import load
    from webapp.service import check_classes, load_conditions

    try:  # (the root command has imported the plugins)
        check_classes(load(settings.model_path).class_names, load_conditions())
    except (CheckpointError, ValueError) as exc:
        raise fail(f"cannot serve {settings.model_path}: {exc}") from None
    # Workers are separate processes: they rebuild the same settings from the environment.
    os.environ.update(
        {
            "DERMASCAN_HOST": settings.host,
            "DERMASCAN_PORT": str(settings.port),
            "DERMASCAN_MODEL": str(settings.model_path),
            "DERMASCAN_WORKERS": str(settings.workers),
        }
    )
    console.print(
        f"DermaScan on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker(s), model {settings.model_path})",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        "webapp.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
        # h11 rather than httptools when both are installed: one parser, the one the tests
        # run against (the app refuses conflicting framing under either)
        http="h11",
    )
