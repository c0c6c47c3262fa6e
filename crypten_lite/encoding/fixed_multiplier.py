"""Integer-only requantization with a fixed-point multiplier (gemmlowp / TFLite / QNNPACK).

A real multiplier ``M = s_x * s_w / s_y`` becomes ``(m0, shift)`` with ``m0`` a Q31 integer in
``[2^30, 2^31)`` and ``M ~= m0 * 2^(shift - 31)``; an int32 accumulator is then rescaled by
``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT`` (round half away from zero),
exactly as TFLite's ``MultiplyByQuantizedMultiplier``. This is the form that maps onto a
secret-shared ring (one public multiplication, one truncation; SecureML's truncation, Mohassel
and Zhang 2017; the multiplier as in Jacob et al., CVPR 2018). In the
integer pipeline a bias is pre-quantized to int32 with scale ``s_x * s_w`` and added to the
accumulator before calling :func:`requantize_fixed_point`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding.qparams import QDTypeLike, normalize_qdtype
from crypten_lite.encoding.quantize import resolve_range
from crypten_lite.errors import EncodingError, EncodingRangeError

__all__ = ["multiply_by_quantized_multiplier", "quantize_multiplier", "requantize_fixed_point"]

I64 = npt.NDArray[np.int64]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """``(m0, shift)`` with ``real_multiplier ~= m0 * 2^(shift - 31)`` (TFLite's recipe).

    ``m0`` lies in ``[2^30, 2^31)`` (0 for a zero multiplier); ``shift`` is the exponent of
    ``frexp`` (negative means a right shift). Multipliers below ``2^-32`` flush to ``(0, 0)``.
    """
    value = float(real_multiplier)
    if not math.isfinite(value) or value < 0.0:
        raise EncodingError("real_multiplier must be finite and >= 0")
    if value == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(value)
    q_fixed = math.floor(mantissa * 2.0**31 + 0.5)  # round half away from zero (q > 0)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise EncodingRangeError("real_multiplier must be below 2^30")
    return int(q_fixed), int(shift)


def _rounding_doubling_high_mul(a: I64, b: I64) -> I64:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64."""
    ab = a * b
    t = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = np.where(t >= 0, t >> np.int64(31), -((-t) >> np.int64(31)))  # C division
    saturate = (a == _INT32_MIN) & (b == _INT32_MIN)
    return np.where(saturate, np.int64(_INT32_MAX), high)


def _rounding_divide_by_pot(x: I64, exponent: I64) -> I64:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero."""
    mask = (np.int64(1) << exponent) - np.int64(1)
    remainder = x & mask
    threshold = (mask >> np.int64(1)) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(
    x: npt.ArrayLike, multiplier: npt.ArrayLike, shift: npt.ArrayLike
) -> I64:
    """TFLite ``MultiplyByQuantizedMultiplier`` elementwise (``multiplier``/``shift`` broadcast
    against ``x``, e.g. one per output channel on the last axis). Values are int32."""
    xs = np.asarray(x)
    m = np.asarray(multiplier)
    s = np.asarray(shift)
    for name, arr in (("x", xs), ("multiplier", m), ("shift", s)):
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers")
    xi, mi, si = (a.astype(np.int64) for a in (xs, m, s))
    if xi.size and (int(xi.min()) < _INT32_MIN or int(xi.max()) > _INT32_MAX):
        raise EncodingRangeError("x must lie in the int32 range")
    if mi.size and (int(mi.min()) < 0 or int(mi.max()) > _INT32_MAX):
        raise EncodingError("multiplier must lie in [0, 2^31 - 1]")
    if si.size and (int(si.min()) < -31 or int(si.max()) > 30):
        raise EncodingError("shift must lie in [-31, 30]")
    left = np.maximum(si, 0)
    right = np.maximum(-si, 0)
    shifted = xi << left
    if shifted.size and (int(shifted.min()) < _INT32_MIN or int(shifted.max()) > _INT32_MAX):
        raise EncodingRangeError("x * 2^shift overflows int32")
    return _rounding_divide_by_pot(_rounding_doubling_high_mul(shifted, mi), right)


def requantize_fixed_point(
    acc: npt.ArrayLike,
    multiplier: npt.ArrayLike,
    shift: npt.ArrayLike,
    out_zero_point: int,
    out_dtype: QDTypeLike = "quint8",
    *,
    relu: bool = False,
    quant_min: int | None = None,
    quant_max: int | None = None,
) -> npt.NDArray[np.integer]:
    """``clamp(MultiplyByQuantizedMultiplier(acc, m0, shift) + z_y, z_y if relu else qmin,
    qmax)`` as ``out_dtype`` — the integer-only counterpart of :func:`.gemm.requantize`."""
    dt = normalize_qdtype(out_dtype, "out_dtype")
    qmin, qmax = resolve_range(dt, quant_min, quant_max)
    if isinstance(out_zero_point, bool) or not isinstance(out_zero_point, int | np.integer):
        raise EncodingError("out_zero_point must be an int")
    zy = int(out_zero_point)
    if not qmin <= zy <= qmax:
        raise EncodingError(f"out_zero_point must lie within [{qmin}, {qmax}]")
    scaled = multiply_by_quantized_multiplier(acc, multiplier, shift) + np.int64(zy)
    clipped: npt.NDArray[np.int64] = np.clip(scaled, zy if relu else qmin, qmax)
    return clipped.astype(dt)
