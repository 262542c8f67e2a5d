"""User modules that register layers (:func:`fcnn.layers.register`), imported on request.

A checkpoint holding a user's layer names its type; the code comes from the user's own
module, which the command line imports when told to: ``fcnn --plugin mypkg.layers ...``
(repeatable) or ``FCNN_PLUGINS=mypkg.layers,other.mod``. A plugin is a module name, found
on the import path with the current folder first (as ``python`` finds a script's
neighbours), or the path of a ``.py`` file. ``fcnn serve`` and ``fcnn train --procs`` pass
them on to their workers through ``FCNN_PLUGINS`` (files as absolute paths).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["ENV", "PluginError", "load_plugins", "plugin_names"]

ENV = "FCNN_PLUGINS"


class PluginError(ImportError):
    """A plugin module that cannot be imported."""


def plugin_names(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """Module names from ``FCNN_PLUGINS`` (comma-separated) and ``extra``, first seen first."""
    env = os.environ if env is None else env
    names = [n.strip() for n in env.get(ENV, "").split(",")] + [n.strip() for n in extra]
    return list(dict.fromkeys(n for n in names if n))


def _is_file(name: str) -> bool:
    return name.endswith(".py") or os.sep in name or "/" in name


def _import(name: str) -> str:
    """Import one plugin (a module name or a .py file); returns how workers find it again."""
    if _is_file(name):
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"plugin file {name} does not exist")
        module_name = path.stem  # as if imported from its own folder
        known = sys.modules.get(module_name)
        if known is not None and Path(getattr(known, "__file__", "") or "").resolve() != path:
            raise PluginError(
                f"plugin file {path}: a module named {module_name!r} is imported already, from "
                "elsewhere; rename the file"
            )
        if known is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None  # a .py file always has both
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
        return str(path)
    cwd = os.getcwd()
    if cwd not in sys.path:  # a console script's path starts at its bin folder, not here
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a module written since this process started
    importlib.import_module(name)
    return name


def load_plugins(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """Import every plugin; returns them as workers find them (files as absolute paths).
    :class:`PluginError` names the plugin that failed and why."""
    found = []
    for name in plugin_names(extra, env):
        try:
            found.append(_import(name))
        except PluginError:
            raise
        except ImportError as exc:
            raise PluginError(f"plugin module {name!r} cannot be imported: {exc}") from None
        except Exception as exc:  # the user's module failed while registering
            raise PluginError(f"plugin module {name!r} failed on import: {exc!r}") from None
    return found
