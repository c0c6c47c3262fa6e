"""ONNX handlers of the spatial family: convolution (and its transpose), pooling (with
``ceil_mode`` and edge padding) and normalization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crypten_lite.nn import functional as F
from crypten_lite.nn.onnx_base import OnnxNode, float_input, spatial
from crypten_lite.tensor import MPCTensor, cat

__all__ = [
    "avg_pool",
    "batch_norm",
    "conv",
    "conv_transpose",
    "global_avg_pool",
    "layer_norm",
    "max_pool",
]


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


def conv(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x, w = float_input(node, xs[0]), xs[1]
    bias = xs[2] if len(xs) > 2 else None
    dims = len(w.shape) - 2
    if dims not in (1, 2):
        raise node.fail(f"{dims}-D convolution is not supported (only 1-D and 2-D)")
    strides, pads, dilations = spatial(node, dims)
    group = int(node.attr("group", 1))
    x, added = _batched(node, x, dims)
    conv = F.conv1d if dims == 1 else F.conv2d
    out = conv(x, w, bias, tuple(strides), tuple(pads), tuple(dilations), group)
    return [_unbatched(out, added)]


def conv_transpose(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x, w = float_input(node, xs[0]), xs[1]
    bias = xs[2] if len(xs) > 2 else None
    dims = len(w.shape) - 2
    if dims not in (1, 2):
        raise node.fail(f"{dims}-D ConvTranspose is not supported (only 1-D and 2-D)")
    if node.attr("output_shape") is not None:
        raise node.fail("the output_shape attribute is not supported (use pads/output_padding)")
    strides, pads, dilations = spatial(node, dims)
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
    x = float_input(node, xs[0])
    ks = list(node.attr("kernel_shape", []))
    dims = len(ks)
    if dims not in (1, 2):
        raise node.fail(f"only 1-D and 2-D pooling is supported, got kernel_shape {ks}")
    x, added = _batched(node, x, dims)
    strides, pads, dilations = spatial(node, dims)
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


def max_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.fail("the Indices output of MaxPool is not supported")
    return _pool(node, xs, "max")


def avg_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    return _pool(node, xs, "avg")


def global_avg_pool(node: OnnxNode, xs: list[Any]) -> list[Any]:
    x = float_input(node, xs[0])
    dims = tuple(range(2, x.ndim))
    if isinstance(x, MPCTensor):
        return [x.mean(dims, keepdim=True)]
    return [x.mean(axis=dims, keepdims=True)]


def batch_norm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    """Inference mode: the running statistics. ``training_mode=1`` (a training-mode export,
    e.g. ``track_running_stats=False``) or absent mean/var inputs: the batch statistics
    (mean and biased variance over the batch and spatial dims); the optional
    ``running_mean``/``running_var`` outputs follow ONNX (``momentum`` weights the old value,
    the variance is the biased one)."""
    x = float_input(node, xs[0])
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


def layer_norm(node: OnnxNode, xs: list[Any]) -> list[Any]:
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.fail("only the Y output of LayerNormalization is supported")
    x = float_input(node, xs[0])
    scale = xs[1]
    bias = xs[2] if len(xs) > 2 else None
    axis = int(node.attr("axis", -1)) % x.ndim
    eps = float(node.attr("epsilon", 1e-5))
    return [F.layer_norm(x, x.ndim - axis, scale, bias, eps)]
