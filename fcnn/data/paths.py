"""Where data and caches live.

Data root (a folder holding ``mnist/``, ``cifar10/``, ``ham10000/``), first found wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``), which must exist: a mistyped folder
   is an error, never a download;
2. the ``FCNN_DATA`` environment variable;
3. ``fallback``: for a command on a trained model, the data root its run used (stored in
   the model), when that folder still exists;
4. ``<cache folder>/data``, where downloads go.

Cache folder (decoded images, downloads): ``FCNN_CACHE``, else
``$XDG_CACHE_HOME/fcnn``, else ``~/.cache/fcnn``. Nothing is ever written next to
the data, which may be read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

from fcnn.data.errors import DataError

__all__ = ["cache_dir", "data_root"]


def cache_dir() -> Path:
    """The user cache folder for fcnn (not created here)."""
    explicit = os.environ.get("FCNN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fcnn"


def data_root(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    fallback: str | os.PathLike[str] | None = None,
) -> Path:
    """The data root: ``data_dir`` (DataError when it is not a folder), else ``$FCNN_DATA``,
    else ``fallback`` when it is a folder, else ``<cache>/data``."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(
                f"the data folder {root} does not exist; give the folder that holds mnist/, "
                "cifar10/, ham10000/ (or leave --data-dir out to use FCNN_DATA, or to "
                "download into the cache folder)"
            )
        return root
    env = os.environ.get("FCNN_DATA")
    if env:
        return Path(env).expanduser()
    if fallback is not None and Path(fallback).is_dir():
        return Path(fallback)
    return cache_dir() / "data"
