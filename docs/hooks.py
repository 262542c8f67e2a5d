"""MkDocs hooks: the executed notebooks and the project's reports become pages of the site.

- **Notebooks**: they are Jupytext scripts in ``notebooks/``, outside ``docs/``. Before the
  mkdocs-jupyter plugin looks at the files (hence the priority), each is added as
  ``notebooks/<name>.ipynb``: taken from ``$FCNN_NOTEBOOKS_DIR`` when that folder holds it
  executed already (the tests execute them once for both checks), else executed here into a
  temporary folder. A notebook that fails to execute fails the build.
- **Reports**: every ``reports/*.md`` (what the benchmarks and evaluations wrote) becomes the
  page ``reports/<name>/``, and ``<!-- reports: benchmarks -->`` or ``<!-- reports: results
  -->`` in a page becomes the list of those pages, so the site shows the files as committed.
- **Cross references**: docstrings are written with Sphinx roles (``:func:`fcnn.tree.map```);
  in the rendered API reference each role becomes a link to the object's entry when it is
  documented, and plain code otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
# reports of what a model answers (the rest measure speed and memory)
RESULT_REPORTS = ("dermascan-", "site-scores-", "uncertain", "validation-ceiling")
ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):<code>(~?)([\w.]+)(\(\))?</code>")
MARKER = re.compile(r"<!-- reports: (benchmarks|results) -->")
# the build's temporary folders (notebook pages, notebooks it executed itself): removed after
_TEMPORARY: list[Path] = []


def _title(report: Path) -> str:
    first = report.read_text(encoding="utf-8").splitlines()[0]
    return first[2:].strip() if first.startswith("# ") else report.stem.replace("-", " ")


def _group(report: Path) -> str:
    return "results" if report.stem.startswith(RESULT_REPORTS) else "benchmarks"


def _reports() -> list[Path]:
    return sorted(REPORTS.glob("*.md"))


@event_priority(100)  # before mkdocs-jupyter's on_files turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    sys.path.insert(0, str(ROOT))
    from notebooks.execute import execute, sources

    ready = os.environ.get("FCNN_NOTEBOOKS_DIR")
    folder = Path(ready) if ready else Path(tempfile.mkdtemp(prefix="fcnn-docs-notebooks-"))
    if not ready:
        _TEMPORARY.append(folder)
    # mkdocs-jupyter wraps plain files only, so each page is a real file at
    # <staging>/notebooks/<name>.ipynb: a copy of the executed notebook
    staging = Path(tempfile.mkdtemp(prefix="fcnn-docs-pages-"))
    _TEMPORARY.append(staging)
    (staging / "notebooks").mkdir()
    for source in sources():
        executed = folder / f"{source.stem}.ipynb"
        if not executed.is_file():
            execute(source, folder)
        shutil.copyfile(executed, staging / "notebooks" / executed.name)
        files.append(
            File(
                f"notebooks/{executed.name}",
                src_dir=str(staging),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    for report in _reports():
        text = report.read_text(encoding="utf-8")
        if not text.startswith("# "):
            text = f"# {_title(report)}\n\n{text}"
        note = f"\n\n---\n\n*`reports/{report.name}` as committed.*\n"
        files.append(File.generated(config, f"reports/{report.stem}.md", content=text + note))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    def listing(match: re.Match) -> str:
        depth = page.file.src_uri.count("/")
        prefix = "../" * depth
        return "\n".join(
            f"- [{_title(r)}]({prefix}reports/{r.stem}.md) (`reports/{r.name}`)"
            for r in _reports()
            if _group(r) == match.group(1)
        )

    return MARKER.sub(listing, markdown)


def on_page_content(html: str, page, config, files) -> str:
    def reference(match: re.Match) -> str:
        short, name, call = match.groups()
        shown = (name.rsplit(".", 1)[-1] if short else name) + (call or "")
        # mkdocs-autorefs resolves the tag to the entry's URL, or leaves the text when the
        # name is not documented (a relative name, a private helper)
        return f'<autoref identifier="{name}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(reference, html)


def on_post_build(config) -> None:
    while _TEMPORARY:
        shutil.rmtree(_TEMPORARY.pop(), ignore_errors=True)
