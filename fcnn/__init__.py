"""fcnn: a convolutional-network library written from scratch in NumPy, without autograd.

Every layer is a pair of pure functions ``forward(params, x) -> (y, cache)`` and
``backward(params, cache, dy) -> (dx, grads)`` over frozen attrs parameter trees;
optimizers and schedules are pure state transforms. Arrays are NCHW, conv
weights ``(C_out, C_in, KH, KW)``. The documentation site (``docs/``, ``mkdocs serve``)
states the conventions.
"""

import importlib

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
    "save",
    "summary",
    "tree",
]


# Submodules load on first use (``fcnn.layers``, ``from fcnn import optim``): importing
# fcnn itself loads no NumPy, so that fcnn.runtime can set the BLAS threads before NumPy
# loads its BLAS (which reads them once); ``load`` and ``Model`` bring in Pillow too.
_SUBMODULES = ("initializers", "layers", "losses", "models", "optim", "random", "tree")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"fcnn.{name}")
    if name == "check_grad":
        from fcnn.gradcheck import check_grad

        return check_grad
    if name == "summary":
        from fcnn.model_summary import summary

        return summary
    if name == "save":
        from fcnn.saving import save

        return save
    if name in ("load", "Model"):
        from fcnn import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'fcnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
