"""ONNX operator handlers for :mod:`crypten_lite.nn.onnx_import`.

Every handler takes the parsed :class:`OnnxNode` and its input values (numpy arrays,
MPCTensors, or ``None`` for an absent optional input) and returns the list of its outputs.
Values that describe shapes (``Shape``, ``Gather``, ``Reshape``'s target, ``Split`` sizes,
...) are public numpy integer arrays: shapes of secret-shared tensors are public, so
the shape subgraphs torch exports are evaluated on them at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from crypten_lite.nn import functional as F
from crypten_lite.tensor import MPCTensor, cat

__all__ = ["OPS", "Handler", "OnnxNode", "UnsupportedOperatorError"]


class UnsupportedOperatorError(ValueError):
    """An ONNX node whose op (or attribute setting) crypten_lite cannot evaluate."""


@dataclass(frozen=True)
class OnnxNode:
    """One graph node with its attributes already converted to Python/numpy values."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    opset: int = 17

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def fail(self, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"ONNX node {self.name!r} ({self.op_type}): {detail}")


Handler = Callable[[OnnxNode, list[Any]], list[Any]]


# -- helpers -------------------------------------------------------------------------------
def _public(node: OnnxNode, value: Any, what: str) -> np.ndarray[Any, Any]:
    if isinstance(value, MPCTensor) or value is None:
        raise node.fail(f"{what} must be a public constant (initializer, Constant or shape)")
    return np.asarray(value)


def _ints(node: OnnxNode, value: Any, what: str) -> list[int]:
    return [int(v) for v in _public(node, value, what).reshape(-1)]


def _matmul(a: Any, b: Any) -> Any:
    if isinstance(a, MPCTensor):
        return a.matmul(b)
    if isinstance(b, MPCTensor):
        return b.rmatmul(a)
    return np.matmul(a, b)


def _transpose(x: Any, perm: Sequence[int]) -> Any:
    if isinstance(x, MPCTensor):
        return x.permute(*perm)
    return np.transpose(x, perm)


def _float_input(node: OnnxNode, x: Any) -> Any:
    if isinstance(x, MPCTensor):
        return x
    return F.as_input(x, f"ONNX node {node.name!r} ({node.op_type})")


def _spatial(node: OnnxNode, dims: int) -> tuple[list[int], list[int], list[int]]:
    """strides, symmetric pads and dilations for a ``dims``-D conv/pool node."""
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise node.fail(f"auto_pad={auto_pad!r} is not supported (use explicit pads)")
    strides = list(node.attr("strides", [1] * dims))
    dilations = list(node.attr("dilations", [1] * dims))
    pads = list(node.attr("pads", [0] * (2 * dims)))
    if pads[:dims] != pads[dims:]:
        raise node.fail(f"asymmetric pads {pads} are not supported")
    return strides, pads[:dims], dilations


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
    x = _float_input(node, xs[0])
    return [x.sqrt() if isinstance(x, MPCTensor) else np.sqrt(x)]


def _pow(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    exponent = float(_public(node, xs[1], "the Pow exponent").reshape(-1)[0])
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
    return [_matmul(xs[0], xs[1])]


def _gemm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    if node.attr("transA", 0):
        a = _transpose(a, (1, 0))
    if node.attr("transB", 0):
        b = _transpose(b, (1, 0))
    out = _matmul(a, b)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    if alpha != 1.0:
        out = out * alpha
    if c is not None:
        out = out + (c if beta == 1.0 else c * beta)
    return [out]


# -- activations ---------------------------------------------------------------------------
def _relu(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.relu(_float_input(node, xs[0]))]


def _sigmoid(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.sigmoid(_float_input(node, xs[0]))]


def _tanh(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.tanh(_float_input(node, xs[0]))]


def _erf(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = _float_input(node, xs[0])
    if isinstance(x, MPCTensor):
        return [x.erf()]
    return [np.vectorize(math.erf, otypes=[np.float64])(x)]


def _gelu(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return [F.gelu(_float_input(node, xs[0]), str(node.attr("approximate", "none")))]


def _softmax_like(node: OnnxNode, xs: list[Any], log: bool) -> list[Any]:
    x = _float_input(node, xs[0])
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


# -- convolution, pooling, normalization ---------------------------------------------------
def _reshaped(x: Any, shape: Sequence[int]) -> Any:
    return x.reshape(*shape) if not isinstance(x, np.ndarray) else x.reshape(tuple(shape))


def _batched(node: OnnxNode, x: Any, dims: int) -> tuple[Any, bool]:
    """``x`` with a batch dim (an unbatched ``(C, *spatial)`` input gets one), and whether
    one was added."""
    if x.ndim == dims + 2:
        return x, False
    if x.ndim == dims + 1:
        return _reshaped(x, (1, *x.shape)), True
    raise node.fail(
        f"expected a {dims}-D input (N, C, ...) or (C, ...), got shape {tuple(x.shape)}"
    )


def _unbatched(x: Any, added: bool) -> Any:
    return _reshaped(x, tuple(x.shape[1:])) if added else x


def _conv(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x, w = _float_input(node, xs[0]), xs[1]
    bias = xs[2] if len(xs) > 2 else None
    dims = len(w.shape) - 2
    if dims not in (1, 2):
        raise node.fail(f"{dims}-D convolution is not supported (only 1-D and 2-D)")
    strides, pads, dilations = _spatial(node, dims)
    group = int(node.attr("group", 1))
    x, added = _batched(node, x, dims)
    conv = F.conv1d if dims == 1 else F.conv2d
    out = conv(x, w, bias, tuple(strides), tuple(pads), tuple(dilations), group)
    return [_unbatched(out, added)]


def _conv_transpose(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x, w = _float_input(node, xs[0]), xs[1]
    bias = xs[2] if len(xs) > 2 else None
    dims = len(w.shape) - 2
    if dims not in (1, 2):
        raise node.fail(f"{dims}-D ConvTranspose is not supported (only 1-D and 2-D)")
    if node.attr("output_shape") is not None:
        raise node.fail("the output_shape attribute is not supported (use pads/output_padding)")
    strides, pads, dilations = _spatial(node, dims)
    output_padding = list(node.attr("output_padding", [0] * dims))
    group = int(node.attr("group", 1))
    x, added = _batched(node, x, dims)
    if dims == 1:  # as a 2-D transposed convolution over a height-1 image
        x = _reshaped(x, (x.shape[0], x.shape[1], 1, x.shape[2]))
        w = _reshaped(w, (w.shape[0], w.shape[1], 1, w.shape[2]))
        strides, pads, dilations = [1, *strides], [0, *pads], [1, *dilations]
        output_padding = [0, *output_padding]
    if any(2 * p > d * (k - 1) for p, d, k in zip(pads, dilations, w.shape[2:], strict=True)):
        raise node.fail(f"pads {pads} larger than dilation * (kernel - 1) are not supported")
    if any(o >= max(s, d) for o, s, d in zip(output_padding, strides, dilations, strict=True)):
        raise node.fail(f"output_padding {output_padding} must be smaller than stride or dilation")
    out = F.conv_transpose2d(
        x, w, bias, tuple(strides), tuple(pads), tuple(output_padding), group, tuple(dilations)
    )
    if dims == 1:
        out = _reshaped(out, (out.shape[0], out.shape[1], out.shape[3]))
    return [_unbatched(out, added)]


def _ceil_extra(
    node: OnnxNode, sizes: Sequence[int], ks: Sequence[int], st: Sequence[int],
    pads: Sequence[int], dl: Sequence[int],
) -> list[int]:
    """Cells to add after the end of each spatial dim so that floor-mode pooling gives the
    ``ceil_mode=1`` output size (torch's rule: the last window starts inside the input or
    the left padding)."""
    extra = []
    for size, k, s, p, d in zip(sizes, ks, st, pads, dl, strict=True):
        span = size + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise node.fail(f"the kernel {list(ks)} is larger than the padded input")
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
        extra.append(max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p)))
    return extra


def _edge_pad(x: Any, axis: int, before: int, after: int) -> Any:
    """Pad ``axis`` by repeating its first/last slice (a max over a window that contains
    a real element is unchanged by repeating that window's edge element)."""
    if before == 0 and after == 0:
        return x
    if isinstance(x, np.ndarray):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (before, after)
        return np.pad(x, widths, mode="edge")
    lead = (slice(None),) * axis
    first, last = x[(*lead, slice(0, 1))], x[(*lead, slice(-1, None))]
    return cat([*([first] * before), x, *([last] * after)], dim=axis)


def _pool(node: OnnxNode, xs: list[Any], kind: str) -> list[Any]:
    x = _float_input(node, xs[0])
    ks = list(node.attr("kernel_shape", []))
    dims = len(ks)
    if dims not in (1, 2):
        raise node.fail(f"only 1-D and 2-D pooling is supported, got kernel_shape {ks}")
    x, added = _batched(node, x, dims)
    strides, pads, dilations = _spatial(node, dims)
    ceil = bool(node.attr("ceil_mode", 0))
    if dims == 1:  # as 2-D pooling over a height-1 image
        ks, strides, pads, dilations = [1, *ks], [1, *strides], [0, *pads], [1, *dilations]
        x = _reshaped(x, (x.shape[0], x.shape[1], 1, x.shape[2]))
    sizes = [int(n) for n in x.shape[2:]]
    extra = _ceil_extra(node, sizes, ks, strides, pads, dilations) if ceil else [0, 0]
    if kind == "max":
        if any(extra) and any(d != 1 for d in dilations):
            raise node.fail("ceil_mode=1 with dilations is not supported")
        if any(extra):  # pads and the ceil cells as edge copies: the max is unchanged
            for axis in (2, 3):
                x = _edge_pad(x, axis, pads[axis - 2], pads[axis - 2] + extra[axis - 2])
            pads = [0, 0]
        out = F.max_pool2d(x, tuple(ks), tuple(strides), tuple(pads), tuple(dilations))
    else:
        if any(d != 1 for d in dilations):
            raise node.fail("dilated AveragePool is not supported")
        include_pad = bool(node.attr("count_include_pad", 0))
        if not any(extra) and (include_pad or not any(pads)):
            out = F.avg_pool2d(x, tuple(ks), tuple(strides), tuple(pads))
        else:  # window sums over zero padding, divided by the public per-window counts
            full = [(p, p + e) for p, e in zip(pads, extra, strict=True)]
            padded = F.constant_pad(x, (*full[1], *full[0]))
            ones = np.ones(sizes)
            if include_pad:
                ones = np.pad(ones, [(p, p) for p in pads], constant_values=1.0)
                counted = np.pad(ones, [(0, e) for e in extra])
            else:
                counted = np.pad(ones, full)
            # mean over the window of the 0/1 "counted" mask: count / window area
            fraction = F.avg_pool2d(counted[None, None], tuple(ks), tuple(strides), 0)
            scale = 1.0 / np.asarray(fraction, dtype=np.float64)[0, 0]
            out = F.avg_pool2d(padded, tuple(ks), tuple(strides), 0) * scale
    if dims == 1:
        out = _reshaped(out, (out.shape[0], out.shape[1], out.shape[3]))
    return [_unbatched(out, added)]


def _max_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.fail("the Indices output of MaxPool is not supported")
    return _pool(node, xs, "max")


def _avg_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _pool(node, xs, "avg")


def _global_avg_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = _float_input(node, xs[0])
    dims = tuple(range(2, x.ndim))
    if isinstance(x, MPCTensor):
        return [x.mean(dims, keepdim=True)]
    return [x.mean(axis=dims, keepdims=True)]


def _batch_norm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Inference mode: the running statistics. ``training_mode=1`` (a training-mode export,
    e.g. ``track_running_stats=False``) or absent mean/var inputs: the batch statistics
    (mean and biased variance over the batch and spatial dims); the optional
    ``running_mean``/``running_var`` outputs follow ONNX (``momentum`` weights the old value,
    the variance is the biased one)."""
    x = _float_input(node, xs[0])
    scale, bias = xs[1], xs[2]
    mean = xs[3] if len(xs) > 3 else None
    var = xs[4] if len(xs) > 4 else None
    eps = float(node.attr("epsilon", 1e-5))
    if not node.attr("training_mode", 0) and mean is not None and var is not None:
        if len(node.outputs) > 1 and any(node.outputs[1:]):
            raise node.fail("inference-mode BatchNormalization has only the Y output")
        return [F.batch_norm(x, mean, var, scale, bias, eps)]
    if x.ndim < 2:
        raise node.fail(f"expected an input (N, C, ...), got shape {tuple(x.shape)}")
    axes = (0, *range(2, x.ndim))
    if isinstance(x, MPCTensor):
        batch_mean = x.mean(axes)
        centered = x - batch_mean.reshape(*((1, -1) + (1,) * (x.ndim - 2)))
        batch_var = (centered * centered).mean(axes)
    else:
        batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
    out = F.batch_norm(x, batch_mean, batch_var, scale, bias, eps)
    results: list[Any] = [out]
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        if mean is None or var is None:
            raise node.fail("running_mean/running_var outputs need the mean and var inputs")
        m = float(node.attr("momentum", 0.9))
        results += [mean * m + batch_mean * (1 - m), var * m + batch_var * (1 - m)]
    return results


def _layer_norm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.fail("only the Y output of LayerNormalization is supported")
    x = _float_input(node, xs[0])
    scale = xs[1]
    bias = xs[2] if len(xs) > 2 else None
    axis = int(node.attr("axis", -1)) % x.ndim
    eps = float(node.attr("epsilon", 1e-5))
    return [F.layer_norm(x, x.ndim - axis, scale, bias, eps)]


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
    target = _ints(node, xs[1], "the Reshape shape")
    if not node.attr("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(*target) if isinstance(x, MPCTensor) else np.reshape(x, target)]


def _transpose_op(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    perm = node.attr("perm")
    return [_transpose(x, list(range(x.ndim))[::-1] if perm is None else list(perm))]


def _split(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = xs[0]
    axis = int(node.attr("axis", 0)) % x.ndim
    length = x.shape[axis]
    if len(xs) > 1 and xs[1] is not None:
        sizes = _ints(node, xs[1], "the Split sizes")
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
    indices = _public(node, xs[1], "Gather indices")
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
        pads = _ints(node, xs[1], "Pad pads")
        given = xs[2] if len(xs) > 2 else None
        value = 0.0 if given is None else float(_public(node, given, "Pad constant_value"))
    axes = _ints(node, xs[3], "Pad axes") if len(xs) > 3 and xs[3] is not None else None
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
    cond = _public(node, xs[0], "the Where condition").astype(bool)
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
    x = _float_input(node, xs[0])
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo = None if len(xs) < 2 or xs[1] is None else float(_public(node, xs[1], "Clip min"))
        hi = None if len(xs) < 3 or xs[2] is None else float(_public(node, xs[2], "Clip max"))
    if lo is None and hi is None:
        return [x]
    if lo is not None and hi is not None and lo > hi:
        raise node.fail(f"min {lo} is larger than max {hi}")
    if isinstance(x, MPCTensor):
        return [x.clamp(lo, hi)]
    return [np.clip(x, lo, hi)]


def _axes(node: OnnxNode, xs: list[Any]) -> list[int] | None:
    if len(xs) > 1 and xs[1] is not None:
        return _ints(node, xs[1], "axes")
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
        starts = _ints(node, xs[1], "Slice starts")
        ends = _ints(node, xs[2], "Slice ends")
        n = len(starts)
        axes = _ints(node, xs[3], "Slice axes") if len(xs) > 3 and xs[3] is not None else []
        axes = axes or list(range(n))
        steps = _ints(node, xs[4], "Slice steps") if len(xs) > 4 and xs[4] is not None else []
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
        "AveragePool": _avg_pool,
        "BatchNormalization": _batch_norm,
        "Cast": _cast,
        "Concat": _concat,
        "Constant": _constant,
        "Clip": _clip,
        "Conv": _conv,
        "ConvTranspose": _conv_transpose,
        "Div": _div,
        "Dropout": _dropout,
        "Erf": _erf,
        "Flatten": _flatten,
        "Gather": _gather,
        "Gelu": _gelu,
        "Gemm": _gemm,
        "GlobalAveragePool": _global_avg_pool,
        "Identity": _identity,
        "LayerNormalization": _layer_norm,
        "LogSoftmax": _log_softmax,
        "MatMul": _matmul_op,
        "MaxPool": _max_pool,
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
