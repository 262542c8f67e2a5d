import json

import numpy as np
import pytest

from benchmarks import site_scores

NAMES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def _answers(n=400, seed=0):
    """Answers of a fair guesser that knows the true class 70 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    right = rng.random(n) < 0.7
    top = np.where(right, labels, rng.integers(0, 7, n))
    probs = np.full((n, 7), 0.3 / 6)
    probs[np.arange(n), top] = 0.7
    high = np.isin(top, [0, 1, 4])
    uncertain = rng.random(n) < 0.05
    return site_scores.Answers(labels, probs, top, high, uncertain, NAMES)


def test_figures_are_what_they_say_with_intervals_around_them():
    a = _answers()
    report = site_scores.score(a, rounds=300)
    f = report["figures"]
    malignant = np.isin(a.labels, [0, 1, 4])
    assert f["malignant_flagged_high"]["value"] == pytest.approx(a.high[malignant].mean())
    assert f["benign_flagged_high"]["value"] == pytest.approx(a.high[~malignant].mean())
    assert f["accuracy"]["value"] == pytest.approx(np.mean(a.top == a.labels))
    mel = a.labels == 4
    assert f["melanoma_recall"]["value"] == pytest.approx(np.mean(a.top[mel] == 4))
    assert f["uncertain"]["value"] == pytest.approx(a.uncertain.mean())
    # every answer says 0.7 and is right about 0.7 + 0.3/7 of the time: well calibrated
    assert f["ece"]["value"] < 0.05
    for name, entry in f.items():
        low, high = entry["interval_95"]
        assert low <= entry["value"] <= high, name
        assert high - low > 0.0, name  # 400 lesions do not pin a figure down
    assert report["support"]["mel"] == int(mel.sum()) and report["n"] == 400


def test_targets_are_judged_on_the_point_estimate():
    a = _answers()
    report = site_scores.score(a, rounds=50)
    f = report["figures"]
    # the guesser flags only answers of a malignant class high: about 0.77 of the cancers
    assert f["malignant_flagged_high"]["target"] == ">= 0.9"
    assert f["malignant_flagged_high"]["met"] is False and report["every_target_met"] is False
    assert f["uncertain"]["met"] is True  # 5 % against at most 10 %
    assert "met" not in f["melanoma_flagged_high"]  # reported, no target
    perfect = site_scores.Answers(
        a.labels, np.eye(7)[a.labels], a.labels, np.isin(a.labels, [0, 1, 4]),
        np.zeros(len(a.labels), bool), NAMES,
    )  # fmt: skip
    assert site_scores.score(perfect, rounds=50)["every_target_met"] is True


def test_main_scores_the_models_own_split_through_the_site(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FCNN_CACHE", str(tmp_path / "cache"))
    data = tiny_model.parent.parent / "data"
    args = ["--model", str(tiny_model), "--data-dir", str(data), "--out", str(tmp_path)]
    assert site_scores.main([*args, "--split", "test", "--rounds", "50"]) == 0
    report = json.loads((tmp_path / "site-scores-test.json").read_text())
    md = (tmp_path / "site-scores-test.md").read_text()
    assert report["split"] == "test" and report["n"] == sum(report["support"].values()) > 0
    assert len(report["sha256"]) == 64 and report["sha256"] in md
    assert report["figures"]["accuracy"]["value"] > 0.5  # colours encode the classes
    assert "| cancers (akiec + bcc + mel) answered risk: high |" in md


def test_plain_words_give_the_screening_figures_per_hundred():
    report = site_scores.score(_answers(), rounds=50)
    f = report["figures"]["malignant_flagged_high"]
    words = site_scores.plain_words(report)
    low, high = (round(100 * v) for v in f["interval_95"])
    assert f"marked about {round(100 * f['value'])} as high risk" in words
    assert f"between {low} and {high}" in words and "400 photos" in words
