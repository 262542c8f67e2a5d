"""A tiny DermaScan model trained in seconds on a fake HAM10000 folder, shared by the tests."""

from __future__ import annotations

import pytest
from helpers import write_ham

from fcnn.training.config import load_config
from fcnn.training.run import train


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
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
