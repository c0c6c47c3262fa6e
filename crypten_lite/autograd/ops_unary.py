"""Gradient rules of the elementwise nonlinear functions and of softmax / log_softmax.

Each forward is the ``MPCTensor`` approximation (ranges and error bounds in its docstring)
or the exact float64 function on a public array. Backward costs (rounds, 2 parties; the
forward's in brackets):

* relu, abs: ``g * [x > 0]`` (abs: ``g (2 [x > 0] - 1)``) with the forward's comparison
  bit (an integer share): 1 round, no truncation, no comparison [4].
* exp: ``g * y``: 1 [6]. sigmoid: ``g * (y - y y)``: 2 [5]. tanh: ``g (1 - y^2)``: 2 [6].
  reciprocal: ``-g y^2``: 2 [11]. softmax: ``y (g - sum(g y))``: 2.
  log_softmax: ``g - exp(y) sum(g)``: one exp and one product, 7 [53 for n = 1000].
* log, sqrt: ``g / x`` and ``g / (2 sqrt x)``: one product; the forward, when a gradient is
  needed, computes ``1/x`` (``1/sqrt x``) in the same circuit as the value (log: one more
  product level, 8 rounds instead of 7; sqrt: the same 8). gelu: ``g gelu'(x)`` with the
  derivative's own Chebyshev interpolant: 5 + 1 [5].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite.autograd.graph import record
from crypten_lite.autograd.mode import is_grad_enabled
from crypten_lite.autograd.ops_arith import unpack
from crypten_lite.autograd.values import Value, mul_mask, vsum
from crypten_lite.tensor import MPCTensor

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = [
    "abs",
    "exp",
    "gelu",
    "log",
    "log_softmax",
    "reciprocal",
    "relu",
    "sigmoid",
    "softmax",
    "sqrt",
    "tanh",
]

F64 = npt.NDArray[np.float64]
_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x: F64) -> F64:
    return np.asarray(_ERF(x), dtype=np.float64)


def _sigmoid_np(x: F64) -> F64:
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=np.float64)


def _apply(
    x: Any,
    name: str,
    private: Callable[[MPCTensor], MPCTensor],
    public: Callable[[F64], F64],
) -> tuple[Value, Variable | None]:
    v, src = unpack(x, name)
    out: Value = private(v) if isinstance(v, MPCTensor) else public(v)
    return out, src


def relu(x: Any) -> Variable:
    """``max(x, 0)``; backward reuses the forward's comparison bit (see module doc)."""
    v, src = unpack(x, "relu")
    mask: MPCTensor | npt.NDArray[np.bool_]
    if isinstance(v, MPCTensor):
        out, mask = v.relu_with_mask()
        result: Value = out
    else:
        mask = v > 0
        result = np.where(mask, v, 0.0)

    def backward(g: Value) -> tuple[Value]:
        return (mul_mask(g, mask),)

    return record(result, (src,), backward, "Relu")


def exp(x: Any) -> Variable:
    out, src = _apply(x, "exp", MPCTensor.exp, np.exp)

    def backward(g: Value) -> tuple[Value]:
        return (g * out,)

    return record(out, (src,), backward, "Exp")


def sigmoid(x: Any) -> Variable:
    out, src = _apply(x, "sigmoid", MPCTensor.sigmoid, _sigmoid_np)

    def backward(g: Value) -> tuple[Value]:
        return (g * (out - out * out),)

    result = record(out, (src,), backward, "Sigmoid")
    if result.grad_fn is not None:
        result.grad_fn.sigmoid_of = src
    return result


def tanh(x: Any) -> Variable:
    out, src = _apply(x, "tanh", MPCTensor.tanh, np.tanh)

    def backward(g: Value) -> tuple[Value]:
        return (g - g * (out * out),)

    return record(out, (src,), backward, "Tanh")


def reciprocal(x: Any) -> Variable:
    out, src = _apply(x, "reciprocal", MPCTensor.reciprocal, lambda a: 1.0 / a)

    def backward(g: Value) -> tuple[Value]:
        return (-(g * (out * out)),)

    return record(out, (src,), backward, "Reciprocal")


def _wants(src: Variable | None) -> bool:
    return src is not None and src.requires_grad and is_grad_enabled()


def log(x: Any) -> Variable:
    """``ln x``; when a gradient is needed the forward also yields ``1/x`` from the same
    circuit (``MPCTensor.log_with_reciprocal``), and the backward is one product."""
    v, src = unpack(x, "log")
    out: Value
    inverse: Value
    if isinstance(v, MPCTensor):
        out, inverse = v.log_with_reciprocal() if _wants(src) else (v.log(), v)
    else:
        out, inverse = np.log(v), 1.0 / v

    def backward(g: Value) -> tuple[Value]:
        return (g * inverse,)

    return record(out, (src,), backward, "Log")


def sqrt(x: Any) -> Variable:
    """``sqrt x``; with a gradient needed the forward also yields ``1/sqrt x`` from the same
    circuit, and the backward is one product."""
    v, src = unpack(x, "sqrt")
    out: Value
    inverse: Value
    if isinstance(v, MPCTensor):
        out, inverse = v.sqrt_with_inverse() if _wants(src) else (v.sqrt(), v)
    else:
        out, inverse = np.sqrt(v), 1.0 / np.sqrt(v)

    def backward(g: Value) -> tuple[Value]:
        return (g * inverse * 0.5,)

    return record(out, (src,), backward, "Sqrt")


def inv_sqrt(x: Any) -> Variable:
    """``x^-1/2``; backward ``-g y^3 / 2`` (2 rounds)."""
    v, src = unpack(x, "inv_sqrt")
    out: Value = v.inv_sqrt() if isinstance(v, MPCTensor) else 1.0 / np.sqrt(v)

    def backward(g: Value) -> tuple[Value]:
        cube = out * (out * out)
        return (-(g * cube) * 0.5,)

    return record(out, (src,), backward, "InvSqrt")


def gelu(x: Any) -> Variable:
    """GELU, the exact (erf) form; see module doc for the backward's cost."""
    v, src = unpack(x, "gelu")
    out: Value
    if isinstance(v, MPCTensor):
        out = v.gelu()
    else:
        out = 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))

    def backward(g: Value) -> tuple[Value]:
        deriv: Value
        if isinstance(v, MPCTensor):
            deriv = v.gelu_derivative()
        else:
            cdf_np = 0.5 * (1.0 + _erf(v / math.sqrt(2.0)))
            deriv = cdf_np + v * np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)
        return (g * deriv,)

    return record(out, (src,), backward, "Gelu")


def _axis_of(v: Value, dim: int | str) -> int:
    if isinstance(v, MPCTensor):
        return v._axis(dim)  # names or positions, as the forward resolves them
    if isinstance(dim, str):
        raise TypeError("a named dim needs a (named) MPCTensor")
    return dim % v.ndim


def softmax(x: Any, dim: int | str) -> Variable:
    """Softmax along ``dim``; backward ``y (g - sum(g y))``: 2 rounds."""
    v, src = unpack(x, "softmax")
    axis = _axis_of(v, dim)
    out: Value
    if isinstance(v, MPCTensor):
        out = v.softmax(axis)
    else:
        e = np.exp(v - np.max(v, axis=axis, keepdims=True))
        out = e / np.sum(e, axis=axis, keepdims=True)

    def backward(g: Value) -> tuple[Value]:
        inner = vsum(g * out, (axis,), keepdim=True)
        return (out * (g - inner),)

    return record(out, (src,), backward, "Softmax")


def log_softmax(x: Any, dim: int | str) -> Variable:
    """Log-softmax along ``dim``; backward ``g - exp(y) sum(g)`` (one exp, one product)."""
    v, src = unpack(x, "log_softmax")
    axis = _axis_of(v, dim)
    out: Value
    if isinstance(v, MPCTensor):
        out = v.log_softmax(axis)
    else:
        shifted = v - np.max(v, axis=axis, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def backward(g: Value) -> tuple[Value]:
        probs: Value = out.exp() if isinstance(out, MPCTensor) else np.exp(out)
        return (g - probs * vsum(g, (axis,), keepdim=True),)

    return record(out, (src,), backward, "LogSoftmax")


def abs(x: Any) -> Variable:
    """``|x| = 2 relu(x) - x``; backward ``g (2 [x > 0] - 1)`` with the forward's bit (1 round)."""
    v, src = unpack(x, "abs")
    mask: MPCTensor | npt.NDArray[np.bool_]
    if isinstance(v, MPCTensor):
        positive, mask = v.relu_with_mask()
        result: Value = positive * 2 - v
    else:
        mask = v > 0
        result = np.abs(v)

    def backward(g: Value) -> tuple[Value]:
        return (mul_mask(g, mask) * 2 - g,)

    return record(result, (src,), backward, "Abs")
