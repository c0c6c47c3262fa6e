"""Float64 reference implementations, on plain numpy arrays, of the windowed ops that
``MPCTensor`` implements on shares (torch semantics and layouts).

``nn.functional`` runs plaintext models with them and ``autograd`` differentiates plaintext
tensors with them, so a plaintext model and its encrypted twin share one definition of each
op. All functions are exact in float64 (sliding windows and ``einsum``; no approximation).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "adaptive_windows",
    "conv2d",
    "conv2d_weight_grad",
    "conv_transpose2d",
    "windows",
]

F64 = npt.NDArray[np.float64]


def windows(
    x: F64,
    ks: tuple[int, ...],
    st: tuple[int, ...],
    pd: tuple[int, ...],
    dl: tuple[int, ...],
    fill: float,
) -> F64:
    """``(..., oH, oW, kH, kW)`` windows of the last two dims after padding with ``fill``."""
    pads = [(0, 0)] * (x.ndim - 2) + [(pd[0], pd[0]), (pd[1], pd[1])]
    xp = np.pad(x, pads, constant_values=fill)
    eh, ew = dl[0] * (ks[0] - 1) + 1, dl[1] * (ks[1] - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(-2, -1))
    return np.asarray(win[..., :: st[0], :: st[1], :: dl[0], :: dl[1]])


def conv2d(
    x: F64,
    w: F64,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> F64:
    """torch's conv2d (no bias) on ``(N, C, H, W)`` with weight ``(O, C/groups, kH, kW)``."""
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    win = windows(x, (kh, kw), stride, padding, dilation, 0.0)
    oh, ow = win.shape[2], win.shape[3]
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngcyxhw,gochw->ngoyx", win, wg, optimize=True)
    return np.asarray(out.reshape(n, o, oh, ow), dtype=np.float64)


def conv_transpose2d(
    g: F64,
    w: F64,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> F64:
    """torch's conv_transpose2d (no bias) on ``(N, C_in, H, W)`` with weight
    ``(C_in, C_out/groups, kH, kW)``: every input element scatters ``x * w`` to its window."""
    n, c_in, h, wd = g.shape
    _, cog, kh, kw = w.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    full = np.zeros(
        (n, groups * cog, oh + 2 * padding[0], ow + 2 * padding[1]), dtype=np.float64
    )
    gg = g.reshape(n, groups, c_in // groups, h, wd)
    wg = w.reshape(groups, c_in // groups, cog, kh, kw)
    for i in range(kh):
        for j in range(kw):
            part = np.einsum("ngcyx,gco->ngoyx", gg, wg[..., i, j], optimize=True)
            r0, c0 = i * dilation[0], j * dilation[1]
            full[
                :,
                :,
                r0 : r0 + (h - 1) * stride[0] + 1 : stride[0],
                c0 : c0 + (wd - 1) * stride[1] + 1 : stride[1],
            ] += part.reshape(n, groups * cog, h, wd)
    return np.asarray(full[:, :, padding[0] : padding[0] + oh, padding[1] : padding[1] + ow])


def conv2d_weight_grad(
    x: F64,
    g: F64,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> F64:
    """``d loss / d weight`` of :func:`conv2d` for the output gradient ``g``:
    ``gw[o, c, i, j] = sum_(n, p, q) g[n, o, p, q] xpad[n, c, p s + i d, q s + j d]``."""
    n, c, _, _ = x.shape
    o = g.shape[1]
    win = windows(x, kernel, stride, padding, dilation, 0.0)
    oh, ow = g.shape[2], g.shape[3]
    win = win[:, :, :oh, :ow].reshape(n, groups, c // groups, oh, ow, *kernel)
    gg = g.reshape(n, groups, o // groups, oh, ow)
    out = np.einsum("ngcyxhw,ngoyx->gochw", win, gg, optimize=True)
    return np.asarray(out.reshape(o, c // groups, *kernel), dtype=np.float64)


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows ``[floor(i size / out), ceil((i+1) size / out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

