"""Every public name of fcnn (what each module's ``__all__`` exports) states its contract in a
docstring, which the API reference renders."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fcnn


def _public_modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(fcnn.__path__, "fcnn.")]
    return ["fcnn", *(name for name in found if not name.endswith("__main__"))]


def _own_docstring(obj: object) -> str | None:
    # a class's own, not one inherited from object or a base class
    return obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__


def test_every_exported_function_class_and_module_has_a_docstring():
    missing, checked = [], 0
    for name in _public_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isroutine(obj) or inspect.isclass(obj) or inspect.ismodule(obj):
                checked += 1
                doc = _own_docstring(obj)
                if not (doc and doc.strip()):
                    missing.append(f"{name}.{attr}")
    assert checked > 300  # the walk reached the package
    assert missing == []
