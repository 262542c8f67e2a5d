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
# # Write your own layer
#
# fcnn has no autograd: a layer is its forward pass *and* its backward pass, both written by
# hand. This lesson adds one that fcnn lacks, the **parametric ReLU** of He et al. 2015
# ("Delving Deep into Rectifiers", the paper of He initialization), in five steps:
# derive the backward pass, write the three functions, check them against finite
# differences, register the layer so networks, configs and checkpoints can name it, then
# train, save and load a network that uses it.

# %% [markdown]
# ## 1. Derive the backward pass
#
# PReLU keeps positive values and scales negative ones by a learned slope, one per channel
# `c` (axis 1, for NCHW maps and for (N, F) features alike):
#
# $$y = \begin{cases} x & x > 0 \\ a_c\, x & x \le 0 \end{cases}$$
#
# A layer's backward pass receives `dy = ∂L/∂y` (same shape as `y`) and returns the
# gradients with respect to its input and its parameters, by the chain rule through the
# formula above:
#
# $$\frac{\partial L}{\partial x} = \begin{cases} dy & x > 0 \\ a_c\, dy & x \le 0 \end{cases}
# \qquad
# \frac{\partial L}{\partial a_c} = \sum_{n,\,h,\,w\,:\; x \le 0} dy \cdot x$$
#
# The slope's gradient sums over every position where it was used: the batch and, for
# maps, both spatial axes. So the forward pass must keep `x` (or its sign) for backward:
# that is the **cache**.

# %% [markdown]
# ## 2. The three functions
#
# The contract (`fcnn.layers.base`): a frozen `attrs` class for the parameters, whose leaves
# are arrays; `init(key, input_shape) -> (output_shape, params)` from the shape of one
# example (no batch axis); `forward(params, x) -> (y, cache)`;
# `backward(params, cache, dy) -> (dx, grads)`, with `grads` the same class as the params.
# Nothing is mutated: every function returns new arrays.

# %%
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import attrs
import numpy as np

import fcnn
from fcnn import check_grad, optim
from fcnn import layers as L
from fcnn import random as fr
from fcnn.gradcheck import GradientCheckError
from fcnn.layers.base import stateless
from fcnn.losses import cross_entropy

started = time.perf_counter()


@attrs.frozen(eq=False)  # eq=False: attrs' == on arrays would compare element-wise
class PReLUParams:
    a: np.ndarray  # (C,) one negative slope per channel


class PReLUCache(NamedTuple):
    x: np.ndarray  # the input: its sign picks the branch, its values feed ∂L/∂a


def init(key, input_shape):
    """Slopes start at 0.25, the paper's choice; the output has the input's shape."""
    return input_shape, PReLUParams(np.full(input_shape[0], 0.25, np.float32))


def _per_channel(a, x):
    """``a`` (C,) shaped to broadcast over ``x`` (N, C, ...): (1, C, 1, ...)."""
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))  # (C,) -> (1, C, 1, 1) for NCHW


def forward(params, x):
    slope = _per_channel(params.a, x)
    return np.where(x > 0, x, slope * x), PReLUCache(x)


def backward(params, cache, dy):
    x = cache.x
    negative = x <= 0
    dx = np.where(negative, _per_channel(params.a, x) * dy, dy)
    summed_axes = (0, *range(2, x.ndim))  # every axis but the channels
    da = np.where(negative, dy * x, 0).sum(axis=summed_axes)  # (C,)
    return dx, PReLUParams(a=da.astype(params.a.dtype))


# %% [markdown]
# ## 3. Check it against finite differences
#
# `fcnn.check_grad` runs forward and backward in float64 and compares every gradient with
# central differences `(f(θ + h) − f(θ − h)) / 2h` (h = 1e-6), for the input and every
# parameter leaf. Inputs are drawn away from 0, where PReLU has a kink and no derivative.

# %%
rng = np.random.default_rng(0)
for shape in [(4, 3, 5, 5), (6, 7)]:
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x) < 0.05, 0.5, x)  # keep clear of the kink at 0
    params = PReLUParams(rng.uniform(0.1, 0.5, size=shape[1]))
    errors = check_grad(forward, backward, params, x)
    print(f"input {shape}: largest error per gradient", {k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) < 1e-6  # float64: ~1e-10; a wrong formula: ~1e-1

# %% [markdown]
# The check earns its keep when the derivation is wrong. A classic slip: forgetting that the
# slope acts only on the negative part, so that `∂L/∂a` sums `dy · x` over every position.
# `check_grad` names the wrong gradient and where it differs:

# %%
def wrong_backward(params, cache, dy):
    dx, _ = backward(params, cache, dy)
    da = (dy * cache.x).sum(axis=(0, 2, 3))  # BUG: the positive positions count too
    return dx, PReLUParams(a=da)


x = rng.standard_normal((4, 3, 5, 5))
try:
    check_grad(forward, wrong_backward, PReLUParams(np.full(3, 0.25)), x)
    raise RuntimeError("the wrong gradient was not caught")
except GradientCheckError as error:
    print("caught:", error)

# %% [markdown]
# ## 4. Register it
#
# To use the layer in `serial` networks, in configs (`{type: PReLU}`) and in checkpoints,
# give it a constructor registered under a type name. `stateless(spec, init, module)` builds
# the uniform `Layer` record (`init`, `apply`, `backward`) from the three functions of a
# layer that needs no state, mode or random key. In a project this code is a module, say
# `my_layers.py`; the command line imports it with `fcnn --plugin my_layers ...` (or
# `FCNN_PLUGINS=my_layers`), scripts with `import my_layers`. A checkpoint names the type
# but never imports code: loading one without the module is an error that says so.

# %%
if "PReLU" not in L.registry.registered():

    @L.register("PReLU")
    def PReLU():  # noqa: N802 - layer constructors are named like classes
        """A parametric ReLU, one learned negative slope per channel."""
        return stateless({"type": "PReLU"}, init, sys.modules[__name__])

PReLU = L.registry.constructor("PReLU")

net = L.serial(
    L.Conv2D(8, 3, padding=1), PReLU(), L.MaxPool2D(2),
    L.Conv2D(16, 3, padding=1), PReLU(), L.MaxPool2D(2),
    L.Flatten(), L.Dense(10, w_init="glorot_uniform"),
)
print(fcnn.summary(net, (1, 28, 28)))
print(net.spec["layers"][1])

# %% [markdown]
# The whole network's gradient, PReLU inside it, checked the same way (a few images, small
# random input in float64; the whole network's tolerance is the suite's 1e-5):

# %%
_, params, state = net.init(fr.key(0), (1, 28, 28))
x_small = rng.standard_normal((2, 1, 28, 28))
errors = check_grad(lambda p, v: net.apply(p, v, state=state)[:2], net.backward, params,
                    x_small, atol=1e-5, rtol=1e-5)
print(f"network: {len(errors)} gradients checked, largest error {max(errors.values()):.1e}")

# %% [markdown]
# ## 5. Train, save, load
#
# A few hundred steps on MNIST with Adam, through the same pure functions as any network;
# then `fcnn.save` writes the spec, params and facts a checkpoint needs, and `fcnn.load`
# rebuilds the network from the spec, which needs the `PReLU` type registered, as it is in
# this process. The loaded model answers exactly as the trained one.

# %%
from fcnn.data import data_root, mnist

train_set, test_set = mnist.load(data_root())
mean, std = 0.1307 * 255, 0.3081 * 255  # MNIST's pixel mean and std, in 0–255 units


def normalized(images):
    return ((images.astype(np.float32) - mean) / std).astype(np.float32)


opt = optim.adam(2e-3)
opt_state = opt.init(params)
order = fr.generator(fr.key(1)).permutation(len(train_set))
for step in range(300):
    idx = order[step * 64 : (step + 1) * 64]
    logits, cache, state = net.apply(params, normalized(train_set.images[idx]), state=state,
                                     train=True)
    loss, loss_cache = cross_entropy.forward(logits, train_set.labels[idx])
    _, grads = net.backward(params, cache, cross_entropy.backward(loss_cache), need_dx=False)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)
    if step % 100 == 0 or step == 299:
        print(f"step {step:3d}: loss {float(loss):.3f}")

slopes = [leaf for path, leaf in fcnn.tree.flatten_with_paths(params) if path.endswith(".a")]
for i, s in enumerate(slopes):
    print(f"learned slopes of PReLU {i + 1}:", " ".join(f"{v:.2f}" for v in s))

with tempfile.TemporaryDirectory(prefix="fcnn-prelu-") as folder:  # removed afterwards
    path = fcnn.save(
        Path(folder) / "prelu_net.npz", net, params, state, input_shape=(1, 28, 28),
        class_names=[str(d) for d in range(10)], normalization={"mean": [mean], "std": [std]},
    )
    model = fcnn.load(path)
test_images = test_set.images[:1000]
mine = net.apply(params, normalized(test_images), state=state)[0]
loaded = model.raw_logits(test_images)
accuracy = float((loaded.argmax(axis=1) == test_set.labels[:1000]).mean())
print(f"saved to {path.name}; the loaded model's test accuracy on 1000 digits: {accuracy:.3f}")
print(f"largest difference of the logits, trained vs loaded: {np.abs(mine - loaded).max():.1e}")
# the same weights; only float32 rounding of the normalization may differ (~1e-6)
np.testing.assert_allclose(loaded, mine, atol=1e-4)
assert accuracy > 0.9  # 300 steps of a small network: typically 0.95–0.97

# %% [markdown]
# ## Where to go from here
#
# - Export: `fcnn export --format onnx` walks the spec, so it needs an exporter for the new
#   type, registered with `@fcnn.onnx_export.register_exporter("PReLU")`; without one,
#   export says so.
# - Layers with running state (like BatchNorm), a training mode or randomness (like
#   Dropout) implement `apply(params, x, *, state, train, key)` themselves instead of
#   `stateless`: see `fcnn/layers/base.py` for the full contract and
#   `fcnn/layers/dropout.py` for a short example.
# - Property tests: the suite checks every built-in layer with hypothesis over random
#   shapes (`tests/layers/`); a layer of your own deserves the same.

# %%
print(f"notebook ran in {time.perf_counter() - started:.1f} s")
