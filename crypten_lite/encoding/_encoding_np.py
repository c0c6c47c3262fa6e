"""Normative pure-numpy reference for the encoding kernels.

The compiled twin ``_encoding_cy`` must agree with every function here bit for bit. Inputs are
assumed validated (dtypes, shapes, parameters) by the public modules; kernels only signal data
problems by returning ``None`` and leave the error message to the caller.

Per-channel kernels see their data as a C-contiguous 3-D view ``(pre, C, post)``: channel ``c``
is ``x[:, c, :]`` and ``scale``/``zero_point``/``bias`` have length ``C`` (per-tensor: C = 1).

Floating-point recipes (IEEE double, round to nearest even, no fused multiply-add):
- fixed encode: ``rint(x * 2^p)`` (exact scaling by a power of two, then half-even rounding);
- fixed decode: ``float64(int64(r)) * 2^-p``;
- quantize: ``clamp(rint(x / s) + z, qmin, qmax)``; dequantize: ``(float64(q) - z) * s``;
- requantize: ``clamp(rint((acc * m[c] + bias[c]) / s_y) + z_y, lo, hi)`` with
  ``m[c] = s_x * s_w[c]`` computed by the caller.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "center",
    "dequantize",
    "fixed_decode",
    "fixed_encode_float",
    "fixed_encode_int",
    "quantize",
    "quantize_centered",
    "requantize",
]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
QArray = npt.NDArray[np.integer]


def fixed_encode_float(x: F64, precision: int, max_abs: float) -> U64 | None:
    """``int64(rint(x * 2^precision))`` as ring elements, or ``None`` if any element is
    non-finite or has ``|x| > max_abs``."""
    if x.size:
        hi = float(x.max())
        lo = float(x.min())
        if not (lo >= -max_abs and hi <= max_abs):  # also false for NaN
            return None
    scaled = np.multiply(x, float(2**precision), out=np.empty(x.shape, dtype=np.float64))
    np.rint(scaled, out=scaled)
    return scaled.astype(np.int64).view(np.uint64)


def fixed_encode_int(x: I64, precision: int, max_int: int) -> U64 | None:
    """``x << precision`` as ring elements (exact), or ``None`` if ``|x| > max_int``."""
    if x.size and (int(x.max()) > max_int or int(x.min()) < -max_int):
        return None
    out = np.left_shift(x, np.int64(precision), out=np.empty(x.shape, dtype=np.int64))
    return out.view(np.uint64)


def fixed_decode(r: U64, precision: int) -> F64:
    """Signed view of ``r`` times ``2^-precision`` as float64."""
    out = r.view(np.int64).astype(np.float64)
    out *= 2.0**-precision
    return out


def quantize(
    x: F64, scale: F64, zero_point: I64, qmin: int, qmax: int, dtype: np.dtype[np.integer]
) -> QArray | None:
    """``clamp(rint(x / s) + z, qmin, qmax)`` cast to ``dtype``; ``None`` if ``x`` has a NaN."""
    if np.isnan(x).any():
        return None
    with np.errstate(over="ignore"):  # |x / s| beyond float64 saturates like +-inf
        q = np.divide(x, scale[None, :, None])
    np.rint(q, out=q)
    q += zero_point.astype(np.float64)[None, :, None]
    np.clip(q, float(qmin), float(qmax), out=q)
    return q.astype(dtype)


def quantize_centered(x: F64, scale: F64, zero_point: I64, qmin: int, qmax: int) -> U64 | None:
    """Quantize then subtract the zero point: ``q - z`` sign-extended to ring elements."""
    if np.isnan(x).any():
        return None
    with np.errstate(over="ignore"):  # |x / s| beyond float64 saturates like +-inf
        q = np.divide(x, scale[None, :, None])
    np.rint(q, out=q)
    q += zero_point.astype(np.float64)[None, :, None]
    np.clip(q, float(qmin), float(qmax), out=q)
    return (q.astype(np.int64) - zero_point[None, :, None]).view(np.uint64)


def dequantize(q: QArray, scale: F64, zero_point: I64) -> F64:
    """``(float64(q) - z) * s``."""
    out = q.astype(np.float64)
    out -= zero_point.astype(np.float64)[None, :, None]
    out *= scale[None, :, None]
    return out


def center(q: QArray, zero_point: I64) -> F64:
    """``float64(q) - z`` (exact): the operand of the integer GEMM."""
    out = q.astype(np.float64)
    out -= zero_point.astype(np.float64)[None, :, None]
    return out


def requantize(
    acc: F64,
    multiplier: F64,
    bias: F64,
    out_scale: float,
    out_zero_point: int,
    lo: int,
    hi: int,
    dtype: np.dtype[np.integer],
) -> QArray:
    """``clamp(rint((acc * m[c] + bias[c]) / s_y) + z_y, lo, hi)`` cast to ``dtype``."""
    real = np.multiply(acc, multiplier[None, :, None])
    real += bias[None, :, None]
    with np.errstate(over="ignore"):
        real /= out_scale
    np.rint(real, out=real)
    real += float(out_zero_point)
    np.clip(real, float(lo), float(hi), out=real)
    return real.astype(dtype)
