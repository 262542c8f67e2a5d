"""The layer contract, stated once: the docs' contracts page and the package docstring link here.

A layer has two forms, and each is a set of pure functions over frozen ``attrs`` params.

**A layer module** (``conv``, ``dense``, ``pooling``, ``batchnorm``, ``dropout``,
``flatten``, ``activations``, or a user's own) holds the math: its params class, a cache
``NamedTuple`` per computation path, and :class:`ModuleInit`, :class:`ModuleForward` and
:class:`ModuleBackward`::

    init(key, input_shape, *, **hyper)         -> (output_shape, params[, state])
    forward(params, x[, *, state, train, key]) -> (y, cache[, new_state])
    backward(params, cache, dy[, *, need_dx])  -> (dx, grads)

- ``input_shape`` / ``output_shape`` describe one example (no batch axis);
  hyperparameters are keyword-only, each stated once: in ``init``'s signature when only
  init needs it (``out_channels``), else as a *static* field of ``params`` (never a leaf),
  with its default and check, which ``init`` fills from ``**static`` (``stride``).
  ``grads`` is an instance of the params class with the gradient in each leaf, so
  optimizers map params and grads together.
- The bracketed parts appear only where a layer needs them, always keyword-only:
  ``train`` selects training or eval mode (BatchNorm, Dropout), ``key`` is an explicit
  random key (Dropout), ``state`` is non-trainable state (BatchNorm's running statistics),
  and a layer that takes ``state`` returns the new state as a third value.
- ``cache`` holds exactly what backward needs; ``need_dx=False`` (conv, dense) skips the
  input gradient and returns None for it: the first layer of a network never needs it.
- Nothing mutates its inputs; every op preserves the input's floating dtype. The params
  class is what selects the computation (``forward(ReLUParams(), x)``), never a string.

**A composable layer** (``Conv2D(16, 5)``, ``ReLU()``, ``serial(...)``) is a :class:`Layer`:
its JSON-able ``spec`` and three functions of one uniform signature, :class:`InitFn`,
:class:`ApplyFn` and :class:`BackwardFn`, which combinators thread through a network::

    layer.init(key, input_shape)                       -> (output_shape, params, state)
    layer.apply(params, x, *, state, train, key)       -> (y, cache, new_state)
    layer.backward(params, cache, dy, *, need_dx=True) -> (dx, grads)

``state`` is ``None`` for layers without state. Each module defines its composable
constructor beside its math with :func:`composable`, which derives its signature and spec
from the module's ``init`` and params class and registers it under its type name
(users register theirs with :func:`fcnn.layers.register`), and
``fcnn.layers.from_spec(layer.spec)`` rebuilds the same layer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from fcnn import random as fr
from fcnn.layers import registry
from fcnn.tree import is_static

__all__ = [
    "ApplyFn",
    "BackwardFn",
    "InitFn",
    "Layer",
    "ModuleBackward",
    "ModuleForward",
    "ModuleInit",
    "composable",
    "composable_module",
    "hyperparameters",
    "module_backward",
    "spec_of",
    "stateless",
]

Shape = tuple[int, ...]


@runtime_checkable
class ModuleInit(Protocol):
    """A module's ``init(key, input_shape, *, **hyper) -> (output_shape, params[, state])``."""

    def __call__(self, key: fr.Key, input_shape: Shape, /, **hyper: Any) -> tuple[Any, ...]: ...


@runtime_checkable
class ModuleForward(Protocol):
    """A module's ``forward(params, x[, *, state, train, key]) -> (y, cache[, new_state])``."""

    def __call__(self, params: Any, x: np.ndarray, /, **modes: Any) -> tuple[Any, ...]: ...


@runtime_checkable
class ModuleBackward(Protocol):
    """A module's ``backward(params, cache, dy[, *, need_dx]) -> (dx, grads)``."""

    def __call__(
        self, params: Any, cache: Any, dy: np.ndarray, /, **options: Any
    ) -> tuple[np.ndarray | None, Any]: ...


@runtime_checkable
class InitFn(Protocol):
    """``layer.init(key, input_shape) -> (output_shape, params, state)``: every shape is
    derived from the input shape of one example, without data."""

    def __call__(self, key: fr.Key, input_shape: Shape) -> tuple[Shape, Any, Any]: ...


@runtime_checkable
class ApplyFn(Protocol):
    """``layer.apply(params, x, *, state, train, key) -> (y, cache, new_state)``."""

    def __call__(
        self,
        params: Any,
        x: np.ndarray,
        *,
        state: Any = None,
        train: bool = False,
        key: fr.Key | None = None,
    ) -> tuple[np.ndarray, Any, Any]: ...


@runtime_checkable
class BackwardFn(Protocol):
    """``layer.backward(params, cache, dy, *, need_dx=True) -> (dx, grads)``; dx is None
    when ``need_dx`` is False and the layer can skip it."""

    def __call__(
        self, params: Any, cache: Any, dy: np.ndarray, *, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Any]: ...


@attrs.frozen(eq=False)
class Layer:
    """A layer (or a whole network) as three pure functions plus its description."""

    spec: dict[str, Any]
    init: InitFn
    apply: ApplyFn
    backward: BackwardFn
    # a combinator's child layers, in the order of its params (None: an absent child)
    children: tuple[Layer | None, ...] = ()

    @property
    def name(self) -> str:
        return str(self.spec["type"])

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k not in ("type", "layers"))
        return f"{self.name}({hyper})"


def spec_of(type_name: str, **hyper: Any) -> dict[str, Any]:
    """``{"type": type_name, **hyper}`` with tuples as lists, as JSON keeps them."""

    def jsonable(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {"type": type_name, **{k: jsonable(v) for k, v in hyper.items()}}


# ``init`` keywords that are not hyperparameters: the dtype of fresh params, and the params
# class of a module that makes several layer types (pooling, activations)
NOT_HYPERPARAMETERS = ("dtype", "kind")


def hyperparameters(
    init_fn: Callable[..., Any], params_class: type | None = None
) -> inspect.Signature:
    """A layer's hyperparameters as one signature, each stated once where it is used: the
    keyword arguments of its module's ``init_fn`` (what only init needs, such as
    ``out_channels``), then, when ``init_fn`` passes ``**static`` on to its params class, that
    class's static fields with their defaults (what forward needs, such as ``stride``).
    Every one may be given by position, in that order."""
    signature = inspect.signature(init_fn)
    named = [
        p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in NOT_HYPERPARAMETERS
    ]
    takes_static = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not (takes_static and params_class is not None):
        return inspect.Signature(named, return_annotation=Layer)
    # the params class's __init__ states what each field accepts (a converter's argument)
    accepted = inspect.signature(params_class).parameters
    fields = attrs.fields(params_class)
    static = [
        accepted[f.name].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for f in fields
        if is_static(f)
    ]
    return inspect.Signature([*named, *static], return_annotation=Layer)


def composable(
    type_name: str,
    init_fn: Callable[..., Any],
    make: Callable[[Callable[..., Any]], Layer],
    *,
    params_class: type | None = None,
    doc: str,
) -> Callable[..., Layer]:
    """fcnn's own composable constructor of type ``type_name`` (users cannot take the name),
    built from its module: its signature is :func:`hyperparameters` of ``init_fn`` and
    ``params_class``; a call binds them (defaults included) into the layer's ``spec`` and
    gives ``make`` the module init with them bound, ``(key, input_shape) -> ...``, to make
    the :class:`Layer`. :func:`fcnn.layers.from_spec` rebuilds the same layer from the spec."""
    signature = hyperparameters(init_fn, params_class)

    def constructor(*args: Any, **kwargs: Any) -> Layer:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type_name}{signature}: {exc}") from None
        bound.apply_defaults()
        layer = make(functools.partial(init_fn, **bound.arguments))
        return attrs.evolve(layer, spec=spec_of(type_name, **bound.arguments))

    constructor.__name__ = constructor.__qualname__ = type_name
    constructor.__doc__ = doc
    constructor.__module__ = getattr(init_fn, "func", init_fn).__module__  # a partial's own
    constructor.__signature__ = signature  # type: ignore[attr-defined]
    registry.builtin(type_name, constructor)
    return constructor


def composable_module(
    type_name: str,
    module: Any,
    *,
    doc: str,
    params_class: type | None = None,
    kind: type | None = None,
) -> Callable[..., Layer]:
    """:func:`composable` for a module whose ``forward(params, x)`` needs no state, mode or
    key (:func:`stateless`). ``kind``: the params class that selects one of the module's
    layer types (pooling, activations), passed to its ``init`` and standing for
    ``params_class``."""
    init_fn = module.init if kind is None else functools.partial(module.init, kind=kind)
    return composable(
        type_name,
        init_fn,
        lambda bound_init: stateless({}, bound_init, module),
        params_class=params_class or kind,
        doc=doc,
    )


def module_backward(fn: Callable[..., tuple[Any, Any]]) -> BackwardFn:
    """A module's ``backward`` with the uniform ``need_dx`` keyword (passed on if it takes it)."""
    if "need_dx" in inspect.signature(fn).parameters:
        return fn  # type: ignore[return-value]

    def backward(params, cache, dy, *, need_dx=True):
        return fn(params, cache, dy)

    return backward


def stateless(spec: dict[str, Any], init_fn: Callable[..., Any], module: Any) -> Layer:
    """A :class:`Layer` for a module whose ``forward(params, x)`` needs no state, mode or key.

    ``init_fn(key, input_shape) -> (output_shape, params)``; ``module`` is anything with
    ``forward`` and ``backward`` (a module, or a namespace of the two functions). A
    constructor made by :func:`composable` may pass ``{}`` as ``spec``: the constructor
    writes it.
    """

    def init(key, input_shape):
        out_shape, params = init_fn(key, tuple(input_shape))
        return out_shape, params, None

    forward = module.forward

    def apply(params, x, *, state=None, train=False, key=None):
        y, cache = forward(params, x)
        return y, cache, state

    return Layer(spec=spec, init=init, apply=apply, backward=module_backward(module.backward))
