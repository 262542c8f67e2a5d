import json
import shutil

import numpy as np
import pytest

from benchmarks import validation_ceiling

NAMES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def _probs(labels, signal, seed):
    """Softmax of a one-hot ``signal`` on the true class plus unit noise: rankings that get
    better with ``signal``."""
    rng = np.random.default_rng(seed)
    logits = signal * np.eye(7)[labels] + rng.standard_normal((len(labels), 7))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_ceiling_keeps_the_floors_and_rises_with_the_ranking():
    labels = np.random.default_rng(0).choice(7, 1500, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    poor = validation_ceiling.ceiling(_probs(labels, 1.5, 1), labels, NAMES)
    assert not poor["floors_met"]  # no rule reaches accuracy 0.70: reported, not hidden
    weak = validation_ceiling.ceiling(_probs(labels, 2.5, 1), labels, NAMES)
    strong = validation_ceiling.ceiling(_probs(labels, 3.5, 1), labels, NAMES)
    for c in (weak, strong):
        assert c["floors_met"]
        assert c["melanoma_recall"] >= 0.65 and c["accuracy"] >= 0.70
    assert strong["macro_auc"] > weak["macro_auc"] > poor["macro_auc"]
    assert strong["balanced_accuracy"] > weak["balanced_accuracy"]
    perfect = validation_ceiling.ceiling(np.eye(7)[labels], labels, NAMES)
    assert perfect["macro_auc"] == pytest.approx(1.0) and perfect["balanced_accuracy"] == 1.0


def test_main_reports_each_model_and_their_ensemble(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FCNN_CACHE", str(tmp_path / "cache"))
    data = tiny_model.parent.parent / "data"
    twin = tmp_path / "twin.npz"
    shutil.copy(tiny_model, twin)
    args = ["--model", str(tiny_model), "--model", str(twin)]
    assert validation_ceiling.main([*args, "--data-dir", str(data), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "validation-ceiling.json").read_text())
    assert [r["model"] for r in rows] == [str(tiny_model), str(twin), "ensemble (mean)"]
    # the mean of a model and its copy is the model: the same figures
    for key in ("macro_auc", "balanced_accuracy", "accuracy"):
        assert rows[2][key] == pytest.approx(rows[0][key]) == pytest.approx(rows[1][key])
    md = (tmp_path / "validation-ceiling.md").read_text()
    assert rows[0]["sha256"][:12] in md and "| ensemble (mean) |" in md
