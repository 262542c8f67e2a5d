"""CIFAR-10 by the airbench94 recipe (Keller Jordan, arXiv 2404.00498), in PyTorch on the CPU.

The reference for ``configs/cifar10.yaml`` (issue #36): the same network, initialization,
parameter groups, schedule, augmentation and test-time augmentation, trained on the same
image folders (read through fcnn's loader and decode cache, so both see the same pixels),
with PyTorch at its default threads. What it runs:

- the network: a 2×2 convolution to 24 channels whose filters are the whitening of the
  training patches (eigenvectors of their second-moment matrix over sqrt(eigenvalue + eps),
  and their negatives), frozen, its bias trained for the first 3 epochs; GELU; three blocks
  of conv 3×3 → max-pool 2 → BatchNorm → GELU → conv 3×3 → BatchNorm → GELU at widths
  64 / 256 / 256; max-pool 3; a linear layer without bias; logits × 1/9. Convolutions have
  no bias and start as PyTorch's default uniform with a dirac identity on their first
  C_in filters; BatchNorm has no learned scale (eps 1e-12, momentum 0.6);
- Nesterov SGD, momentum 0.85, the summed (not mean) label-smoothed cross-entropy (0.2),
  BatchNorm biases at 64× the learning rate, weight decay scaled to be decoupled from it;
  a triangular schedule (0.2 → 1 at 20 % of the steps → 0); Lookahead every 5 steps with
  the decay 0.95⁵ · (step / steps)³; batch 1,024, 9.9 epochs;
- augmentation: every image flipped at random once, then all of them flipped on alternate
  epochs; random translation by up to 2 pixels (reflect padding);
- the test: the logits of the image, its mirror and their ±1-pixel translations averaged.

Airbench's GPU code runs in half precision and channels-last; this runs in float32. GELU is
the tanh approximation, the one fcnn implements.

    python -m benchmarks.torch_cifar [--seed S] [--epochs 9.9] [--eval-every-epoch]
        [--out reports/torch-cifar10.json]

``--eval-every-epoch`` also evaluates the test split with TTA after each epoch, outside the
timed part, for a time-to-accuracy table; timed runs leave it off.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from fcnn.data import Request, data_root, load_dataset
from fcnn.io import atomic_write_text

HYP = {
    "epochs": 9.9,
    "batch_size": 1024,
    "lr": 11.5,  # per 1,024 examples, for the summed loss
    "momentum": 0.85,
    "weight_decay": 0.0153,
    "bias_scaler": 64.0,
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "translate": 2,
    "widths": (64, 256, 256),
    "batchnorm_momentum": 0.6,
    "scaling_factor": 1 / 9,
    "whiten_kernel": 2,
    "whiten_eps": 5e-4,
    "whiten_samples": 5000,
    "lookahead_every": 5,
}


def build_net():
    """The airbench94 network (see the module docstring)."""
    import torch
    from torch import nn

    class BatchNorm(nn.BatchNorm2d):
        def __init__(self, channels, momentum):
            super().__init__(channels, eps=1e-12, momentum=momentum)
            self.weight.requires_grad = False  # no learned scale: stays 1

    def conv(c_in, c_out):
        return nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)

    class ConvGroup(nn.Module):
        def __init__(self, c_in, c_out, momentum):
            super().__init__()
            self.conv1, self.pool, self.norm1 = conv(c_in, c_out), nn.MaxPool2d(2), None
            self.norm1 = BatchNorm(c_out, momentum)
            self.conv2, self.norm2 = conv(c_out, c_out), BatchNorm(c_out, momentum)
            self.activ = nn.GELU(approximate="tanh")

        def forward(self, x):
            x = self.activ(self.norm1(self.pool(self.conv1(x))))
            return self.activ(self.norm2(self.conv2(x)))

    class Mul(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return x * self.scale

    k = HYP["whiten_kernel"]
    whiten_width = 2 * 3 * k * k
    w1, w2, w3 = HYP["widths"]
    m = HYP["batchnorm_momentum"]
    net = nn.Sequential(
        nn.Conv2d(3, whiten_width, k, padding=0, bias=True),
        nn.GELU(approximate="tanh"),
        ConvGroup(whiten_width, w1, m),
        ConvGroup(w1, w2, m),
        ConvGroup(w2, w3, m),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(w3, 10, bias=False),
        Mul(HYP["scaling_factor"]),
    )
    net[0].weight.requires_grad = False
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d) and module.weight.requires_grad:
                w = module.weight
                torch.nn.init.dirac_(w[: w.size(1)])
    return net


def whiten_init(layer, images) -> None:
    """Set ``layer``'s filters to the whitening of ``images``' patches (normalized NCHW)."""
    import torch

    c, (h, w) = images.shape[1], layer.weight.shape[2:]
    patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w)
    flat = patches.reshape(len(patches), -1).double()
    covariance = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
    scaled = eigenvectors.reshape(-1, c, h, w) / torch.sqrt(
        eigenvalues.view(-1, 1, 1, 1) + HYP["whiten_eps"]
    )
    with torch.no_grad():
        layer.weight.copy_(torch.cat((scaled, -scaled)).float())


def infer_tta(net, images, batch_size: int = 1000):
    """Logits with test-time augmentation: the mean over the image and its mirror, then the
    mean of that and the same for the ±1-pixel translations (reflect padding)."""
    import torch
    import torch.nn.functional as F

    out = []
    net.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]

            def mirror(v):
                return 0.5 * (net(v) + net(v.flip(-1)))

            padded = F.pad(x, (1, 1, 1, 1), "reflect")
            shifted = [padded[:, :, 0:32, 0:32], padded[:, :, 2:34, 2:34]]
            translated = torch.stack([mirror(v) for v in shifted]).mean(0)
            out.append(0.5 * mirror(x) + 0.5 * translated)
    net.train()
    return torch.cat(out)


def run(seed: int, epochs: float, data_dir: str | None, eval_every_epoch: bool) -> dict:
    import torch
    import torch.nn.functional as F

    loaded = load_dataset("cifar10", Request(root=data_root(data_dir)))
    raw = torch.from_numpy(loaded.train.images).float()
    mean = raw.mean(dim=(0, 2, 3), keepdim=True)  # the training images' own, as fcnn's
    std = raw.std(dim=(0, 2, 3), keepdim=True)
    train_images = (raw - mean) / std
    train_labels = torch.from_numpy(loaded.train.labels.astype(np.int64))
    test_images = (torch.from_numpy(loaded.test.images).float() - mean) / std
    test_labels = torch.from_numpy(loaded.test.labels.astype(np.int64))

    torch.manual_seed(seed)
    net = build_net()
    batch_size, momentum = HYP["batch_size"], HYP["momentum"]
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = HYP["lr"] / kilostep_scale
    wd = HYP["weight_decay"] * batch_size / kilostep_scale
    lr_biases = lr * HYP["bias_scaler"]
    named = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
    norm_biases = [p for k, p in named if "norm" in k]
    others = [p for k, p in named if "norm" not in k]
    optimizer = torch.optim.SGD(
        [
            {"params": norm_biases, "lr": lr_biases, "weight_decay": wd / lr_biases},
            {"params": others, "lr": lr, "weight_decay": wd / lr},
        ],
        momentum=momentum,
        nesterov=True,
    )
    steps_per_epoch = len(train_labels) // batch_size  # the last partial batch is dropped
    total_steps = math.ceil(steps_per_epoch * epochs)
    lr_schedule = np.interp(
        np.arange(1 + total_steps), [0, int(0.2 * total_steps), total_steps], [0.2, 1, 0]
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_schedule[i])
    alpha = 0.95**5 * (np.arange(total_steps + 1) / total_steps) ** 3
    ema = {k: v.clone() for k, v in net.state_dict().items()}

    def lookahead(decay: float) -> None:
        with torch.no_grad():
            for ema_v, net_v in zip(ema.values(), net.state_dict().values(), strict=True):
                if net_v.dtype.is_floating_point:
                    ema_v.lerp_(net_v, 1 - decay)
                    net_v.copy_(ema_v)

    generator = torch.Generator().manual_seed(seed)
    pad = HYP["translate"]
    started = time.perf_counter()
    whiten_init(net[0], train_images[: HYP["whiten_samples"]])
    flip = torch.rand(len(train_images), generator=generator) < 0.5
    base = torch.where(flip[:, None, None, None], train_images.flip(-1), train_images)
    padded = F.pad(base, (pad,) * 4, "reflect")
    step, history, eval_seconds = 0, [], 0.0
    for epoch in range(math.ceil(epochs)):
        net[0].bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        shifts = torch.randint(0, 2 * pad + 1, (len(base), 2), generator=generator)
        images = torch.empty_like(base)
        for dy in range(2 * pad + 1):  # a random crop per image, grouped by its offset
            for dx in range(2 * pad + 1):
                sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                images[sel] = padded[sel, :, dy : dy + 32, dx : dx + 32]
        if epoch % 2 == 1:
            images = images.flip(-1)  # every image mirrored on alternate epochs
        order = torch.randperm(len(images), generator=generator)
        epoch_start = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            outputs = net(images[idx])
            loss = F.cross_entropy(
                outputs, train_labels[idx], label_smoothing=HYP["label_smoothing"],
                reduction="sum",
            )  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % HYP["lookahead_every"] == 0:
                lookahead(float(alpha[step]))
            if step >= total_steps:
                lookahead(1.0)
                break
        row = {"epoch": epoch + 1, "epoch_s": time.perf_counter() - epoch_start}
        if eval_every_epoch:
            t = time.perf_counter()
            logits = infer_tta(net, test_images)
            row["test_acc_tta"] = float((logits.argmax(1) == test_labels).float().mean())
            eval_seconds += time.perf_counter() - t
        row["train_s"] = time.perf_counter() - started - eval_seconds
        history.append(row)
        print(json.dumps(row), flush=True)
        if step >= total_steps:
            break
    train_seconds = time.perf_counter() - started - eval_seconds
    t = time.perf_counter()
    logits = infer_tta(net, test_images)
    tta_seconds = time.perf_counter() - t
    plain = infer_plain(net, test_images)
    return {
        "seed": seed,
        "epochs": epochs,
        "steps": step,
        "train_seconds": train_seconds,
        "tta_seconds": tta_seconds,
        "test_acc_tta": float((logits.argmax(1) == test_labels).float().mean()),
        "test_acc": float((plain.argmax(1) == test_labels).float().mean()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "history": history,
    }


def infer_plain(net, images, batch_size: int = 1000):
    """Logits without augmentation, in eval mode."""
    import torch

    net.eval()
    with torch.no_grad():
        starts = range(0, len(images), batch_size)
        out = torch.cat([net(images[i : i + batch_size]) for i in starts])
    net.train()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=HYP["epochs"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--eval-every-epoch", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(args.seed, args.epochs, args.data_dir, args.eval_every_epoch)
    print(
        f"PyTorch {result['torch']} ({result['threads']} threads), seed {args.seed}: "
        f"{result['steps']} steps in {result['train_seconds']:.1f} s; test accuracy with TTA "
        f"{result['test_acc_tta']:.4f}, without {result['test_acc']:.4f}"
    )
    if args.out is not None:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
