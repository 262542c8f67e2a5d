"""The PyTorch side of the end-to-end job comparison: ``fcnn train CONFIG`` done in PyTorch.

    python -m benchmarks.torch_job configs/mnist.yaml --set train.epochs=2
    python -m benchmarks.torch_job --compare configs/mnist.yaml --set train.epochs=2 --rounds 2

What it does, as ``fcnn train`` does for the same config (so the two commands are timed
whole, process start to exit):
- data: the same splits, from the same loader (:func:`fcnn.training.data.prepare_data`:
  MNIST from ``FCNN_DATA``, validation split, normalization statistics), so loading costs
  the same on both sides;
- model: the config's preset built in PyTorch from the same layer spec
  (:func:`benchmarks.torch_side.module_from_spec`), PyTorch's default initialization;
- training: SGD (momentum, Nesterov, weight decay as L2 on every parameter, as fcnn's
  ``sgd``) or Adam/AdamW, the config's step/exponential/cosine/constant schedule per step,
  the config's random-shift augmentation (``crop_padding``), the same batch size and epochs,
  shuffled every epoch;
- after every epoch: validation loss and accuracy; at the end: test accuracy.
Not done here that fcnn's job does: the run folder, checkpoints, CSV logs, figures, the
early-stopping callback's bookkeeping and calibration fitting (none for the MNIST config),
which are fcnn's few seconds of writing files. PyTorch runs with its default threads
(one per core).

``--compare`` runs ``fcnn train`` (default ``--procs auto``) and this script in interleaved
rounds and prints each wall time and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from fcnn.data.paths import data_root
from fcnn.training.config import load_config
from fcnn.training.data import prepare_data

__all__ = ["main", "run_job"]


def _lr_at(cfg, step: int, steps_per_epoch: int) -> float:
    """The config's learning rate at optimizer step ``step`` (fcnn.training.run's schedule)."""
    from fcnn.training.setup import make_schedule

    return float(make_schedule(cfg, steps_per_epoch)(step))


def _shift(x, pad: int, generator):
    """Random shifts of up to ``pad`` pixels per image (zero padding, then a crop)."""
    import torch
    import torch.nn.functional as F

    if pad == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (N, 1, 1, W)
    index = torch.arange(n)[:, None, None, None]
    return padded[index, torch.arange(x.shape[1])[None, :, None, None], rows, cols]


def run_job(config_path: str, overrides: list[str], data_dir: str | None) -> dict[str, float]:
    import torch

    from benchmarks.torch_side import module_from_spec
    from fcnn import models

    t0 = time.perf_counter()
    cfg = load_config(config_path, overrides)
    data = prepare_data(cfg, data_root(data_dir))
    preset = models.get(cfg.model, num_classes=data.train.num_classes, **cfg.model_options)
    torch.manual_seed(cfg.seed)
    model, _ = module_from_spec(preset.network.spec, preset.input_shape)
    tc = cfg.train
    if tc.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov,
            weight_decay=tc.weight_decay,
        )  # fmt: skip
    elif tc.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tc.betas,
                               weight_decay=tc.weight_decay)  # fmt: skip
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tc.betas,
                                weight_decay=tc.weight_decay)  # fmt: skip
    mean = torch.tensor(data.normalization.mean, dtype=torch.float32)[None, :, None, None]
    inv_std = 1.0 / torch.tensor(data.normalization.std, dtype=torch.float32)[None, :, None, None]

    def prepared(images: np.ndarray):
        return (torch.from_numpy(images).float() - mean) * inv_std

    train_x, train_y = data.train.images, torch.from_numpy(data.train.labels.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
    generator = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = -(-len(train_y) // tc.batch_size)
    pad = cfg.data.augment.crop_padding

    def evaluate(images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        model.eval()
        losses, correct = [], 0
        with torch.no_grad():
            for i in range(0, len(labels), tc.eval_batch_size):
                logits = model(prepared(images[i : i + tc.eval_batch_size]))
                y = torch.from_numpy(labels[i : i + tc.eval_batch_size].astype(np.int64))
                losses.append(float(loss_fn(logits, y)) * len(y))
                correct += int((logits.argmax(1) == y).sum())
        model.train()
        return sum(losses) / len(labels), correct / len(labels)

    step, history = 0, []
    model.train()
    for epoch in range(tc.epochs):
        order = torch.randperm(len(train_y), generator=generator)
        for start in range(0, len(train_y), tc.batch_size):
            idx = order[start : start + tc.batch_size]
            for group in opt.param_groups:
                group["lr"] = _lr_at(tc, step, steps_per_epoch)
            x = _shift(prepared(train_x[idx.numpy()]), pad, generator)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), train_y[idx])
            loss.backward()
            opt.step()
            step += 1
        val_loss, val_acc = evaluate(data.val.images, data.val.labels)
        history.append(val_acc)
        print(f"epoch {epoch + 1}/{tc.epochs}  val_loss {val_loss:.4f}  val_acc {val_acc:.4f}")
    _, test_acc = evaluate(data.test.images, data.test.labels)
    seconds = time.perf_counter() - t0
    print(f"test accuracy {test_acc:.4f}; {seconds:.1f} s in the job (PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")  # fmt: skip
    return {"test_acc": test_acc, "seconds": seconds}


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def compare(config: str, overrides: list[str], rounds: int) -> None:
    """``fcnn train`` as a user types it against this script, interleaved, whole commands."""
    sets = [a for s in overrides for a in ("--set", s)]
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            fcnn_cmd = [sys.executable, "-m", "cli.main", "train", config, *sets,
                        "--set", f"runs_dir={tmp}/runs", "--no-progress"]  # fmt: skip
            torch_cmd = [sys.executable, "-m", "benchmarks.torch_job", config, *sets]
            fcnn_s, torch_s = _timed(fcnn_cmd), _timed(torch_cmd)
            ratios.append(fcnn_s / torch_s)
            print(f"round {r + 1}: fcnn train {fcnn_s:.1f} s, PyTorch job {torch_s:.1f} s, "
                  f"ratio {fcnn_s / torch_s:.2f}", flush=True)  # fmt: skip
    print(f"median ratio {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-"
          f"{max(ratios):.2f})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch_job", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--compare", action="store_true", help="time fcnn train against this")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.config, args.overrides, args.rounds)
    else:
        run_job(args.config, args.overrides, args.data_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
