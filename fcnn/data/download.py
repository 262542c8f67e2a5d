"""Downloads that are safe to interrupt: checksum-verified, retried, written atomically.

A download goes to a temporary file in the destination folder, is optionally
transformed (for example gunzipped), its SHA-256 is checked, and only then is it
renamed into place. A failed, partial or corrupted transfer therefore never
leaves a file that later passes for complete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from fcnn.data.errors import DataError

__all__ = ["download", "sha256_of"]

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of the file at ``path`` as hex, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, out, timeout: float, progress: Progress | None) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total_n = int(total) if total and total.isdigit() else None
        done = 0
        while block := response.read(1 << 16):
            out.write(block)
            done += len(block)
            if progress:
                progress(done, total_n)
        if total_n is not None and done != total_n:
            raise OSError(f"transfer interrupted after {done} of {total_n} bytes")


def download(
    urls: Sequence[str],
    dest: Path,
    *,
    sha256: str | None,
    transform: Callable[[Path, Path], None] | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that yields a file with the right checksum.

    ``transform(raw, out)`` may turn the downloaded bytes into the final file (the
    checksum is of the final file). Each URL is tried ``retries`` times with
    growing pauses. Raises :class:`DataError` listing every failure.
    """
    if not str(urls[0] if urls else "").startswith(("http://", "https://")):
        raise DataError(f"no http(s) URL to download {dest.name} from: {list(urls)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        for attempt in range(1, retries + 1):
            raw_fd, raw_name = tempfile.mkstemp(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
            )
            raw = Path(raw_name)
            final = raw.with_suffix(".final")
            try:
                with os.fdopen(raw_fd, "wb") as out:
                    _fetch(url, out, timeout, progress)
                if transform is None:
                    raw.replace(final)
                else:
                    transform(raw, final)
                got = sha256_of(final)
                if sha256 is not None and got != sha256:
                    raise OSError(f"checksum mismatch: expected sha256 {sha256}, got {got}")
                final.replace(dest)  # atomic on one file system
                return dest
            except (OSError, urllib.error.URLError, EOFError, ValueError) as exc:
                failures.append(f"{url} (attempt {attempt}): {exc}")
                if attempt < retries:
                    time.sleep(backoff * attempt)
            finally:
                raw.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
    raise DataError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))
