"""Losses, each a module with ``forward(pred, target, ...) -> (loss, cache)`` and
``backward(cache, dloss=1.0) -> dpred``."""

from fcnn.losses import cross_entropy, mse

__all__ = ["cross_entropy", "mse"]
