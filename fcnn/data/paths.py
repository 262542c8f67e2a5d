"""Where data and caches live.

Data root (a folder holding ``mnist/``, ``cifar10/``, ``ham10000/``), first found wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the ``FCNN_DATA`` environment variable;
3. ``<cache folder>/data``, where downloads go.

Cache folder (decoded images, downloads): ``FCNN_CACHE``, else
``$XDG_CACHE_HOME/fcnn``, else ``~/.cache/fcnn``. Nothing is ever written next to
the data, which may be read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_root"]


def cache_dir() -> Path:
    """The user cache folder for fcnn (not created here)."""
    explicit = os.environ.get("FCNN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fcnn"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir``, else ``$FCNN_DATA``, else ``<cache>/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("FCNN_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"
