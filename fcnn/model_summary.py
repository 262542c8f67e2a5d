"""A network's summary, as Keras' ``model.summary()`` and torchinfo give it: per layer its
tree path, type, output shape, parameters and multiply-adds, with totals.

``fcnn.summary(net, input_shape)`` returns a :class:`Summary`; ``str()`` of it is the table
``fcnn summary`` prints. The rows come from :func:`fcnn.layers.cost.layer_costs`; paths are
the params tree's (what ``train.freeze`` and checkpoints name).
"""

from __future__ import annotations

import attrs

from fcnn.layers import Layer
from fcnn.layers.cost import LayerCost, layer_costs

__all__ = ["Summary", "summary"]


@attrs.frozen
class Summary:
    """The rows of a network on one example of ``input_shape``, and their totals."""

    input_shape: tuple[int, ...]
    rows: tuple[LayerCost, ...]

    @property
    def params(self) -> int:
        """Trainable values, all layers."""
        return sum(row.params for row in self.rows)

    @property
    def state(self) -> int:
        """Non-trainable values (BatchNorm running statistics), all layers."""
        return sum(row.state for row in self.rows)

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one example (convolutions and dense layers)."""
        return sum(row.multiply_adds for row in self.rows)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.rows[-1].output_shape if self.rows else self.input_shape

    def __str__(self) -> str:
        head = ("path", "layer", "output shape", "params", "multiply-adds")
        body = [
            (
                row.path or "(net)",
                row.type,
                _shape(row.output_shape),
                f"{row.params:,}" + (f" (+{row.state:,})" if row.state else ""),
                f"{row.multiply_adds:,}",
            )
            for row in self.rows
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        right = (False, False, False, True, True)

        def line(cells) -> str:
            padded = zip(cells, widths, right, strict=True)
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in padded).rstrip()

        rule = "-" * len(line(head))
        totals = [
            f"input {_shape(self.input_shape)} -> output {_shape(self.output_shape)}",
            f"trainable parameters: {self.params:,}"
            + (f"; non-trainable state (in brackets above): {self.state:,}" if self.state else ""),
            f"multiply-adds per example: {self.multiply_adds:,}",
        ]
        return "\n".join([line(head), rule, *map(line, body), rule, *totals])


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def summary(net: Layer, input_shape: tuple[int, ...]) -> Summary:
    """The :class:`Summary` of ``net`` on one example of ``input_shape`` (C, H, W), without
    the batch axis. ValueError when the network cannot take that shape."""
    shape = tuple(int(d) for d in input_shape)
    return Summary(shape, layer_costs(net.spec, shape))
