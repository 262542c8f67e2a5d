"""fcnn: a convolutional-network library written from scratch in NumPy, without autograd.

Every layer is a pair of pure functions ``forward(params, x) -> (y, cache)`` and
``backward(params, cache, dy) -> (dx, grads)`` over frozen attrs parameter trees;
optimizers and schedules are pure state transforms. Arrays are NCHW, conv
weights ``(C_out, C_in, KH, KW)``. See the README for the conventions.
"""

from fcnn import initializers, layers, losses, models, optim, random, tree
from fcnn.gradcheck import check_grad
from fcnn.version import __version__

__all__ = [
    "Model",
    "__version__",
    "check_grad",
    "initializers",
    "layers",
    "load",
    "losses",
    "models",
    "optim",
    "random",
    "tree",
]


def __getattr__(name: str):
    """``fcnn.load`` and ``fcnn.Model`` are imported on first use: they bring in Pillow."""
    if name in ("load", "Model"):
        from fcnn import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'fcnn' has no attribute {name!r}")
