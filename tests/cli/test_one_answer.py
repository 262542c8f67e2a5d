"""One photo, one answer: ``fcnn predict``, DermaScan's ``POST /api/predict`` and the ONNX
``decision`` output agree on a dozen real lesions of every class, for the shipped model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from cli.main import app
from fcnn.inference import load
from webapp.app import create_app
from webapp.settings import DEFAULT_MODEL, Settings

ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

pytestmark = pytest.mark.data


def _lesions(root, per_class=2, total=12):
    """Image files of the first lesions of each class in the metadata, ``total`` of them."""
    folder = root / "ham10000"
    with open(folder / "HAM10000_metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    picked: dict[str, list[str]] = {}
    for row in rows:
        chosen = picked.setdefault(row["dx"], [])
        if len(chosen) < per_class:
            chosen.append(row["image_id"])
    ids = [image_id for chosen in picked.values() for image_id in chosen][:total]
    images = folder / "HAM10000_images"
    return [images / f"{image_id}.jpg" for image_id in ids]


def test_cli_site_and_onnx_give_the_same_answer(real_data_root, tmp_path):
    from fcnn.onnx_export import export_onnx

    paths = _lesions(real_data_root)
    assert len(paths) == 12
    result = CliRunner().invoke(
        app, ["predict", "--weights", str(DEFAULT_MODEL), "--json", *map(str, paths)]
    )
    assert result.exit_code == 0, result.output
    cli_answers = json.loads(result.output)
    with TestClient(create_app(Settings(model_path=DEFAULT_MODEL))) as client:
        site = [
            client.post("/api/predict", files={"file": (p.name, p.read_bytes(), "image/jpeg")})
            for p in paths
        ]
    model = load(DEFAULT_MODEL)
    export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    pixels = model.load_images(paths).astype(np.float32)
    onnx_probs, onnx_decision = session.run(None, {"pixels": pixels})
    for i, (mine, response) in enumerate(zip(cli_answers, site, strict=True)):
        theirs = response.json()
        assert response.status_code == 200, theirs
        for key in ("top", "risk_level", "uncertain", "uncertain_reason"):
            if key == "top":  # same class; probabilities of float32 passes agree to ~1e-7
                assert mine["top"]["code"] == theirs["top"]["code"], paths[i]
                assert mine["top"]["probability"] == pytest.approx(
                    theirs["top"]["probability"], abs=1e-4
                )
            else:
                assert mine[key] == theirs[key], (paths[i], key)
        assert [p["code"] for p in mine["predictions"]] == [
            p["code"] for p in theirs["predictions"][:3]
        ]
        assert model.class_names[int(onnx_decision[i])] == mine["top"]["code"], paths[i]
        np.testing.assert_allclose(
            onnx_probs[i][model.class_names.index(mine["top"]["code"])],
            mine["top"]["probability"],
            atol=1e-4,  # onnxruntime's kernels against BLAS, float32
        )
    assert {a["top"]["code"] for a in cli_answers} >= {"mel", "nv", "bcc"}  # not one answer
