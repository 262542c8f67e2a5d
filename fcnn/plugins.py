"""User modules that register layers (:func:`fcnn.layers.register`), imported on request.

A checkpoint holding a user's layer names its type; the code comes from the user's own
module, which the command line imports when told to: ``fcnn --plugin mypkg.layers ...``
(repeatable) or ``FCNN_PLUGINS=mypkg.layers,other.mod``. ``fcnn serve`` passes them on to
its workers through ``FCNN_PLUGINS``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping

__all__ = ["ENV", "PluginError", "load_plugins", "plugin_names"]

ENV = "FCNN_PLUGINS"


class PluginError(ImportError):
    """A plugin module that cannot be imported."""


def plugin_names(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """Module names from ``FCNN_PLUGINS`` (comma-separated) and ``extra``, first seen first."""
    env = os.environ if env is None else env
    names = [n.strip() for n in env.get(ENV, "").split(",")] + [n.strip() for n in extra]
    return list(dict.fromkeys(n for n in names if n))


def load_plugins(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """Import every plugin module; returns their names. :class:`PluginError` names the module
    that failed and why."""
    names = plugin_names(extra, env)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise PluginError(f"plugin module {name!r} cannot be imported: {exc}") from None
        except Exception as exc:  # the user's module failed while registering
            raise PluginError(f"plugin module {name!r} failed on import: {exc!r}") from None
    return names
