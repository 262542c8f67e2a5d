"""The ``fcnn`` command: train, evaluate, export, predict."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.calibrate import calibrate_command
from cli.common import fail
from cli.evaluate import evaluate_command
from cli.export import export_command
from cli.models import models_command
from cli.predict import predict_command
from cli.serve import serve_command
from cli.summary import summary_command
from cli.train import train_command
from fcnn.plugins import ENV as PLUGINS_ENV
from fcnn.plugins import PluginError, load_plugins
from fcnn.runtime import keep_freed_memory
from fcnn.version import __version__

app = typer.Typer(
    name="fcnn",
    help="Convolutional networks from scratch in NumPy: train, evaluate, export, predict, "
    "serve; summary and models describe networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fcnn {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version")
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            metavar="MODULE",
            help="Import this module first, for the layers it registers (repeatable; also "
            "FCNN_PLUGINS=mod1,mod2). Checkpoints never import code themselves.",
        ),
    ] = None,
) -> None:
    """fcnn: a CNN library written from scratch in NumPy."""
    try:
        names = load_plugins(plugin or [])
    except PluginError as exc:
        raise fail(str(exc)) from None
    if names:
        # processes this one starts (mpiexec ranks, uvicorn workers) import them too
        os.environ[PLUGINS_ENV] = ",".join(names)
    if ctx.invoked_subcommand != "serve":
        # training and evaluation reuse their big arrays; a server must instead give a
        # large upload's memory back to the system once the request is done
        keep_freed_memory()


app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("calibrate")(calibrate_command)
app.command("export")(export_command)
app.command("predict")(predict_command)
app.command("serve")(serve_command)
app.command("summary")(summary_command)
app.command("models")(models_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
