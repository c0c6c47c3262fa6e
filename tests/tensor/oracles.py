"""Float64 oracles for tensor ops (direct loops; torch is optional and not needed)."""

from __future__ import annotations

import numpy as np

from tests.ring import oracles as ring_oracles


def conv2d(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Float cross-correlation by direct loops (the ring oracle, in float64)."""
    return ring_oracles.conv_nd(x, w, stride, padding, dilation, groups)


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
