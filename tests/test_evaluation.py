"""fcnn.evaluation: the report's figures agree with each other and with the model."""

from pathlib import Path

import numpy as np
import pytest

from fcnn.data.dataset import Dataset
from fcnn.evaluation import age_band, evaluate_model, report_markdown
from fcnn.inference import load

SHIPPED = Path(__file__).resolve().parents[1] / "webapp" / "model" / "dermascan.npz"


@pytest.fixture(scope="module")
def report():
    model = load(SHIPPED)
    rng = np.random.default_rng(0)
    n = 60
    images = rng.integers(0, 256, (n, *model.input_shape), dtype=np.uint8)
    labels = np.arange(n) % len(model.class_names)
    meta = {"sex": np.array(["female", "male"] * (n // 2)), "age": rng.uniform(10, 90, n)}
    data = Dataset(images, labels, model.class_names, meta=meta)
    return model, data, evaluate_model(model, data, batch_size=16)


def test_the_confusion_matrix_holds_every_image_as_the_model_answers_it(report):
    model, data, r = report
    confusion = np.array(r["confusion_matrix"])
    assert confusion.sum() == r["n"] == len(data)
    assert confusion.sum(axis=1).tolist() == [p["support"] for p in r["per_class"]]
    answered = model.classify(data.images)
    assert confusion.trace() == int((answered == data.labels).sum())
    assert r["accuracy"] == pytest.approx(confusion.trace() / len(data))
    recalls = [p["recall"] for p in r["per_class"]]
    assert r["balanced_accuracy"] == pytest.approx(np.mean(recalls))


def test_calibration_and_subgroups_are_reported(report):
    _, _, r = report
    assert 0.0 <= r["ece"] <= 1.0 and 0.0 <= r["ece_uncalibrated"] <= 1.0
    assert r["calibration"]["method"] == "vector" and r["nll"] > 0
    assert set(r["subgroups"]["sex"]) == {"female", "male"}
    assert sum(g["n"] for g in r["subgroups"]["sex"].values()) == r["n"]
    markdown = report_markdown({k: v for k, v in r.items() if not k.startswith("_")})
    assert "| balanced accuracy (mean recall) |" in markdown


def test_age_bands_and_mismatched_classes():
    assert age_band(float("nan")) == "unknown" and age_band(45.0) != age_band(75.0)
    model = load(SHIPPED)
    other = Dataset(np.zeros((1, *model.input_shape), np.uint8), np.zeros(1, np.int64), ("a",))
    with pytest.raises(ValueError, match="differ"):
        evaluate_model(model, other)
