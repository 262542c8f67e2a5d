"""The README is the entrance: short, its quick start first, its examples working as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from fcnn.training.config import parse_config

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", TEXT, re.S)


def test_the_readme_is_an_entrance_of_at_most_200_lines():
    assert len(TEXT.splitlines()) <= 200


def test_the_quick_start_is_the_first_code_block_and_names_both_commands():
    language, first = BLOCKS[0]
    assert language == "bash"
    commands = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "pip install -e . && FCNN_DATA=../shared/data fcnn train configs/mnist.yaml",
        'pip install -e ".[dev]" && pytest',
    ]


def test_the_fifteen_line_example_trains():
    (code,) = [body for language, body in BLOCKS if language == "python"]
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    exec(compile(code, "README example", "exec"), namespace)
    # 100 steps on one batch of 32 random images: the loss falls from ~2.3 to near 0
    assert float(namespace["loss"]) < 0.1
    assert np.isfinite(float(namespace["loss"]))


def test_the_config_example_is_a_valid_config():
    (config,) = [body for language, body in BLOCKS if language == "yaml"]
    parsed = parse_config(yaml.safe_load(config), name="flowers")
    assert parsed.dataset == "imagefolder"
    assert parsed.model["layers"][-1] == {"type": "Dense", "out_features": 5}


def test_every_relative_link_of_the_readme_exists():
    links = re.findall(r"\]\(([^)#]+)\)", TEXT)
    relative = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(relative) > 10
    missing = [link for link in relative if not (README.parent / link).exists()]
    assert missing == []
