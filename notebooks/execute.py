"""Run the notebooks: each Jupytext ``.py`` file here becomes an executed ``.ipynb``.

Not a notebook itself. The notebooks are stored as Jupytext percent-format scripts (diffable,
reviewed like code) and never committed with outputs; this module executes them in a
Jupyter kernel (nbclient), with the notebooks folder as the working directory, and writes
the executed notebooks elsewhere. The documentation build (``docs/hooks.py``) renders those,
and the tests (``tests/test_notebooks.py``) fail when a cell raises.

    python -m notebooks.execute OUT_DIR [NAME ...]    # all notebooks, or the named ones
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

__all__ = ["FOLDER", "NotebookFailed", "execute", "main", "sources"]

FOLDER = Path(__file__).resolve().parent
# a cell that runs longer has hung: each notebook takes well under a minute on two cores
CELL_TIMEOUT_S = 600


class NotebookFailed(RuntimeError):
    """A cell raised: the message names the notebook and carries the cell's traceback."""


def sources() -> list[Path]:
    """The notebooks, in reading order (their names start with a number)."""
    return sorted(p for p in FOLDER.glob("[0-9][0-9]_*.py"))


def execute(source: Path, out_dir: Path) -> tuple[Path, float]:
    """Execute ``source`` and write ``out_dir/<name>.ipynb`` with its outputs; return the
    path and the seconds it took. Raises :class:`NotebookFailed` when a cell raises (the
    partly executed notebook is still written, for reading)."""
    notebook = jupytext.read(source)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.ipynb"
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        raise NotebookFailed(f"{source.name}: a cell failed\n{error}") from None
    finally:
        partial = target.with_suffix(".ipynb.part")
        nbformat.write(notebook, partial)
        partial.replace(target)  # atomic: a reader never sees half a notebook
    return target, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where the executed .ipynb files go")
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all), e.g. 01")
    args = parser.parse_args(argv)
    names = args.names
    chosen = [p for p in sources() if not names or any(p.stem.startswith(n) for n in names)]
    failed = 0
    for source in chosen:
        try:
            target, seconds = execute(source, args.out_dir)
            print(f"{source.name}: {seconds:.1f} s -> {target}")
        except NotebookFailed as error:
            failed += 1
            print(error)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
