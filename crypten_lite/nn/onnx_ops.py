"""ONNX operator handlers for :mod:`crypten_lite.nn.onnx_import`.

Every handler takes the parsed :class:`OnnxNode` and its input values (numpy arrays,
MPCTensors, or ``None`` for an absent optional input) and returns the list of its outputs.
Values that describe shapes (``Shape``, ``Gather``, ``Reshape``'s target, ``Split`` sizes,
...) are public numpy integer arrays: shapes of secret-shared tensors are public, so
the shape subgraphs torch exports are evaluated on them at run time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from crypten_lite.nn import functional as F
from crypten_lite.nn import onnx_spatial as spatial_ops
from crypten_lite.nn.onnx_base import (
    Handler,
    OnnxNode,
    UnsupportedOperatorError,
    float_input,
    ints,
    matmul,
    public,
    transpose,
)
from crypten_lite.tensor import MPCTensor, cat

__all__ = ["OPS", "Handler", "OnnxNode", "UnsupportedOperatorError"]


# -- arithmetic ----------------------------------------------------------------------------
def _add(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [xs[0] + xs[1]]


def _sub(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [xs[0] - xs[1]]


def _mul(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [xs[0] * xs[1]]


def _div(node: OnnxNode, xs: list[Any]) -> list[Any]:
    a, b = xs
    if not isinstance(a, MPCTensor) and not isinstance(b, MPCTensor):
        a, b = np.asarray(a), np.asarray(b)
        if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
            return [(np.trunc(a / b)).astype(np.result_type(a, b))]
    return [a / b]


def _neg(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [-xs[0]]


def _sqrt(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = float_input(node, xs[0])
    return [x.sqrt() if isinstance(x, MPCTensor) else np.sqrt(x)]


def _pow(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    exponent = float(public(node, xs[1], "the Pow exponent").reshape(-1)[0])
    if np.asarray(xs[1]).size != 1:
        raise node.fail("only a scalar exponent is supported")
    if not isinstance(x, MPCTensor):
        return [np.power(x, exponent)]
    if exponent == 0.5:
        return [x.sqrt()]
    if exponent != int(exponent):
        raise node.fail(f"a secret-shared base needs an integer exponent, got {exponent}")
    return [x.pow(int(exponent))]


def _reduce(node: OnnxNode, xs: list[Any], mean: bool) -> list[Any]:
    x = xs[0]
    keep = bool(node.attr("keepdims", 1))
    axes = _axes(node, xs)
    if axes is None or not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.ndim))
    dims = tuple(sorted(a % x.ndim for a in axes))
    if isinstance(x, MPCTensor):
        return [x.mean(dims, keepdim=keep) if mean else x.sum(dims, keepdim=keep)]
    fn = np.mean if mean else np.sum
    return [np.asarray(fn(x, axis=dims, keepdims=keep))]


def _reduce_mean(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _reduce(node, xs, mean=True)


def _reduce_sum(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _reduce(node, xs, mean=False)


def _matmul_op(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [matmul(xs[0], xs[1])]


def _gemm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    if node.attr("transA", 0):
        a = transpose(a, (1, 0))
    if node.attr("transB", 0):
        b = transpose(b, (1, 0))
    out = matmul(a, b)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    if alpha != 1.0:
        out = out * alpha
    if c is not None:
        out = out + (c if beta == 1.0 else c * beta)
    return [out]


# -- activations ---------------------------------------------------------------------------
def _relu(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.relu(float_input(node, xs[0]))]


def _sigmoid(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.sigmoid(float_input(node, xs[0]))]


def _tanh(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.tanh(float_input(node, xs[0]))]


def _erf(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = float_input(node, xs[0])
    if isinstance(x, MPCTensor):
        return [x.erf()]
    return [np.vectorize(math.erf, otypes=[np.float64])(x)]


def _gelu(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.gelu(float_input(node, xs[0]), str(node.attr("approximate", "none")))]


def _softmax_like(node: OnnxNode, xs: list[Any], log: bool) -> list[Any]:
    x = float_input(node, xs[0])
    fn = F.log_softmax if log else F.softmax
    if node.opset >= 13:
        return [fn(x, int(node.attr("axis", -1)))]
    # opset < 13: the input is coerced to 2-D at ``axis`` and normalised over dim 1
    axis = int(node.attr("axis", 1)) % x.ndim
    shape = tuple(x.shape)
    flat = x.reshape(int(np.prod(shape[:axis], dtype=np.int64)), -1)
    return [fn(flat, 1).reshape(shape)]


def _softmax(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _softmax_like(node, xs, log=False)


def _log_softmax(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _softmax_like(node, xs, log=True)


# -- shape and data movement ---------------------------------------------------------------
def _identity(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [xs[0]]


def _dropout(node: OnnxNode, xs: list[Any]) -> list[Any]:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.fail("the mask output of Dropout is not supported")
    return [xs[0]]


def _flatten(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    axis = int(node.attr("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(outer, -1)]


def _reshape(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    target = ints(node, xs[1], "the Reshape shape")
    if not node.attr("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(*target) if isinstance(x, MPCTensor) else np.reshape(x, target)]


def _transpose_op(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    perm = node.attr("perm")
    return [transpose(x, list(range(x.ndim))[::-1] if perm is None else list(perm))]


def _split(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    axis = int(node.attr("axis", 0)) % x.ndim
    length = x.shape[axis]
    if len(xs) > 1 and xs[1] is not None:
        sizes = ints(node, xs[1], "the Split sizes")
    elif node.attr("split") is not None:
        sizes = [int(s) for s in node.attr("split")]
    else:
        parts = int(node.attr("num_outputs", len(node.outputs)))
        chunk = -(-length // parts)
        sizes = [min(chunk, length - i * chunk) for i in range(parts)]
    if sum(sizes) != length or any(s < 0 for s in sizes):
        raise node.fail(f"split sizes {sizes} do not add up to dim {axis} of size {length}")
    if isinstance(x, MPCTensor):
        return list(x.split(sizes, axis))
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _concat(node: OnnxNode, xs: list[Any]) -> list[Any]:
    axis = int(node.attr("axis"))
    parts = [x for x in xs if x is not None]
    private = [x for x in parts if isinstance(x, MPCTensor)]
    if not private:
        return [np.concatenate([np.asarray(x) for x in parts], axis=axis)]
    like = private[0]
    shared = [
        x if isinstance(x, MPCTensor) else F.trivial_share(np.asarray(x, np.float64), like)
        for x in parts
    ]
    return [cat(shared, dim=axis % like.ndim)]


def _shape(node: OnnxNode, xs: list[Any]) -> list[Any]:
    shape = np.array(xs[0].shape, dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end")
    return [shape[start:end]]


def _gather(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Public indices; the data may be private (indexing a sharing is local)."""
    indices = public(node, xs[1], "Gather indices")
    if not np.issubdtype(indices.dtype, np.integer):
        raise node.fail(f"Gather indices must be integers, got {indices.dtype}")
    data = xs[0]
    axis = int(node.attr("axis", 0))
    if not isinstance(data, MPCTensor):
        return [np.take(np.asarray(data), indices, axis=axis)]
    axis %= data.ndim
    size = data.shape[axis]
    if indices.size and not (-size <= indices.min() and indices.max() < size):
        raise node.fail(f"Gather indices out of range for dim {axis} of size {size}")
    wrapped = np.where(indices < 0, indices + size, indices).astype(np.int64)
    if wrapped.ndim == 0:
        return [data[(slice(None),) * axis + (int(wrapped),)]]
    flat = data[(slice(None),) * axis + (wrapped.reshape(-1),)]
    shape = (*data.shape[:axis], *wrapped.shape, *data.shape[axis + 1 :])
    return [flat.reshape(*shape)]


def _pad(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Constant mode; pads (and ``axes``, opset 18) public; non-negative widths only."""
    x = xs[0]
    mode = node.attr("mode", "constant")
    if mode != "constant":
        raise node.fail(f"mode={mode!r} is not supported (only constant)")
    if node.opset < 11:
        pads = [int(p) for p in node.attr("pads", [])]
        value = float(node.attr("value", 0.0))
    else:
        pads = ints(node, xs[1], "Pad pads")
        given = xs[2] if len(xs) > 2 else None
        value = 0.0 if given is None else float(public(node, given, "Pad constant_value"))
    axes = ints(node, xs[3], "Pad axes") if len(xs) > 3 and xs[3] is not None else None
    axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in axes]
    if len(pads) != 2 * len(axes):
        raise node.fail(f"pads {pads} must list a begin and an end for each of {len(axes)} axes")
    if min(pads, default=0) < 0:
        raise node.fail(f"negative pads (cropping) {pads} are not supported")
    begin = dict(zip(axes, pads[: len(axes)], strict=True))
    end = dict(zip(axes, pads[len(axes) :], strict=True))
    widths: list[int] = []
    for axis in reversed(range(x.ndim)):
        widths += [begin.get(axis, 0), end.get(axis, 0)]
    if not isinstance(x, MPCTensor):
        x = np.asarray(x)
        pairs = [(begin.get(a, 0), end.get(a, 0)) for a in range(x.ndim)]
        return [np.pad(x, pairs, constant_values=value)]
    return [x.pad(widths, value=value)]


def _where(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Public condition; either branch may be private."""
    cond = public(node, xs[0], "the Where condition").astype(bool)
    a, b = xs[1], xs[2]
    if isinstance(a, MPCTensor):
        shape = np.broadcast_shapes(cond.shape, a.shape, np.shape(b))
        return [_broadcast(a, shape).where(np.broadcast_to(cond, shape), b)]
    if isinstance(b, MPCTensor):
        shape = np.broadcast_shapes(cond.shape, np.shape(a), b.shape)
        return [_broadcast(b, shape).where(np.broadcast_to(~cond, shape), a)]
    return [np.where(cond, a, b)]


def _broadcast(x: MPCTensor, shape: tuple[int, ...]) -> MPCTensor:
    if tuple(x.shape) == tuple(shape):
        return x
    lead = (1,) * (len(shape) - x.ndim)
    return x.reshape(*lead, *x.shape).expand(*shape)


def _clip(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Bounds public (attributes before opset 11, optional inputs after)."""
    x = float_input(node, xs[0])
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo = None if len(xs) < 2 or xs[1] is None else float(public(node, xs[1], "Clip min"))
        hi = None if len(xs) < 3 or xs[2] is None else float(public(node, xs[2], "Clip max"))
    if lo is None and hi is None:
        return [x]
    if lo is not None and hi is not None and lo > hi:
        raise node.fail(f"min {lo} is larger than max {hi}")
    if isinstance(x, MPCTensor):
        return [x.clamp(lo, hi)]
    return [np.clip(x, lo, hi)]


def _axes(node: OnnxNode, xs: list[Any]) -> list[int] | None:
    if len(xs) > 1 and xs[1] is not None:
        return ints(node, xs[1], "axes")
    axes = node.attr("axes")
    return None if axes is None else [int(a) for a in axes]


def _unsqueeze(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    axes = _axes(node, xs)
    if axes is None:
        raise node.fail("Unsqueeze needs axes")
    ndim = x.ndim + len(axes)
    shape = list(x.shape)
    for a in sorted(a % ndim for a in axes):
        shape.insert(a, 1)
    return [x.reshape(*shape) if isinstance(x, MPCTensor) else np.reshape(x, shape)]


def _squeeze(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    axes = _axes(node, xs)
    drop = {a % x.ndim for a in axes} if axes is not None else None
    shape = [d for i, d in enumerate(x.shape) if not (d == 1 and (drop is None or i in drop))]
    return [x.reshape(*shape) if isinstance(x, MPCTensor) else np.reshape(x, shape)]


# ONNX TensorProto data types this module can cast public values to
_CAST_TYPES = MappingProxyType(
    {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}
)


def _cast(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x, to = xs[0], int(node.attr("to", 1))
    if to not in _CAST_TYPES:
        raise node.fail(f"Cast to ONNX data type {to} is not supported")
    if isinstance(x, MPCTensor):
        if to not in (1, 10, 11):
            raise node.fail("a secret-shared tensor can only be cast to a float type")
        return [x]
    dtype = _CAST_TYPES[to]
    return [np.asarray(x).astype(np.float64 if dtype in (np.float32, np.float16) else dtype)]


def _slice(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    if node.opset < 10:
        starts, ends = list(node.attr("starts")), list(node.attr("ends"))
        axes_attr, steps = node.attr("axes"), [1] * len(starts)
        axes = list(range(len(starts))) if axes_attr is None else list(axes_attr)
    else:
        starts = ints(node, xs[1], "Slice starts")
        ends = ints(node, xs[2], "Slice ends")
        n = len(starts)
        axes = ints(node, xs[3], "Slice axes") if len(xs) > 3 and xs[3] is not None else []
        axes = axes or list(range(n))
        steps = ints(node, xs[4], "Slice steps") if len(xs) > 4 and xs[4] is not None else []
        steps = steps or [1] * n
    index: list[slice] = [slice(None)] * x.ndim
    big = 2**62
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        index[a % x.ndim] = slice(s if abs(s) < big else None, e if abs(e) < big else None, st)
    return [x[tuple(index)]]


def _constant(node: OnnxNode, xs: list[Any]) -> list[Any]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            value = np.asarray(node.attrs[key])
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(np.float64)
            return [value]
    raise node.fail(f"Constant attribute(s) {sorted(node.attrs)} are not supported")


OPS: Mapping[str, Handler] = MappingProxyType(
    {
        "Add": _add,
        "AveragePool": spatial_ops.avg_pool,
        "BatchNormalization": spatial_ops.batch_norm,
        "Cast": _cast,
        "Concat": _concat,
        "Constant": _constant,
        "Clip": _clip,
        "Conv": spatial_ops.conv,
        "ConvTranspose": spatial_ops.conv_transpose,
        "Div": _div,
        "Dropout": _dropout,
        "Erf": _erf,
        "Flatten": _flatten,
        "Gather": _gather,
        "Gelu": _gelu,
        "Gemm": _gemm,
        "GlobalAveragePool": spatial_ops.global_avg_pool,
        "Identity": _identity,
        "LayerNormalization": spatial_ops.layer_norm,
        "LogSoftmax": _log_softmax,
        "MatMul": _matmul_op,
        "MaxPool": spatial_ops.max_pool,
        "Mul": _mul,
        "Neg": _neg,
        "Pad": _pad,
        "Pow": _pow,
        "ReduceMean": _reduce_mean,
        "ReduceSum": _reduce_sum,
        "Relu": _relu,
        "Reshape": _reshape,
        "Shape": _shape,
        "Sigmoid": _sigmoid,
        "Slice": _slice,
        "Sqrt": _sqrt,
        "Softmax": _softmax,
        "Split": _split,
        "Squeeze": _squeeze,
        "Sub": _sub,
        "Tanh": _tanh,
        "Transpose": _transpose_op,
        "Unsqueeze": _unsqueeze,
        "Where": _where,
    }
)
