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
    "__version__",
    "check_grad",
    "initializers",
    "layers",
    "losses",
    "models",
    "optim",
    "random",
    "tree",
]
