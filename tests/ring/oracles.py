"""Slow, obviously-correct oracles for ring kernels (Python ints / numpy uint64 loops)."""

from __future__ import annotations

import numpy as np


def matmul_uint64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's own integer matmul: wraps mod 2^64, no BLAS, slow but exact."""
    return np.matmul(a, b)


def conv_nd(x, w, stride, padding, dilation, groups):
    """Direct loop cross-correlation over 1 or 2 spatial dims in ``x``'s dtype (mod 2^64 for
    uint64, plain arithmetic for floats)."""
    dims = x.ndim - 2
    if dims == 1:
        x = x[:, :, None, :]
        w = w[:, :, None, :]
        stride, padding, dilation = (1, stride[0]), (0, padding[0]), (1, dilation[0])
    n, _, h, wd = x.shape
    co, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, co, ho, wo), dtype=x.dtype)
    per_group = co // groups
    for b in range(n):
        for o in range(co):
            g = o // per_group
            for i in range(ho):
                for j in range(wo):
                    r0, c0 = i * stride[0], j * stride[1]
                    patch = xp[
                        b,
                        g * cg : (g + 1) * cg,
                        r0 : r0 + dilation[0] * (kh - 1) + 1 : dilation[0],
                        c0 : c0 + dilation[1] * (kw - 1) + 1 : dilation[1],
                    ]
                    out[b, o, i, j] = np.sum(patch * w[o], dtype=x.dtype)
    return out[:, :, 0, :] if dims == 1 else out
