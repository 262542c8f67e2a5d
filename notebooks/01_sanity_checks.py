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
# # Sanity checks
#
# The checks a hand-written network library has to pass before any accuracy figure means
# something, run on fcnn itself:
#
# 1. **im2col / col2im** on a tiny image, drawn, and col2im checked as the exact adjoint of
#    im2col;
# 2. **every layer's gradient** against central finite differences in float64, as a table;
# 3. **the loss at initialization** is about ln(10) for ten balanced classes, and a small
#    network **overfits one batch** to 100 %;
# 4. **the learning-rate range test** (Smith 2017), whose curve says which learning rates
#    train at all.
#
# The test suite checks the same properties with hypothesis on random shapes
# (`tests/test_im2col.py`, `tests/test_gradcheck.py`, `tests/layers/`); this notebook shows
# them. It runs in well under a minute on two cores, with MNIST from `FCNN_DATA`.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from fcnn import check_grad, optim
from fcnn import layers as L
from fcnn import random as fr
from fcnn.im2col import col2im, geometry, im2col
from fcnn.losses import cross_entropy, mse

started = time.perf_counter()

# %% [markdown]
# ## 1. im2col and col2im
#
# A convolution becomes one matrix product once every window of the (padded) input is
# copied into a column: `im2col` turns `x` (N, C, H, W) into a matrix of
# (C·KH·KW, N·OH·OW), and the convolution is `W (C_out, C·KH·KW) @ cols`. Here a 1×1×5×5
# image whose pixels count 0…24, a 3×3 window, stride 1, padding 1: 25 windows (columns)
# of 9 values (rows). Zeros in a column are the padding.

# %%
x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)  # (N, C, H, W)
geo = geometry(x.shape, kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
cols = im2col(x, geo)  # (C·KH·KW, N·OH·OW) = (9, 25); im2col pads
print("x", x.shape, "-> cols", cols.shape)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
axes[0].imshow(x[0, 0], cmap="viridis")
axes[0].set_title("x: 5×5 image")
axes[1].imshow(cols, cmap="viridis", aspect="auto")
axes[1].set(title="im2col(x): one column per window", xlabel="window (output pixel)",
            ylabel="offset in the 3×3 window")
# col2im adds every column back where it was read: applied to a matrix of ones, it counts
# how many windows read each pixel (4 at the corners, 9 inside)
counts = col2im(np.ones_like(cols), x.shape, geo)
axes[2].imshow(counts[0, 0], cmap="magma")
for (i, j), v in np.ndenumerate(counts[0, 0]):
    axes[2].text(j, i, int(v), ha="center", va="center", color="white" if v < 7 else "black")
axes[2].set_title("col2im(ones): windows per pixel")
fig.tight_layout()
plt.show()

# %% [markdown]
# col2im is not the inverse of im2col but its **adjoint**: for every `x` and every matrix
# `c` of the columns' shape, ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩. That is exactly what the
# backward pass needs (the gradient of a linear map is its transpose), and it is checked
# here in float64 on random values and several geometries, strides and dilations included.

# %%
rng = np.random.default_rng(0)
rows = []
for shape, kernel, stride, padding, dilation in [
    ((2, 3, 7, 7), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 8, 6), (2, 3), (2, 1), (0, 2), (1, 1)),
    ((2, 1, 9, 9), (3, 3), (2, 2), (1, 1), (2, 2)),
]:
    g = geometry(shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    x_rand = rng.standard_normal(shape)
    c_rand = rng.standard_normal(im2col(x_rand, g).shape)
    lhs = float(np.sum(im2col(x_rand, g) * c_rand))
    rhs = float(np.sum(x_rand * col2im(c_rand, shape, g)))
    rows.append((shape, kernel, stride, padding, dilation, lhs, rhs, abs(lhs - rhs)))
    # float64 sums of a few hundred products: agreement to ~1e-12 relative
    assert math.isclose(lhs, rhs, rel_tol=1e-10, abs_tol=1e-10), (lhs, rhs)

print(f"{'input':>14} {'kernel':>7} {'stride':>7} {'pad':>7} {'dil':>7}"
      f" {'<im2col(x), c>':>15} {'<x, col2im(c)>':>15} {'|diff|':>9}")
for shape, kernel, stride, padding, dilation, lhs, rhs, diff in rows:
    print(f"{shape!s:>14} {kernel!s:>7} {stride!s:>7} {padding!s:>7} {dilation!s:>7}"
          f" {lhs:15.8f} {rhs:15.8f} {diff:9.1e}")

# %% [markdown]
# ## 2. Every layer's gradient against finite differences
#
# `fcnn.check_grad` casts params and input to float64 and compares `backward` with central
# differences `(f(θ + h) − f(θ − h)) / 2h`, h = 1e-6, for the input and every parameter
# leaf, as a vector-Jacobian product with a random upstream gradient. In float32 the
# difference quotient's own error (about 1e-3) would hide real bugs; in float64 it is about
# 1e-9, so a wrong backward pass stands out by orders of magnitude. The table lists the
# largest absolute error per layer; `check_grad` raises on any error above
# atol = rtol = 1e-4.

# %%
key = fr.key(0)
cases = [
    ("Conv2D 3×3, pad 1", L.Conv2D(3, 3, padding=1), (2, 4, 4)),
    ("Conv2D 3×3, stride 2", L.Conv2D(2, 3, stride=2), (2, 5, 5)),
    ("Conv2D 2×2, dilation 2", L.Conv2D(2, 2, dilation=2), (1, 5, 5)),
    ("Dense", L.Dense(4), (6,)),
    ("MaxPool2D 2", L.MaxPool2D(2), (2, 4, 4)),
    ("MaxPool2D 3, stride 2, pad 1", L.MaxPool2D(3, stride=2, padding=1), (1, 5, 5)),
    ("AvgPool2D 2", L.AvgPool2D(2), (2, 4, 4)),
    ("GlobalAvgPool2D", L.GlobalAvgPool2D(), (3, 3, 3)),
    ("BatchNorm2D (training)", L.BatchNorm2D(), (3, 3, 3)),
    ("BatchNorm1D (training)", L.BatchNorm1D(), (5,)),
    ("Dropout 0.3 (fixed key)", L.Dropout(0.3), (2, 3, 3)),
    ("ReLU", L.ReLU(), (2, 3, 3)),
    ("LeakyReLU 0.1", L.LeakyReLU(0.1), (2, 3, 3)),
    ("Sigmoid", L.Sigmoid(), (2, 3, 3)),
    ("Tanh", L.Tanh(), (2, 3, 3)),
    ("Softmax", L.Softmax(), (5,)),
    ("Flatten", L.Flatten(), (2, 3, 3)),
    ("residual(Conv, BN, ReLU)", L.residual(
        L.serial(L.Conv2D(2, 3, padding=1), L.BatchNorm2D(), L.ReLU())), (2, 4, 4)),
]
table = []
for name, layer, shape in cases:
    init_key, x_key, drop_key = fr.split(fr.fold_in(key, len(table)), 3)
    _, params, state = layer.init(init_key, shape)
    # max pooling and ReLU are not differentiable at ties or at 0: continuous random inputs
    # almost never hit them, and h = 1e-6 is far smaller than the gaps between values
    x_check = fr.generator(x_key).standard_normal((3, *shape))

    def forward(p, v, layer=layer, state=state, drop_key=drop_key):
        y, cache, _ = layer.apply(p, v, state=state, train=True, key=drop_key)
        return y, cache

    errors = check_grad(forward, layer.backward, params, x_check)
    table.append((name, len(errors) - 1, max(errors.values())))

# the losses have the same kind of backward: d loss / d prediction
logits = rng.standard_normal((4, 5))
labels = np.array([0, 3, 1, 4])
for name, loss_forward, loss_backward in [
    ("cross_entropy", lambda _, z: cross_entropy.forward(z, labels), lambda _, c, d:
     (cross_entropy.backward(c, float(d)), ())),
    ("cross_entropy, smoothing 0.1", lambda _, z: cross_entropy.forward(
        z, labels, label_smoothing=0.1), lambda _, c, d: (cross_entropy.backward(c, float(d)), ())),
    ("mse", lambda _, z: mse.forward(z, np.ones_like(z)), lambda _, c, d:
     (mse.backward(c, float(d)), ())),
]:
    errors = check_grad(loss_forward, loss_backward, (), logits)
    table.append((name, 0, max(errors.values())))

print(f"{'layer':34} {'param leaves':>12} {'largest |error|':>16}")
for name, leaves, err in table:
    print(f"{name:34} {leaves:12d} {err:16.2e}")
worst = max(err for _, _, err in table)
assert worst < 1e-6, worst  # float64 differences: ~1e-9; a wrong formula: ~1e-1
print(f"\nworst error over {len(table)} checks: {worst:.1e}")

# %% [markdown]
# ## 3. The loss at initialization, and overfitting one batch
#
# With ten balanced classes a network that knows nothing yet should give nearly uniform
# probabilities, so its cross-entropy should be close to −ln(1/10) = ln 10 ≈ 2.303. A much
# larger loss means large initial logits (confidently wrong guesses the first steps must
# undo, or a scale bug); a loss far below it means the labels leak into the input.
#
# He initialization (He et al. 2015) keeps the variance of ReLU activations from layer to
# layer: right for hidden layers, but an output layer initialized that way gives logits of
# about unit variance or more. The presets initialize their last Dense layer with Glorot's
# rule (Glorot & Bengio 2010), which is smaller; an all-zero head gives exactly uniform
# probabilities. The losses below are measured the way the first training step sees the
# network: in training mode, where BatchNorm (Ioffe & Szegedy 2015) uses the batch's
# statistics. (In eval mode a fresh BatchNorm's running statistics are 0 and 1, so it does
# not normalize anything yet and the loss says little.) LeNet-5 (LeCun et al. 1998) is
# `fcnn.models.get("lenet_mnist")`, the default model of `fcnn train configs/mnist.yaml`.

# %%
from fcnn import models
from fcnn.data import data_root, mnist

train_set, _ = mnist.load(data_root())
batch_x = (train_set.images[:64].astype(np.float32) / 255.0 - 0.1307) / 0.3081  # (64, 1, 28, 28)
batch_y = train_set.labels[:64]


def lenet_bn(head_init):
    """LeNet-5 with BatchNorm after each convolution, and the given head initializer."""
    return L.serial(
        L.Conv2D(6, 5, padding=2), L.BatchNorm2D(), L.ReLU(), L.MaxPool2D(2),
        L.Conv2D(16, 5), L.BatchNorm2D(), L.ReLU(), L.MaxPool2D(2),
        L.Flatten(), L.Dense(120), L.ReLU(), L.Dense(84), L.ReLU(),
        L.Dense(10, w_init=head_init),
    )


def loss_at_init(net, seed):
    _, params, state = net.init(fr.key(seed), (1, 28, 28))
    logits, _, _ = net.apply(params, batch_x, state=state, train=True)
    return float(cross_entropy.forward(logits, batch_y)[0])


init_losses = {
    "LeNet-5 preset (Glorot head)": models.get("lenet_mnist").network,
    "LeNet-5 + BatchNorm, He head": lenet_bn("he_normal"),
    "LeNet-5 + BatchNorm, Glorot head": lenet_bn("glorot_uniform"),
    "LeNet-5 + BatchNorm, zero head": lenet_bn("zeros"),
}
print(f"ln(10) = {math.log(10):.4f}")
for name, candidate in init_losses.items():
    values = [loss_at_init(candidate, seed) for seed in range(5)]
    init_losses[name] = values
    print(f"{name:34} loss at init, 5 seeds: " + ", ".join(f"{v:.3f}" for v in values))
# a zero head gives uniform probabilities whatever the body: ln 10 up to float32 rounding
assert all(abs(v - math.log(10)) < 1e-5 for v in init_losses["LeNet-5 + BatchNorm, zero head"])
# with BatchNorm, Glorot's smaller head keeps the logits near unit scale: within 1 of ln 10
assert all(abs(v - math.log(10)) < 1.0 for v in init_losses["LeNet-5 + BatchNorm, Glorot head"])

# %% [markdown]
# What the table says: the zero head is ln 10 exactly, and with BatchNorm a Glorot head
# starts within a few tenths of it while a He head starts higher. The LeNet-5 preset has no
# BatchNorm, and its first losses lie well above ln 10 and vary much from seed to seed:
# without normalization the activations' scale drifts through the body (each max pooling
# keeps the largest of four values), so the head's logits start large. It still reaches
# 99 % (README, Results), but its first steps spend their time shrinking the logits. This
# is the check that tells a user whose own network starts at a loss of 20 that the
# initialization, not the optimizer, needs attention.

# %% [markdown]
# Then the oldest sanity check of all: a network that can learn should drive the loss of
# one fixed batch to zero and classify it perfectly. If it cannot, the bug is in the
# gradients, the update or the data pipeline, not in the hyperparameters. Here LeNet-5
# with BatchNorm and a Glorot head, on those 64 real MNIST digits.

# %%
net = lenet_bn("glorot_uniform")
_, params, state = net.init(fr.key(1), (1, 28, 28))
opt = optim.adam(1e-3)
opt_state = opt.init(params)
losses, accuracies = [], []
for _ in range(60):
    logits, cache, state = net.apply(params, batch_x, state=state, train=True)
    loss, loss_cache = cross_entropy.forward(logits, batch_y)
    _, grads = net.backward(params, cache, cross_entropy.backward(loss_cache), need_dx=False)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)
    losses.append(float(loss))
    accuracies.append(float((logits.argmax(axis=1) == batch_y).mean()))

eval_logits, _, _ = net.apply(params, batch_x, state=state, train=False)
final_acc = float((eval_logits.argmax(axis=1) == batch_y).mean())
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(losses, label="loss")
ax.set(xlabel="step", ylabel="cross-entropy (log scale)", title="one batch of 64 digits")
ax2 = ax.twinx()
ax2.plot(accuracies, color="C1", label="accuracy")
ax2.set_ylabel("batch accuracy")
fig.tight_layout()
plt.show()
print(f"after 60 Adam steps: loss {losses[-1]:.4f}, accuracy (eval mode) {final_acc:.3f}")
assert final_acc == 1.0, final_acc

# %% [markdown]
# ## 4. The learning-rate range test
#
# Smith's range test ("Cyclical Learning Rates for Training Neural Networks", 2017): train
# from a fresh initialization while the learning rate grows exponentially from tiny to huge,
# one step each, and plot the (smoothed) loss against the rate. The loss stays flat while the
# rate is too small to matter, falls where it trains, and blows up where it is too large; a
# good peak rate for a schedule lies somewhat below the bottom of the curve. Here for plain
# SGD with Nesterov momentum on LeNet, with batches of 128 MNIST digits. The schedule is
# `fcnn.optim.schedules.exponential` with a factor above one: schedules are functions of
# the step, so a growing one needs no special code.

# %%
from fcnn.optim import schedules

lr_start, lr_end, steps = 1e-4, 3.0, 80
grow = schedules.exponential(lr_start, gamma=(lr_end / lr_start) ** (1 / (steps - 1)))
opt = optim.sgd(grow, momentum=0.9, nesterov=True)
_, params, state = net.init(fr.key(2), (1, 28, 28))
opt_state = opt.init(params)
order = fr.generator(fr.key(3)).permutation(len(train_set))
rates, smoothed, avg = [], [], 0.0
for step in range(steps):
    idx = order[step * 128 : (step + 1) * 128]
    xb = (train_set.images[idx].astype(np.float32) / 255.0 - 0.1307) / 0.3081
    logits, cache, state = net.apply(params, xb, state=state, train=True)
    loss, loss_cache = cross_entropy.forward(logits, train_set.labels[idx])
    _, grads = net.backward(params, cache, cross_entropy.backward(loss_cache), need_dx=False)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)
    avg = 0.9 * avg + 0.1 * float(loss)
    rates.append(grow(step))
    smoothed.append(avg / (1 - 0.9 ** (step + 1)))  # bias-corrected moving average
    if not np.isfinite(float(loss)) or smoothed[-1] > 4 * min(smoothed):
        break  # diverged: the rest of the curve says nothing more

best = rates[int(np.argmin(smoothed))]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.semilogx(rates, smoothed)
ax.axvline(best, color="k", ls="--", lw=1)
ax.set(xlabel="learning rate (log scale)", ylabel="smoothed training loss",
       title=f"range test: lowest loss at lr ≈ {best:.2g}")
fig.tight_layout()
plt.show()
print(f"lowest smoothed loss {min(smoothed):.3f} at lr {best:.3g}; "
      f"the curve starts at {smoothed[0]:.3f}")
assert min(smoothed) < smoothed[0] - 0.5  # the network trains somewhere in the range

# %%
print(f"notebook ran in {time.perf_counter() - started:.1f} s")
