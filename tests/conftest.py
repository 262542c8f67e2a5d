"""Hypothesis profiles (choose with HYPOTHESIS_PROFILE=dev|ci|intense) and shared fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=15, deadline=None)
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "intense", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


import pytest  # noqa: E402

from fcnn.data.paths import data_root  # noqa: E402

REAL_DATA = data_root() if os.environ.get("FCNN_DATA") else None


@pytest.fixture(autouse=True)
def no_busy_cores(monkeypatch):
    """``fcnn train --procs auto`` counts the cores that other programs keep busy; in tests
    the count is fixed at 0, so a loaded CI machine never changes a run's process count."""
    monkeypatch.setenv("FCNN_BUSY_CORES", "0")


@pytest.fixture(scope="session")
def real_data_root():
    """The real data root (FCNN_DATA); skips with a reason when it is not set up, except in
    CI (``CI`` set), where the data is part of the run and its absence fails the test."""
    if REAL_DATA is None or not REAL_DATA.is_dir():
        message = "real data not available: set FCNN_DATA to a folder holding mnist/, cifar10/"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI runs the data tests: is ../shared/data missing?)")
        pytest.skip(message)
    return REAL_DATA


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, so nothing is written to the user's cache."""
    if os.environ.get("FCNN_TEST_SHARED_CACHE"):
        return
    monkeypatch.setenv("FCNN_CACHE", str(tmp_path_factory.mktemp("fcnn-cache")))


@pytest.fixture
def fake_mnist_root(tmp_path, monkeypatch):
    """A data root with a small, learnable MNIST look-alike (class c: a bright block at a
    position set by c, plus noise); the loader's checksums are patched to these files."""
    import hashlib

    import numpy as np

    from fcnn.data import mnist
    from fcnn.data.idx import write_idx

    rng = np.random.default_rng(0)

    def make(n):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
            images[i, r : r + 10, col : col + 4] = 250
        return images.astype(np.uint8), labels.astype(np.uint8)

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    shas = {}
    for prefix, n in (("train", 600), ("t10k", 200)):
        images, labels = make(n)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            content = write_idx(arr)
            (folder / name).write_bytes(content)
            shas[name] = hashlib.sha256(content).hexdigest()
    files = {k: (name, shas[name]) for k, (name, _) in mnist.FILES.items()}
    monkeypatch.setattr(mnist, "FILES", files)
    return tmp_path / "data"


@pytest.fixture
def tiny_config(tmp_path):
    """A quick LeNet config whose outputs all go under tmp_path."""
    from fcnn.training.config import load_config

    def make(*overrides: str):
        base = [
            f"runs_dir={tmp_path / 'runs'}",
            f"reports_dir={tmp_path / 'reports'}",
            "train.epochs=2",
            "train.batch_size=64",
            "train.lr=0.05",
            "callbacks=[]",
        ]
        return load_config("configs/mnist.yaml", base + list(overrides))

    return make


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny DermaScan model trained in seconds on a fake HAM10000 folder (its data: the
    model file's ``../../data``), shared by the web app's and the benchmarks' tests."""
    from helpers import write_ham

    from fcnn.training.config import load_config
    from fcnn.training.run import train

    root = tmp_path_factory.mktemp("derma")
    write_ham(root / "data", per_class=12)
    best = root / "model" / "dermascan.npz"
    overrides = [
        "data.image_size=[16, 16]",
        "model_options={widths: [8, 8], image_size: 16}",
        "train.epochs=8",
        "train.batch_size=16",
        "train.lr=0.01",
        "ood_quantile=0.99",
        f"runs_dir={root / 'runs'}",
        f"reports_dir={root / 'reports'}",
        f"callbacks=[{{checkpoint: {{filepath: '{best}', monitor: val_balanced_acc}}}}]",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCNN_CACHE", str(root / "cache"))
        train(
            load_config("configs/dermascan.yaml", overrides),
            data_dir=root / "data",
            echo=lambda *_: None,
        )
    (best.parent / "MODEL_CARD.md").write_text("# Tiny test model\n\n- trained on **fake** data\n")
    return best
