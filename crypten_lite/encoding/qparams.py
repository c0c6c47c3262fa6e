"""Quantization ranges and parameters, following PyTorch eager mode (``torch.ao.quantization``).

``qmin_qmax`` mirrors ``utils.calculate_qmin_qmax`` plus the observer's range validation;
``calculate_qparams`` mirrors ``UniformQuantizationObserverBase._calculate_qparams`` including
its float32 arithmetic (observer buffers are float32), so scales and zero points match
PyTorch's bit for bit. Returned scales are those float32 values, widened exactly to float64.

Where the code and PyTorch's docstrings disagree the code is followed: ``min == max`` is not
special-cased (e.g. min = max = 0 gives ``scale = eps``, ``zero_point = qmin`` for affine).
"""

from __future__ import annotations

import warnings
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import EncodingError

__all__ = [
    "FLOAT32_EPS",
    "PER_CHANNEL_AFFINE",
    "PER_CHANNEL_SYMMETRIC",
    "PER_TENSOR_AFFINE",
    "PER_TENSOR_SYMMETRIC",
    "QSCHEMES",
    "QDTypeLike",
    "QScheme",
    "calculate_qparams",
    "dtype_bounds",
    "normalize_qdtype",
    "normalize_qscheme",
    "qmin_qmax",
]

QScheme = Literal[
    "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric"
]
PER_TENSOR_AFFINE: Final = "per_tensor_affine"
PER_TENSOR_SYMMETRIC: Final = "per_tensor_symmetric"
PER_CHANNEL_AFFINE: Final = "per_channel_affine"
PER_CHANNEL_SYMMETRIC: Final = "per_channel_symmetric"
QSCHEMES: Final[tuple[str, ...]] = (
    PER_TENSOR_AFFINE,
    PER_TENSOR_SYMMETRIC,
    PER_CHANNEL_AFFINE,
    PER_CHANNEL_SYMMETRIC,
)
#: ``torch.finfo(torch.float32).eps``, the observers' default ``eps``.
FLOAT32_EPS: Final = float(np.finfo(np.float32).eps)

QDTypeLike = str | type | np.dtype[np.integer]

_DTYPE_NAMES: Final[dict[str, str]] = {
    "qint8": "int8",
    "int8": "int8",
    "quint8": "uint8",
    "uint8": "uint8",
    "qint32": "int32",
    "int32": "int32",
}


def normalize_qdtype(dtype: object, name: str = "dtype") -> np.dtype[np.integer]:
    """``np.int8``/``np.uint8``/``np.int32`` (or ``"qint8"``, ``"quint8"``, ``"qint32"``, their
    numpy names, or the ``np.dtype``) as a numpy dtype; anything else raises EncodingError."""
    key: str | None = None
    if isinstance(dtype, str):
        key = _DTYPE_NAMES.get(dtype.removeprefix("torch."))
    else:
        try:
            resolved = np.dtype(dtype)  # type: ignore[call-overload]
        except TypeError:
            resolved = None
        if resolved is not None and resolved.name in ("int8", "uint8", "int32"):
            key = resolved.name
    if key is None:
        raise EncodingError(
            f"{name} must be one of np.int8, np.uint8, np.int32 or 'qint8', 'quint8', 'qint32'"
        )
    return np.dtype(key)


def dtype_bounds(dtype: np.dtype[np.integer]) -> tuple[int, int]:
    """The representable range of an integer dtype."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def normalize_qscheme(qscheme: object) -> QScheme:
    """A qscheme name (a ``torch.`` prefix is ignored), else EncodingError naming ``qscheme``."""
    if isinstance(qscheme, str):
        name = qscheme.removeprefix("torch.")
        for known in QSCHEMES:
            if name == known:
                return known  # type: ignore[return-value]
    raise EncodingError(f"qscheme must be one of {', '.join(QSCHEMES)}")


def _int_arg(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise EncodingError(f"{name} must be an int")
    return int(value)


def qmin_qmax(
    dtype: QDTypeLike,
    reduce_range: bool = False,
    quant_min: int | None = None,
    quant_max: int | None = None,
) -> tuple[int, int]:
    """The quantized range ``(qmin, qmax)`` exactly as PyTorch computes it.

    Defaults: qint8 [-128, 127] (reduce_range: [-64, 63]); quint8 [0, 255] ([0, 127]);
    qint32 the full int32 range (reduce_range ignored). A custom range must give both ends,
    contain 0, have ``quant_min < quant_max`` and fit in ``dtype``; ``reduce_range`` then
    halves both ends with floor division.
    """
    dt = normalize_qdtype(dtype)
    if (quant_min is None) != (quant_max is None):
        raise EncodingError("quant_min and quant_max must be given together")
    if quant_min is not None and quant_max is not None:
        lo = _int_arg("quant_min", quant_min)
        hi = _int_arg("quant_max", quant_max)
        if not lo <= 0 <= hi:
            raise EncodingError("quant_min/quant_max: the quantization range must include 0")
        if not lo < hi:
            raise EncodingError("quant_min must be strictly less than quant_max")
        dmin, dmax = dtype_bounds(dt)
        if lo < dmin or hi > dmax:
            raise EncodingError(
                f"quant_min/quant_max must lie within the {dt.name} range [{dmin}, {dmax}]"
            )
        if reduce_range:
            lo, hi = lo // 2, hi // 2
        return lo, hi
    if dt == np.int8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dt == np.uint8:
        return (0, 127) if reduce_range else (0, 255)
    return -(2**31), 2**31 - 1


def calculate_qparams(
    min_val: npt.ArrayLike,
    max_val: npt.ArrayLike,
    dtype: QDTypeLike = "quint8",
    qscheme: QScheme | str = PER_TENSOR_AFFINE,
    quant_min: int | None = None,
    quant_max: int | None = None,
    eps: float = FLOAT32_EPS,
    reduce_range: bool = False,
) -> tuple[float, int] | tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Scale and zero point from observed ``min_val``/``max_val`` (PyTorch's recipe).

    Per-tensor schemes take scalars and return ``(float, int)``; per-channel schemes take
    1-D arrays (one entry per channel) and return ``(float64 array, int64 array)``.

    1. ``min_neg = min(min_val, 0)``, ``max_pos = max(max_val, 0)`` (0 stays representable).
    2. symmetric: ``scale = max(-min_neg, max_pos) / ((qmax - qmin) / 2)``; zero point 0, or
       128 for quint8 (``(qmin + qmax) // 2`` with a custom range).
    3. affine: ``scale = (max_pos - min_neg) / (qmax - qmin)``,
       ``zero_point = clamp(qmin - round_half_even(min_neg / scale), qmin, qmax)``.
    Scales are floored at ``eps``; all arithmetic is float32. An unobserved pair
    (``min = +inf``, ``max = -inf``) or empty per-channel arrays give scale 1.0, zero point 0
    with a warning, as PyTorch does.
    """
    dt = normalize_qdtype(dtype)
    scheme = normalize_qscheme(qscheme)
    symmetric = scheme in (PER_TENSOR_SYMMETRIC, PER_CHANNEL_SYMMETRIC)
    if symmetric and reduce_range and dt == np.uint8:
        raise EncodingError("reduce_range is not supported for symmetric quint8 (as in PyTorch)")
    qmin, qmax = qmin_qmax(dt, reduce_range, quant_min, quant_max)
    custom = quant_min is not None
    eps32 = np.float32(eps)
    if not np.isfinite(eps32) or eps32 <= 0:
        raise EncodingError("eps must be finite and > 0 in float32")
    try:
        lo = np.asarray(min_val, dtype=np.float64)
        hi = np.asarray(max_val, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError("min_val and max_val must be real numbers or arrays") from err
    per_channel = scheme.startswith("per_channel")
    if per_channel:
        if lo.ndim != 1 or hi.shape != lo.shape:
            raise EncodingError("per-channel min_val and max_val must be 1-D of equal length")
        if lo.size == 0:
            warnings.warn(
                "calculate_qparams: empty per-channel min/max (observer not run); "
                "returning scale 1.0, zero point 0",
                stacklevel=2,
            )
            return np.ones(1), np.zeros(1, dtype=np.int64)
    elif lo.size != 1 or hi.size != 1:
        raise EncodingError("per-tensor min_val and max_val must be scalars")
    lo, hi = lo.reshape(-1), hi.reshape(-1)
    unobserved = (lo == np.inf) & (hi == -np.inf)
    if unobserved.any():
        warnings.warn(
            "calculate_qparams: observer saw no data (min=+inf, max=-inf); "
            "returning scale 1.0, zero point 0 there",
            stacklevel=2,
        )
    lo = np.where(unobserved, 0.0, lo)
    hi = np.where(unobserved, 0.0, hi)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise EncodingError("min_val and max_val must be finite (or the unobserved +inf/-inf)")
    if (lo > hi).any():
        raise EncodingError("min_val must be <= max_val")
    min_neg = np.minimum(lo.astype(np.float32), np.float32(0))
    max_pos = np.maximum(hi.astype(np.float32), np.float32(0))
    if symmetric:
        amax = np.maximum(-min_neg, max_pos)
        scale = np.maximum(amax / np.float32((qmax - qmin) / 2), eps32)
        mid = (qmin + qmax) // 2 if custom else 128
        zp = np.full(lo.shape, mid if dt == np.uint8 else 0, dtype=np.int64)
    else:
        scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), eps32)
        zp = qmin - np.rint(min_neg / scale).astype(np.int64)
        zp = np.clip(zp, qmin, qmax)
    scale64 = np.where(unobserved, 1.0, scale.astype(np.float64))
    zp = np.where(unobserved, 0, zp).astype(np.int64)
    if per_channel:
        return scale64, zp
    return float(scale64[0]), int(zp[0])
