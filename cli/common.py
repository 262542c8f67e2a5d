"""Shared CLI pieces: error reporting without tracebacks, the rich progress display."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fcnn.checkpoint import CheckpointError
from fcnn.data.errors import DataError
from fcnn.training.config import ConfigError
from fcnn.training.run import EpochProgress

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

USER_ERRORS = (ConfigError, DataError, CheckpointError, ValueError, FileNotFoundError)


def fail(message: str, code: int = 2) -> typer.Exit:
    # escaped: messages hold brackets ("[mpi]", lists of choices) that are not rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def friendly_errors(fn: F) -> F:
    """Turn the library's user-facing errors into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class RichEpochProgress(EpochProgress):
    """A progress bar per epoch (loss, accuracy, images/s, ETA) and a summary line."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: Any = None

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=steps, stats="")

    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.progress is not None:
            stats = f"loss {loss:.4f} acc {acc:.4f} {images_per_s:,.0f} img/s"
            self.progress.update(self.task, completed=done, stats=stats)

    def end_epoch(self, summary: str) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        console.print(summary, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
