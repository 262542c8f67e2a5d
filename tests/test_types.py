"""The package type-checks: pyright in basic mode over fcnn/, cli/ and webapp/ (the settings in
pyproject.toml's [tool.pyright]) reports no error, as optax and equinox check theirs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("pyright") is None, reason="pyright is not installed (.[dev])")
def test_pyright_finds_no_type_error():
    done = subprocess.run(
        ["pyright", "--outputjson"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    report = json.loads(done.stdout)
    errors = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message'].splitlines()[0]}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["filesAnalyzed"] > 100
    assert errors == []
