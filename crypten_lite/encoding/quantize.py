"""Affine quantization and dequantization, per tensor or per channel (PyTorch semantics).

``quantize``: ``q = clamp(round_half_even(x / s) + z, qmin, qmax)``; ``dequantize``:
``x = (q - z) * s``. Arithmetic is float64 in exactly that order. PyTorch's CPU kernel uses
float32 ``x * (1/s)``, which can land on the other side of a tie: rare for data, but
systematic for symmetric qint8 weights with torch's default range [-128, 127], whose scale
``amax / 127.5`` puts each channel's most negative weight exactly on -127.5 (we give -128,
torch often -127). The range [-127, 127] (``weight_observer_range_neg_127_to_127``, our
``mpc_qconfig``) has no such tie. NaN inputs raise EncodingError; infinities saturate to
``qmin``/``qmax`` as in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding.backend import active_kernels
from crypten_lite.encoding.base import as_real_array
from crypten_lite.encoding.qparams import (
    QDTypeLike,
    dtype_bounds,
    normalize_qdtype,
    qmin_qmax,
)
from crypten_lite.errors import EncodingError

__all__ = ["ChannelParams", "channel_view", "dequantize", "quantize", "resolve_range"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
QArray = npt.NDArray[np.integer]


def normalize_axis(axis: object, ndim: int, name: str = "axis") -> int:
    """``axis`` in ``[-ndim, ndim)`` as a non-negative int, else EncodingError naming it."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise EncodingError(f"{name} must be an int or None")
    ax = int(axis)
    if not -ndim <= ax < ndim:
        raise EncodingError(f"{name} must lie in [-{ndim}, {ndim}) for a {ndim}-D array")
    return ax % ndim


@dataclass(frozen=True)
class ChannelParams:
    """Validated per-channel ``scale`` (float64, > 0) and ``zero_point`` (int64) of length C."""

    scale: F64
    zero_point: I64

    @classmethod
    def build(
        cls, scale: npt.ArrayLike, zero_point: npt.ArrayLike, channels: int | None
    ) -> ChannelParams:
        """Validate; ``channels=None`` means per tensor (scalars, C = 1)."""
        try:
            s = np.asarray(scale, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError("scale must be a real number or array") from err
        z_raw = np.asarray(zero_point)
        if z_raw.dtype.kind not in "iu":
            if z_raw.dtype.kind != "f" or not np.array_equal(z_raw, np.round(z_raw)):
                raise EncodingError("zero_point must hold integers")
        z = z_raw.astype(np.int64)
        size = 1 if channels is None else channels
        if channels is None and (s.size != 1 or z.size != 1):
            raise EncodingError("per-tensor scale and zero_point must be scalars")
        if channels is not None:
            for name, arr in (("scale", s), ("zero_point", z)):
                if arr.ndim > 1 or (arr.ndim == 1 and arr.size not in (1, channels)):
                    raise EncodingError(
                        f"per-channel {name} must be a scalar or 1-D of length {channels}"
                    )
        s = np.ascontiguousarray(np.broadcast_to(s.reshape(-1), (size,)), dtype=np.float64)
        z = np.ascontiguousarray(np.broadcast_to(z.reshape(-1), (size,)), dtype=np.int64)
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise EncodingError("scale must be finite and > 0")
        return cls(scale=s, zero_point=z)


def channel_view(arr: npt.NDArray[np.generic], axis: int | None) -> npt.NDArray[np.generic]:
    """C-contiguous ``(pre, C, post)`` view of ``arr`` around ``axis`` (``None``: C = 1)."""
    flat = np.ascontiguousarray(arr)
    if axis is None:
        return flat.reshape(1, 1, -1)
    pre = int(np.prod(arr.shape[:axis], dtype=np.int64))
    post = int(np.prod(arr.shape[axis + 1 :], dtype=np.int64))
    return flat.reshape(pre, arr.shape[axis], post)


def resolve_range(
    dt: np.dtype[np.integer], quant_min: int | None, quant_max: int | None
) -> tuple[int, int]:
    """Clamp range: the dtype's full range, or a validated custom ``[quant_min, quant_max]``."""
    if quant_min is None and quant_max is None:
        return dtype_bounds(dt)
    return qmin_qmax(dt, False, quant_min, quant_max)


def _check_zero_points(zp: I64, dt: np.dtype[np.integer]) -> None:
    lo, hi = dtype_bounds(dt)
    if zp.size and (int(zp.min()) < lo or int(zp.max()) > hi):
        raise EncodingError(f"zero_point must lie within the {dt.name} range [{lo}, {hi}]")


def prepare(
    x: npt.ArrayLike,
    scale: npt.ArrayLike,
    zero_point: npt.ArrayLike,
    dtype: QDTypeLike,
    axis: int | None,
) -> tuple[npt.NDArray[np.float64], ChannelParams, np.dtype[np.integer], int | None]:
    """Shared argument handling of quantize and the quantized encoder."""
    arr = as_real_array("x", x).astype(np.float64, copy=False)
    dt = normalize_qdtype(dtype)
    ax = None if axis is None else normalize_axis(axis, arr.ndim)
    params = ChannelParams.build(scale, zero_point, None if ax is None else arr.shape[ax])
    _check_zero_points(params.zero_point, dt)
    return arr, params, dt, ax


def quantize(
    x: npt.ArrayLike,
    scale: npt.ArrayLike,
    zero_point: npt.ArrayLike,
    dtype: QDTypeLike,
    *,
    quant_min: int | None = None,
    quant_max: int | None = None,
    axis: int | None = None,
) -> QArray:
    """``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)`` as ``dtype``.

    Per tensor (``axis=None``): scalar ``scale``/``zero_point``. Per channel: 1-D arrays of
    length ``x.shape[axis]``. The clamp range is the dtype's, or ``[quant_min, quant_max]``.
    """
    arr, params, dt, ax = prepare(x, scale, zero_point, dtype, axis)
    qmin, qmax = resolve_range(dt, quant_min, quant_max)
    out = active_kernels().quantize(
        channel_view(arr, ax), params.scale, params.zero_point, qmin, qmax, dt
    )
    if out is None:
        raise EncodingError("x contains NaN, which cannot be quantized")
    return np.asarray(out).reshape(arr.shape)


def as_quantized_array(name: str, q: object) -> QArray:
    """``q`` as an int8/uint8/int32 ndarray, else TypeError naming ``name``."""
    if not isinstance(q, np.ndarray) or q.dtype not in (np.int8, np.uint8, np.int32):
        got = q.dtype if isinstance(q, np.ndarray) else type(q).__name__
        raise TypeError(f"{name} must be a numpy array of int8, uint8 or int32, got {got}")
    return q


def dequantize(
    q: QArray,
    scale: npt.ArrayLike,
    zero_point: npt.ArrayLike,
    *,
    axis: int | None = None,
) -> F64:
    """``(q - zero_point) * scale`` as float64; per channel along ``axis`` when given."""
    arr = as_quantized_array("q", q)
    ax = None if axis is None else normalize_axis(axis, arr.ndim)
    params = ChannelParams.build(scale, zero_point, None if ax is None else arr.shape[ax])
    out = active_kernels().dequantize(channel_view(arr, ax), params.scale, params.zero_point)
    return np.asarray(out, dtype=np.float64).reshape(arr.shape)
