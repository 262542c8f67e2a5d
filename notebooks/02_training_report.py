# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training report
#
# Everything one training run tells: its learning curves, the confusion matrix and the
# accuracy of each class on the test split, the worst mistakes, saliency maps computed with
# the library's own backward pass, and the config and timing the run recorded.
#
# Give it a run folder (`runs/<date>-<time>-<config>/`, as `fcnn train` names it) in the
# environment variable `FCNN_REPORT_RUN`, or set `RUN` below. Left empty, the notebook
# starts a 2-epoch run of `configs/mnist.yaml` (LeNet-5 on MNIST, LeCun et al. 1998) in a
# temporary folder, about 15 s on two cores, reports on that and removes the folder.

# %% tags=["parameters"]
import os

RUN = os.environ.get("FCNN_REPORT_RUN", "")  # a run folder; empty: train a short one

# %%
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import fcnn
from fcnn.evaluation import evaluate_model
from fcnn.explain import input_gradient
from fcnn.training.data import prepare_data
from fcnn.training.run_config import model_config

started = time.perf_counter()


def repository_root() -> Path:
    """The checkout this notebook lives in (where configs/ is), from the working folder."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "configs" / "mnist.yaml").is_file():
            return folder
    raise FileNotFoundError("run this notebook from inside the fcnn repository")


if RUN:
    run = Path(RUN)
else:
    # the run's outputs (its folder, the checkpoint callback's copy) go to a temporary
    # folder, never into the repository
    workdir = Path(tempfile.mkdtemp(prefix="fcnn-report-"))
    config = repository_root() / "configs" / "mnist.yaml"
    command = [sys.executable, "-m", "fcnn", "train", str(config),
               "--set", "train.epochs=2", "--set", f"runs_dir={workdir / 'runs'}"]
    print("$", " ".join(command[1:]))
    subprocess.run(command, cwd=workdir, check=True, capture_output=True, text=True)
    run = next((workdir / "runs").glob("*-mnist"))
print("run folder:", run)

# %% [markdown]
# ## What ran
#
# `config.yaml` in the run folder is the resolved config (every default filled in, the
# `--set` overrides applied); `summary.json` holds the final figures and the timing.

# %%
summary = json.loads((run / "summary.json").read_text())
print((run / "config.yaml").read_text())
print(f"test accuracy {summary['test_acc']:.4f} (balanced {summary['test_balanced_acc']:.4f}), "
      f"best validation accuracy {summary['best_val_acc']:.4f}")
print(f"{summary['epochs_run']} epochs in {summary['wall_time_s']:.1f} s on "
      f"{summary['processes']} process(es)")

# %% [markdown]
# ## Learning curves
#
# `metrics.csv` has one row per epoch: training loss and accuracy (over the epoch, with
# augmentation and in training mode), validation loss and accuracy (eval mode, after the
# epoch), the learning rate and the epoch's time.

# %%
history = np.genfromtxt(run / "metrics.csv", delimiter=",", names=True)
history = np.atleast_1d(history)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
axes[0].plot(history["epoch"], history["train_loss"], "o-", label="train")
axes[0].plot(history["epoch"], history["val_loss"], "o-", label="validation")
axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
axes[1].plot(history["epoch"], history["train_acc"], "o-", label="train")
axes[1].plot(history["epoch"], history["val_acc"], "o-", label="validation")
axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
axes[2].bar(history["epoch"], history["epoch_time_s"])
axes[2].set(xlabel="epoch", ylabel="seconds", title="epoch time")
for ax in axes[:2]:
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
print("images per second (training): "
      + ", ".join(f"{v:.0f}" for v in history["images_per_s"]))

# %% [markdown]
# ## Test split: confusion matrix and per-class accuracy
#
# `best.npz` is the run's kept model; its manifest stores the config, so the test split,
# the normalization and the data root are the run's own (`fcnn evaluate` does the same).

# %%
model = fcnn.load(run / "best.npz")
config = model_config(model.manifest.config, None, [])
data = prepare_data(config, None, stored_root=model.manifest.data_root)
report = evaluate_model(model, data.test)
names = report["class_names"]
confusion = np.array(report["confusion_matrix"])
probs, labels = report["_probs"], report["_labels"]
preds = model.decision.decide(probs)
assert np.isclose(report["accuracy"], summary["test_acc"], atol=1e-9)  # the run's own figure

fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
shown = confusion / confusion.sum(axis=1, keepdims=True)
axes[0].imshow(shown, cmap="Blues")
for (i, j), count in np.ndenumerate(confusion):
    if count:
        axes[0].text(j, i, count, ha="center", va="center", fontsize=7,
                     color="white" if shown[i, j] > 0.5 else "black")
axes[0].set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
            yticklabels=names, xlabel="predicted", ylabel="true",
            title=f"confusion matrix, {report['n']} test images")
recall = np.array([row["recall"] for row in report["per_class"]])
axes[1].barh(names, recall)
axes[1].set(xlim=(min(recall.min() - 0.02, 0.9), 1.0), xlabel="recall (accuracy within class)",
            title=f"per-class accuracy (overall {report['accuracy']:.4f})")
axes[1].invert_yaxis()
fig.tight_layout()
plt.show()
for row in report["per_class"]:
    print(f"{row['class']:>6}: precision {row['precision']:.4f}  recall {row['recall']:.4f}"
          f"  F1 {row['f1']:.4f}  support {row['support']}")

# %% [markdown]
# ## The worst mistakes
#
# The misclassified test images the model was most sure of: the largest probability given to
# a wrong class. Some are ambiguous handwriting, some mislabeled digits, some plain errors.

# %%
wrong = np.flatnonzero(preds != labels)
confidence = probs[wrong, preds[wrong]]
worst = wrong[np.argsort(-confidence)[:16]]
fig, axes = plt.subplots(2, 8, figsize=(13, 3.8))
for ax, i in zip(axes.ravel(), worst, strict=False):
    ax.imshow(data.test.images[i, 0], cmap="gray_r")
    ax.set_title(f"true {names[labels[i]]}, said {names[preds[i]]}\np = {probs[i, preds[i]]:.2f}",
                 fontsize=8)
    ax.axis("off")
for ax in axes.ravel()[len(worst):]:
    ax.axis("off")
fig.suptitle(f"{len(wrong)} of {len(labels)} test images misclassified; the 16 most confident")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Saliency maps
#
# Vanilla saliency (Simonyan et al. 2014): the gradient of the answered class's logit with
# respect to the input pixels, `fcnn.explain.input_gradient`, computed by the network's own
# `backward` in eval mode. Bright pixels are those whose change would move the class score
# most. For the first correct example of each digit, and for the worst mistakes above
# (with respect to the class the model wrongly gave).

# %%
def saliency(index: int, class_index: int) -> np.ndarray:
    x = model.preprocess(data.test.images[index : index + 1])  # (1, 1, 28, 28), normalized
    grad = input_gradient(model.net, model.params, model.state, x, class_index)
    return np.abs(grad[0]).max(axis=0)  # (28, 28): the largest over channels


examples = [int(np.flatnonzero((labels == k) & (preds == k))[0]) for k in range(len(names))]
examples += [int(i) for i in worst[:5]]
fig, axes = plt.subplots(2, len(examples), figsize=(1.3 * len(examples), 3))
for column, i in enumerate(examples):
    axes[0, column].imshow(data.test.images[i, 0], cmap="gray_r")
    axes[0, column].set_title(("said " if column >= len(names) else "") + names[preds[i]],
                              fontsize=8, color="red" if preds[i] != labels[i] else "black")
    axes[1, column].imshow(saliency(i, int(preds[i])), cmap="hot")
    for row in (0, 1):
        axes[row, column].axis("off")
fig.suptitle("input (top) and |d logit / d pixel| (bottom); red: mistakes")
fig.tight_layout()
plt.show()

# %% [markdown]
# The saliency check: the map is a gradient, so along any direction `d` its inner product
# with `d` must equal the finite-difference derivative of the logit along `d`, in float64.
# One caveat shows on real digits: MNIST's background is one constant value, so a
# convolution gives exactly equal outputs across it, and after ReLU many max-pooling windows
# hold exact ties. There the network is not differentiable: the backward pass sends the
# gradient to the first maximum (PyTorch's rule, a valid subgradient), while a finite
# difference sees a one-sided mix. A noise of 1e-3 on the input breaks the ties, and then
# backward and finite differences agree to about 1e-8.

# %%
rng = np.random.default_rng(0)
params64 = fcnn.tree.astype(model.params, np.float64)
state64 = fcnn.tree.astype(model.state, np.float64)
print(f"{'image':>6} {'class':>6} {'backward':>12} {'finite diff.':>13} {'|diff|':>9}")
for i in examples[:5]:
    x64 = model.preprocess(data.test.images[i : i + 1]).astype(np.float64)
    x64 = x64 + 1e-3 * rng.standard_normal(x64.shape)  # break exact ties (see above)
    direction = rng.standard_normal(x64.shape)
    k = int(preds[i])
    grad = input_gradient(model.net, params64, state64, x64, k)

    def logit(x, k=k):
        return model.net.apply(params64, x, state=state64, train=False)[0][0, k]

    h = 1e-7  # small against the gaps the noise opens between competing maxima
    numeric = (logit(x64 + h * direction) - logit(x64 - h * direction)) / (2 * h)
    analytic = float(np.sum(grad * direction))
    print(f"{i:6d} {names[k]:>6} {analytic:12.6f} {numeric:13.6f} {abs(analytic - numeric):9.1e}")
    # float64 at h = 1e-7: agreement to ~1e-7 of the size; a wrong backward is off by O(1)
    assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(numeric)), (analytic, numeric)

# %%
if not RUN:
    shutil.rmtree(workdir)  # the 2-epoch run this notebook started for itself
print(f"notebook ran in {time.perf_counter() - started:.1f} s")
