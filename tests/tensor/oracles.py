"""Float64 oracles for tensor ops (direct loops; torch is optional and not needed)."""

from __future__ import annotations

import numpy as np


def conv2d(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    n, _, h, wd = x.shape
    co, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, co, ho, wo))
    per = co // groups
    for o in range(co):
        g = o // per
        for i in range(ho):
            for j in range(wo):
                r, q = i * stride[0], j * stride[1]
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    r : r + dilation[0] * (kh - 1) + 1 : dilation[0],
                    q : q + dilation[1] * (kw - 1) + 1 : dilation[1],
                ]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    return out


def conv_transpose2d(
    x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1, dilation=(1, 1)
):
    """Scatter-add definition: each input pixel adds its kernel-weighted patch to the output."""
    n, c_in, h, wd = x.shape
    _, c_out_g, kh, kw = w.shape
    full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    out = np.zeros((n, c_out_g * groups, full_h, full_w))
    cin_g = c_in // groups
    for ci in range(c_in):
        g = ci // cin_g
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for b in range(kw):
                        out[
                            :,
                            g * c_out_g : (g + 1) * c_out_g,
                            i * stride[0] + a * dilation[0],
                            j * stride[1] + b * dilation[1],
                        ] += x[:, ci, i, j][:, None] * w[ci, :, a, b]
    return out[:, :, padding[0] : full_h - padding[0], padding[1] : full_w - padding[1]]
