"""A trained model as an ONNX graph: raw pixels in, the model's probabilities out.

The network walker (:func:`fcnn.layers.network.walk`) passes node names through the
network's ``spec`` (combinators nest; each layer type has an exporter in
:data:`EXPORTERS`), so every network fcnn can build exports, not a list of presets. The
graph holds everything ``fcnn.load(W).predict(x)`` does:

- input ``pixels``: float32 ``(N, C, H, W)`` raw 0..255 pixels;
- the normalization stored in the checkpoint (``(x - mean) / std`` per channel);
- the network in eval mode, with every BatchNorm that follows a Conv2D or Dense folded
  into it (as fcnn's own inference does; any other BatchNorm as ``BatchNormalization``);
- the stored calibration (temperature, bias or vector scaling) and a softmax: output
  ``probabilities`` ``(N, K)``;
- output ``decision`` ``(N,)`` int64: the class the model's decision rule answers (the
  argmax of the probabilities, times the rule's class weights when it stores some).

What stays outside: the out-of-distribution check (``uncertain_reason: not_skin``), the
"uncertain" threshold and the risk level, which DermaScan computes around the model, and
image decoding and resizing (:func:`fcnn.data.preprocess.prepare_image`).

A user layer exports once its exporter is registered::

    @fcnn.onnx_export.register_exporter("Scale")
    def scale_to_onnx(graph, params, state, spec, x):
        return graph.node("Mul", x, graph.constant(params.s.reshape(1, -1, 1, 1)))

Needs the ``onnx`` package (the ``[onnx]`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fcnn.im2col import pair, resolve_padding
from fcnn.io import atomic_write
from fcnn.layers import network
from fcnn.layers.batchnorm import gamma_of
from fcnn.layers.folding import fold_batchnorm
from fcnn.version import __version__

__all__ = ["EXPORTERS", "OPSET", "OnnxExportError", "OnnxGraph", "export_onnx", "register_exporter"]

OPSET = 17
INPUT, PROBABILITIES, DECISION = "pixels", "probabilities", "decision"

Exporter = Callable[["OnnxGraph", Any, Any, dict[str, Any], str], str]
EXPORTERS: dict[str, Exporter] = {}


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX (a layer without an exporter, no onnx package)."""


def register_exporter(type_name: str) -> Callable[[Exporter], Exporter]:
    """Decorator: ``fn(graph, params, state, spec, x) -> output name`` adds the nodes of one
    layer of type ``type_name`` to ``graph`` and returns the name of its output."""

    def decorate(fn: Exporter) -> Exporter:
        EXPORTERS[type_name] = fn
        return fn

    return decorate


class OnnxGraph:
    """The nodes and constants of a graph being built; names are made unique here."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, array: np.ndarray, dtype=np.float32) -> str:
        """A constant tensor (float32 unless ``dtype`` says otherwise); returns its name."""
        name = self._name("const")
        self.initializers.append(
            self._numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name)
        )
        return name

    def node(self, op: str, *inputs: str, output: str | None = None, **attributes: Any) -> str:
        """One ``op`` node on ``inputs``; returns its (single) output's name."""
        out = output or self._name(op.lower())
        self.nodes.append(self._helper.make_node(op, list(inputs), [out], **attributes))
        return out


def _emit(graph: OnnxGraph, spec: dict[str, Any], params: Any, state: Any, x: str) -> str:
    """The nodes of the network of ``spec`` on the node named ``x``; returns its output's name."""

    def layer(layer_spec: dict[str, Any], _path: Any, p: Any, s: Any, value: str) -> str:
        kind = layer_spec["type"]
        exporter = EXPORTERS.get(kind)
        if exporter is None:
            raise OnnxExportError(
                f"layer type {kind!r} has no ONNX exporter; register one with "
                f"@fcnn.onnx_export.register_exporter({kind!r}) (see fcnn.onnx_export)"
            )
        return exporter(graph, p, s, layer_spec, value)

    return network.walk(spec, x, layer, lambda a, b: graph.node("Add", a, b), params, state)


@register_exporter("Conv2D")
def _conv(graph, params, state, spec, x):
    kernel = params.w.shape[2:]
    dilation = pair(params.dilation, "dilation")
    ph, pw = resolve_padding(params.padding, kernel, dilation)
    return graph.node(
        "Conv",
        x,
        graph.constant(params.w),
        graph.constant(params.b),
        kernel_shape=list(kernel),
        strides=list(pair(params.stride, "stride")),
        pads=[ph, pw, ph, pw],
        dilations=list(dilation),
    )


@register_exporter("Dense")
def _dense(graph, params, state, spec, x):
    # y = x @ w.T + b with w (out, in), as ONNX's Gemm with transB
    return graph.node("Gemm", x, graph.constant(params.w), graph.constant(params.b), transB=1)


def _pool(op: str, **extra: Any) -> Exporter:
    def export(graph, params, state, spec, x):
        ph, pw = params.padding
        return graph.node(
            op,
            x,
            kernel_shape=list(params.window),
            strides=list(params.stride),
            pads=[ph, pw, ph, pw],
            **extra,
        )

    return export


register_exporter("MaxPool2D")(_pool("MaxPool"))
register_exporter("AvgPool2D")(_pool("AveragePool", count_include_pad=1))  # padded zeros count


@register_exporter("GlobalAvgPool2D")
def _global_avg(graph, params, state, spec, x):
    return graph.node("Flatten", graph.node("GlobalAveragePool", x), axis=1)  # (N, C)


@register_exporter("Flatten")
def _flatten(graph, params, state, spec, x):
    return graph.node("Flatten", x, axis=1)


@register_exporter("Dropout")
def _dropout(graph, params, state, spec, x):
    return x  # the identity in eval mode


def _elementwise(op: str) -> Exporter:
    return lambda graph, params, state, spec, x: graph.node(op, x)


register_exporter("ReLU")(_elementwise("Relu"))
register_exporter("Sigmoid")(_elementwise("Sigmoid"))
register_exporter("Tanh")(_elementwise("Tanh"))


@register_exporter("GELU")
def _gelu(graph, params, state, spec, x):
    # opset 17 has no Gelu: 0.5 x (1 + tanh(c (x + a x³))) from its nodes
    c, a = np.sqrt(2.0 / np.pi), 0.044715
    cube = graph.node("Mul", graph.node("Mul", x, x), x)
    inner = graph.node("Add", x, graph.node("Mul", cube, graph.constant(np.array(a))))
    t = graph.node("Tanh", graph.node("Mul", inner, graph.constant(np.array(c))))
    half = graph.node("Mul", x, graph.constant(np.array(0.5)))
    return graph.node("Mul", half, graph.node("Add", t, graph.constant(np.array(1.0))))


@register_exporter("Multiply")
def _multiply(graph, params, state, spec, x):
    return graph.node("Mul", x, graph.constant(np.array(params.factor)))


@register_exporter("LeakyReLU")
def _leaky_relu(graph, params, state, spec, x):
    return graph.node("LeakyRelu", x, alpha=float(params.negative_slope))


@register_exporter("Softmax")
def _softmax(graph, params, state, spec, x):
    return graph.node("Softmax", x, axis=-1)


def _batchnorm(graph, params, state, spec, x):
    # a BatchNorm that did not fold (it follows no Conv2D or Dense): eval mode
    return graph.node(
        "BatchNormalization",
        x,
        graph.constant(gamma_of(params)),
        graph.constant(params.beta),
        graph.constant(state.mean),
        graph.constant(state.var),
        epsilon=float(params.eps),
    )


register_exporter("BatchNorm2D")(_batchnorm)
register_exporter("BatchNorm1D")(_batchnorm)


def _calibrated(graph: OnnxGraph, calibration: Any, logits: str) -> str:
    """The stored calibration of the logits, in the same operations as
    :meth:`fcnn.calibration.Calibration.apply`."""
    if calibration.method in ("temperature", "bias"):
        logits = graph.node("Div", logits, graph.constant(np.array(calibration.temperature)))
    if calibration.method == "vector":
        logits = graph.node("Mul", logits, graph.constant(np.array(calibration.scale)))
    if calibration.method in ("bias", "vector"):
        logits = graph.node("Add", logits, graph.constant(np.array(calibration.bias)))
    return logits


def model_graph(model: Any) -> Any:
    """The ``onnx.ModelProto`` of a loaded :class:`fcnn.inference.Model`."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise OnnxExportError(
            "ONNX export needs the onnx package: pip install -e '.[onnx]'"
        ) from None
    net, params, state = fold_batchnorm(model.net, model.params, model.state)
    graph = OnnxGraph()
    c = model.input_shape[0]
    mean = np.asarray(model.normalization.mean, np.float32).reshape(1, c, 1, 1)
    inv_std = (1.0 / np.asarray(model.normalization.std, np.float32)).reshape(1, c, 1, 1)
    x = graph.node("Mul", graph.node("Sub", INPUT, graph.constant(mean)), graph.constant(inv_std))
    logits = _calibrated(graph, model.calibration, _emit(graph, net.spec, params, state, x))
    probs = graph.node("Softmax", logits, axis=1, output=PROBABILITIES)
    weighted = probs
    if model.decision.weights:
        weighted = graph.node("Mul", probs, graph.constant(np.array(model.decision.weights)))
    graph.node("ArgMax", weighted, axis=1, keepdims=0, output=DECISION)
    k = len(model.class_names)
    onnx_graph = helper.make_graph(
        graph.nodes,
        f"fcnn_{model.manifest.model or 'model'}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", *model.input_shape])],
        [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", k]),
            helper.make_tensor_value_info(DECISION, TensorProto.INT64, ["N"]),
        ],
        initializer=graph.initializers,
    )
    proto = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fcnn",
        producer_version=__version__,
        doc_string="input pixels: raw 0..255 (N, C, H, W); outputs: calibrated probabilities "
        f"over {list(model.class_names)} and the decision rule's class index",
    )
    helper.set_model_props(proto, {"class_names": ",".join(model.class_names)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Any, path: str | Path) -> Path:
    """Write ``model`` (a :class:`fcnn.inference.Model`) to ``path`` as ONNX, atomically."""
    proto = model_graph(model)
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return path
