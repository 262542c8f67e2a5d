"""The notebooks run, and the documentation site builds with ``mkdocs build --strict``.

The notebooks read MNIST and HAM10000, so both tests need ``FCNN_DATA``. They are executed
once per session (in a Jupyter kernel, as a reader runs them) and the site is built from
those executed copies, so CI runs each notebook once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from notebooks.execute import NotebookFailed, execute, sources

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="session")
def executed(tmp_path_factory, real_data_root) -> tuple[Path, dict[str, str]]:
    """All notebooks executed into one folder; the failures by notebook name. The kernels
    read the session's environment (a session fixture is set up before any test's
    monkeypatching): the data, and the user's decode cache, as a reader's run would."""
    folder = tmp_path_factory.mktemp("notebooks")
    failures = {}
    for source in sources():
        try:
            execute(source, folder)
        except NotebookFailed as error:
            failures[source.stem] = str(error)
    return folder, failures


def test_there_are_the_four_notebooks():
    names = [p.stem for p in sources()]
    assert names == [
        "01_sanity_checks",
        "02_training_report",
        "03_dermascan_model_report",
        "04_write_your_own_layer",
    ]


@pytest.mark.parametrize("name", [p.stem for p in sources()])
def test_notebook_runs(executed, name):
    folder, failures = executed
    assert name not in failures, failures.get(name)
    assert (folder / f"{name}.ipynb").is_file()


def test_a_failing_cell_fails_the_notebook(tmp_path):
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %%\nx = 1\n\n# %%\nassert x == 2, 'the cell failed'\n")
    with pytest.raises(NotebookFailed, match="the cell failed"):
        execute(broken, tmp_path / "out")


def test_the_site_builds_strictly(executed, tmp_path):
    folder, failures = executed
    if failures:
        pytest.fail(f"the site renders the notebooks, and these failed: {sorted(failures)}")
    env = {**os.environ, "FCNN_NOTEBOOKS_DIR": str(folder), "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    pages = ["index.html", "reference/layers/index.html", "reports/benchmarks/index.html"]
    pages += [f"notebooks/{p.stem}/index.html" for p in sources()]
    for page in pages:
        assert (site / page).is_file(), page
    # the notebooks are rendered with their outputs: the figures are embedded images
    assert "<img" in (site / "notebooks/02_training_report/index.html").read_text()
