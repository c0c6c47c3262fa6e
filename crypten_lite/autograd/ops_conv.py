"""Gradient rules of convolutions and pooling (torch layouts and semantics).

Backward costs (2 parties; 3+ parties add the dealer's truncation round where the forward has
one): conv2d/conv1d/conv_transpose2d: one Beaver convolution per private operand that needs
a gradient (input: the transposed convolution of ``g`` with the weight; weight: a convolution
of the input with ``g`` as the kernel), 1 round each, as the forward. avg/adaptive pooling:
local (one public scaling). max_pool2d: the forward's tournament bits route ``g`` to each
window's maximum, ``ceil(log2 kH kW)`` rounds of products with integer bits (no comparison;
the forward takes 4 rounds per level).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from crypten_lite.autograd.graph import record
from crypten_lite.autograd.ops_arith import unpack
from crypten_lite.autograd.values import Value, like, to_private
from crypten_lite.tensor import MPCTensor, plain
from crypten_lite.tensor import cat as mpc_cat
from crypten_lite.tensor.shape import int_tuple

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
]

Pair = tuple[int, int]


def _pair(value: Any, name: str) -> Pair:
    a, b = int_tuple(value, 2, name)
    return a, b


def _conv_values(x: Value, w: Value, st: Pair, pd: Pair, dl: Pair, groups: int) -> Value:
    if isinstance(w, MPCTensor) and not isinstance(x, MPCTensor):
        x = to_private(x, w)
    if isinstance(x, MPCTensor):
        return x.conv2d(w, None, st, pd, dl, groups)
    return plain.conv2d(x, np.asarray(w), st, pd, dl, groups)


def _conv_t_values(
    g: Value, w: Value, st: Pair, pd: Pair, op: Pair, dl: Pair, groups: int
) -> Value:
    if isinstance(w, MPCTensor) and not isinstance(g, MPCTensor):
        g = to_private(g, w)
    if isinstance(g, MPCTensor):
        return g.conv_transpose2d(w, None, st, pd, op, groups, dl)
    return plain.conv_transpose2d(g, np.asarray(w), st, pd, op, dl, groups)


def _weight_grad(
    x: Value, g: Value, kernel: Pair, st: Pair, pd: Pair, dl: Pair, groups: int
) -> Value:
    """``d loss / d weight`` of ``conv2d(x, weight)`` for the output gradient ``g``: per group,
    the convolution of ``x^T`` (channels as batch) with ``g^T`` as the kernel, stride and
    dilation swapped, cropped to the kernel (one Beaver convolution when both are private)."""
    if not isinstance(x, MPCTensor) and not isinstance(g, MPCTensor):
        return plain.conv2d_weight_grad(x, g, kernel, st, pd, dl, groups)
    c, o = x.shape[1], g.shape[1]
    parts: list[MPCTensor] = []
    for k in range(groups):
        xs = x[:, k * (c // groups) : (k + 1) * (c // groups)]
        gs = g[:, k * (o // groups) : (k + 1) * (o // groups)]
        xt = xs.transpose(0, 1) if isinstance(xs, MPCTensor) else np.swapaxes(xs, 0, 1)
        gt = gs.transpose(0, 1) if isinstance(gs, MPCTensor) else np.swapaxes(gs, 0, 1)
        if not isinstance(xt, MPCTensor):
            xt = to_private(np.ascontiguousarray(xt), gt)  # type: ignore[arg-type]
        out = xt.conv2d(
            gt if isinstance(gt, MPCTensor) else np.ascontiguousarray(gt),
            None,
            stride=dl,
            padding=pd,
            dilation=st,
        )
        parts.append(out[:, :, : kernel[0], : kernel[1]].transpose(0, 1))
    return parts[0] if groups == 1 else mpc_cat(parts, 0)


def _output_padding(
    size: tuple[int, ...], out: tuple[int, ...], k: Pair, st: Pair, pd: Pair, dl: Pair
) -> Pair:
    """The output_padding that makes the transposed convolution of ``out`` have ``size``."""
    extra = [
        size[i] - ((out[i] - 1) * st[i] - 2 * pd[i] + dl[i] * (k[i] - 1) + 1) for i in range(2)
    ]
    return extra[0], extra[1]


def conv2d(
    x: Any,
    weight: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Variable:
    """torch conv2d without bias on ``(N, C, H, W)`` (bias: add it after)."""
    vx, sx = unpack(x, "conv2d input")
    vw, sw = unpack(weight, "conv2d weight")
    if vx.ndim != 4 or vw.ndim != 4:
        raise ValueError(
            f"conv2d expects (N, C, H, W) input and 4-D weight, got {vx.shape}, {vw.shape}"
        )
    st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    out = _conv_values(vx, vw, st, pd, dl, groups)
    k: Pair = (int(vw.shape[2]), int(vw.shape[3]))
    op = _output_padding(tuple(vx.shape[2:]), tuple(out.shape[2:]), k, st, pd, dl)
    wants_x = sx is not None and sx.requires_grad
    wants_w = sw is not None and sw.requires_grad

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        gx = _conv_t_values(g, vw, st, pd, op, dl, groups) if wants_x else None
        gw = _weight_grad(vx, g, k, st, pd, dl, groups) if wants_w else None
        return gx, gw

    return record(out, (sx, sw), backward, "Conv2d")


def conv_transpose2d(
    x: Any,
    weight: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Variable:
    """torch conv_transpose2d without bias; weight ``(C_in, C_out/groups, kH, kW)``."""
    vx, sx = unpack(x, "conv_transpose2d input")
    vw, sw = unpack(weight, "conv_transpose2d weight")
    if vx.ndim != 4 or vw.ndim != 4:
        raise ValueError("conv_transpose2d expects (N, C, H, W) input and 4-D weight")
    st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    op = _pair(output_padding, "output_padding")
    out = _conv_t_values(vx, vw, st, pd, op, dl, groups)
    k: Pair = (int(vw.shape[2]), int(vw.shape[3]))
    wants_x = sx is not None and sx.requires_grad
    wants_w = sw is not None and sw.requires_grad

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        gx = _conv_values(g, vw, st, pd, dl, groups) if wants_x else None
        gw = _weight_grad(g, vx, k, st, pd, dl, groups) if wants_w else None
        return gx, gw

    return record(out, (sx, sw), backward, "ConvTranspose2d")


def _as_4d(v: Value) -> Value:
    return v.reshape((1, *v.shape)) if v.ndim == 3 else v


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Variable:
    """torch avg_pool2d (count_include_pad); backward spreads ``g / (kH kW)`` over each
    window: a transposed depthwise convolution with a public kernel (local)."""
    v, src = unpack(x, "avg_pool2d")
    if v.ndim not in (3, 4):
        raise ValueError(f"avg_pool2d expects (N, C, H, W) or (C, H, W), got {v.shape}")
    ks = _pair(kernel_size, "kernel_size")
    st = ks if stride is None else _pair(stride, "stride")
    pd = _pair(padding, "padding")
    out: Value
    if isinstance(v, MPCTensor):
        out = v.avg_pool2d(ks, st, pd)
    else:
        out = np.asarray(plain.windows(v, ks, st, pd, (1, 1), 0.0).mean(axis=(-2, -1)))
    shape = tuple(v.shape)
    channels = shape[-3]
    kernel = np.full((channels, 1, *ks), 1.0 / (ks[0] * ks[1]))
    op = _output_padding(shape[-2:], tuple(out.shape[-2:]), ks, st, pd, (1, 1))

    def backward(g: Value) -> tuple[Value]:
        gx = _conv_t_values(_as_4d(g), kernel, st, pd, op, (1, 1), channels)
        return (gx.reshape(shape),)

    return record(out, (src,), backward, "AvgPool2d")


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Variable:
    """torch adaptive_avg_pool2d; backward: ``g / count`` scattered over each window."""
    v, src = unpack(x, "adaptive_avg_pool2d")
    out_h, out_w = _pair(output_size, "output_size")
    h, w = int(v.shape[-2]), int(v.shape[-1])
    rows, cols = plain.adaptive_windows(h, out_h), plain.adaptive_windows(w, out_w)
    out: Value
    if isinstance(v, MPCTensor):
        out = v.adaptive_avg_pool2d((out_h, out_w))
    else:
        out = np.empty((*v.shape[:-2], out_h, out_w))
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                out[..., i, j] = v[..., r0:r1, c0:c1].mean(axis=(-2, -1))
    counts = np.array([[(r1 - r0) * (c1 - c0) for c0, c1 in cols] for r0, r1 in rows], float)
    shape = tuple(v.shape)

    def backward(g: Value) -> tuple[Value]:
        scaled = g * (1.0 / counts)
        if isinstance(scaled, MPCTensor):
            acc = np.zeros(shape, dtype=np.uint64)
            share = scaled.share
            for i, (r0, r1) in enumerate(rows):
                for j, (c0, c1) in enumerate(cols):
                    acc[..., r0:r1, c0:c1] += share[..., i, j, None, None]
            return (like(scaled, acc),)
        plain_acc = np.zeros(shape)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                plain_acc[..., r0:r1, c0:c1] += scaled[..., i, j, None, None]
        return (plain_acc,)

    return record(out, (src,), backward, "AdaptiveAvgPool2d")


def _max_pool_np(
    v: np.ndarray[Any, np.dtype[np.float64]], ks: Pair, st: Pair, pd: Pair, dl: Pair
) -> tuple[Value, Any]:
    """Max pooling of a public array and the scatter plan of its backward."""
    win = plain.windows(v, ks, st, pd, dl, -np.inf)
    flat = win.reshape(*win.shape[:-2], ks[0] * ks[1])
    arg = np.argmax(flat, axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    oh, ow = out.shape[-2:]
    rows = (np.arange(oh)[:, None] * st[0] + (arg // ks[1]) * dl[0])
    cols = (np.arange(ow)[None, :] * st[1] + (arg % ks[1]) * dl[1])
    return np.asarray(out, dtype=np.float64), (rows, cols)


def max_pool2d(
    x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
) -> Variable:
    """torch max_pool2d; backward routes ``g`` to each window's maximum with the forward's
    tournament bits (see module doc)."""
    v, src = unpack(x, "max_pool2d")
    if v.ndim not in (3, 4):
        raise ValueError(f"max_pool2d expects (N, C, H, W) or (C, H, W), got {v.shape}")
    ks = _pair(kernel_size, "kernel_size")
    st = ks if stride is None else _pair(stride, "stride")
    pd, dl = _pair(padding, "padding"), _pair(dilation, "dilation")
    shape = tuple(v.shape)
    if isinstance(v, MPCTensor):
        out, route = v.max_pool2d_with_route(ks, st, pd, dl)

        def backward(g: Value) -> tuple[Value]:
            return (route.backward(to_private(g, out)),)

        return record(out, (src,), backward, "MaxPool2d")

    plain_out, (rows, cols) = _max_pool_np(v, ks, st, pd, dl)

    def backward_np(g: Value) -> tuple[Value]:
        padded = (*shape[:-2], shape[-2] + 2 * pd[0], shape[-1] + 2 * pd[1])
        lead = np.indices(rows.shape)[:-2]
        if isinstance(g, MPCTensor):
            acc = np.zeros(padded, dtype=np.uint64)
            np.add.at(acc, (*lead, rows, cols), g.share)
            return (like(g, acc[..., pd[0] : pd[0] + shape[-2], pd[1] : pd[1] + shape[-1]]),)
        plain_acc = np.zeros(padded)
        np.add.at(plain_acc, (*lead, rows, cols), g)
        return (plain_acc[..., pd[0] : pd[0] + shape[-2], pd[1] : pd[1] + shape[-1]],)

    return record(plain_out, (src,), backward_np, "MaxPool2d")
