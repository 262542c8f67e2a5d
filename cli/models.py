"""``fcnn models``: the registered presets a config's ``model:`` can name, with options."""

from __future__ import annotations

import inspect

from rich.table import Table

from cli.common import console
from fcnn import models


def models_command() -> None:
    """The model presets (built-in and plugins'), their options with defaults, and the input
    shape each expects; a config names one as model: NAME with model_options: {...}."""
    table = Table("preset", "input shape", "options (default)")
    for name in models.names():
        options = models.options(name)
        shown = ", ".join(
            k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in options.items()
        )
        try:
            shape = models.get(name, num_classes=2).input_shape
        except (TypeError, ValueError):  # a preset whose options have no defaults
            shape = None
        table.add_row(name, "the data's" if shape is None else str(tuple(shape)), shown or "-")
    console.print(table)
    console.print(
        "A network of your own: model: a layer spec (the JSON layer.spec gives, as YAML) or "
        "the path of a .yaml/.json spec file; a preset of your own: fcnn.models.register.",
        highlight=False,
        soft_wrap=True,
    )
