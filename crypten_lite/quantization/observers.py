"""Observers: record tensor statistics during calibration and turn them into qparams.

Numpy re-implementation of ``torch.ao.quantization.observer`` (PyTorch's
``torch/ao/quantization/observer.py``). Min/max
buffers are float32 and updated in float32, as PyTorch's are, and the scale / zero point come
from :func:`crypten_lite.encoding.calculate_qparams` (PyTorch's formula, bit for bit).

Observers run on plaintext calibration data only (an MPCTensor is refused) and cost no
communication. Deviation from PyTorch: every observer refuses NaN and +-inf with a
:class:`~crypten_lite.errors.QuantizationError` naming the module it observes (PyTorch's
HistogramObserver silently drops infinities; its min/max observers let them poison the range).
The histogram observer lives in :mod:`.histogram`.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import FLOAT32_EPS, PER_TENSOR_AFFINE, calculate_qparams, qmin_qmax
from crypten_lite.encoding.qparams import normalize_qdtype, normalize_qscheme
from crypten_lite.errors import EncodingError, QuantizationError
from crypten_lite.nn import Module
from crypten_lite.tensor import MPCTensor

__all__ = [
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "ObserverBase",
    "PerChannelMinMaxObserver",
    "PlaceholderObserver",
    "QParams",
]

F32 = npt.NDArray[np.float32]
QParams = tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]


def _ema(old: Any, new: Any, constant: float) -> F32:
    """``old + c (new - old)`` in float32: torch's moving-average min/max update."""
    c = np.float32(constant)
    return np.asarray(old + c * (new - old), dtype=np.float32)


class ObserverBase(Module, ABC):
    """Common arguments and checks of all observers (``torch``'s
    ``UniformQuantizationObserverBase``).

    ``dtype``: int8 / uint8 / int32 (or ``"qint8"``, ``"quint8"``, ``"qint32"``); ``qscheme``: an
    :mod:`crypten_lite.encoding` qscheme name; ``quant_min``/``quant_max``: a custom range
    (resolved, with ``reduce_range`` applied, into the attributes of the same names); ``eps``: the
    smallest scale. ``name`` / ``owner`` are set by ``prepare`` to the observed module's path and
    type so that errors name them.
    """

    _per_channel = False

    def __init__(
        self,
        dtype: Any = "quint8",
        qscheme: str = PER_TENSOR_AFFINE,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = FLOAT32_EPS,
        is_dynamic: bool = False,
    ) -> None:
        super().__init__()
        cls = type(self).__name__
        try:
            self.dtype = normalize_qdtype(dtype)
            self.qscheme = normalize_qscheme(qscheme)
            if self.qscheme.startswith("per_channel") != self._per_channel:
                kind = "per-channel" if self._per_channel else "per-tensor"
                raise QuantizationError(f"{cls}: qscheme must be a {kind} scheme, got {qscheme!r}")
            if reduce_range and self.dtype == np.uint8 and "symmetric" in self.qscheme:
                raise QuantizationError(
                    f"{cls}: reduce_range is not supported for symmetric quint8 (as in PyTorch)"
                )
            self.quant_min, self.quant_max = qmin_qmax(
                self.dtype, bool(reduce_range), quant_min, quant_max
            )
        except EncodingError as err:
            raise QuantizationError(f"{cls}: {err}") from err
        if not isinstance(eps, float | int) or not np.isfinite(eps) or eps <= 0:
            raise QuantizationError(f"{cls}: eps must be a finite float > 0, got {eps!r}")
        self.reduce_range = bool(reduce_range)
        self.eps = float(eps)
        self.is_dynamic = bool(is_dynamic)
        self.ch_axis: int | None = None
        self.name = ""
        self.owner = ""
        self._custom_range = (quant_min, quant_max)

    @classmethod
    def with_args(cls, **kwargs: Any) -> Callable[[], Any]:
        """A constructor with bound arguments (``functools.partial``), as ``torch``'s
        ``Observer.with_args``; a :class:`~.qconfig.QConfig` holds these, never instances."""
        return functools.partial(cls, **kwargs)

    def where(self) -> str:
        """``"observer MinMaxObserver of module '0' (Linear)"`` for error messages."""
        cls = type(self).__name__
        if self.owner:
            return f"observer {cls} of module '{self.name}' ({self.owner})"
        return f"observer {cls}" + (f" '{self.name}'" if self.name else "")

    def extra_repr(self) -> str:
        return (
            f"dtype={self.dtype.name}, qscheme={self.qscheme}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}"
        )

    def _as_array(self, x: Any) -> npt.NDArray[np.float64] | None:
        """The input as float64 (``None`` when empty); MPCTensor / NaN / inf raise."""
        if isinstance(x, MPCTensor):
            raise QuantizationError(
                f"{self.where()}: cannot observe an MPCTensor; calibrate on plaintext data"
            )
        if hasattr(x, "detach"):  # a torch tensor, without importing torch
            x = x.detach().cpu().numpy()
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{self.where()}: expected a real numeric array, got {arr.dtype}")
        if arr.size == 0:
            return None
        arr = arr.astype(np.float64, copy=False)
        if not np.isfinite(arr).all():
            raise QuantizationError(
                f"{self.where()}: input contains NaN or infinity; calibration data must be finite"
            )
        return arr

    def forward(self, *args: Any) -> Any:
        """Record statistics of ``args[0]`` and return it unchanged."""
        arr = self._as_array(args[0])
        if arr is not None:
            self._observe(arr)
        return args[0]

    @abstractmethod
    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        """Record the statistics of one (finite, float64) batch."""

    @property
    @abstractmethod
    def has_observed(self) -> bool:
        """True once statistics were recorded (``calculate_qparams`` is meaningful)."""

    def _qparams(self, min_val: npt.ArrayLike, max_val: npt.ArrayLike) -> QParams:
        """PyTorch's ``_calculate_qparams`` on float32 ``min_val``/``max_val``."""
        qmin, qmax = self._custom_range
        scale, zp = calculate_qparams(
            min_val,
            max_val,
            self.dtype,
            self.qscheme,
            quant_min=qmin,
            quant_max=qmax,
            eps=self.eps,
            reduce_range=self.reduce_range,
        )
        return np.asarray(scale, dtype=np.float64), np.asarray(zp, dtype=np.int64)

    @abstractmethod
    def calculate_qparams(self) -> QParams:
        """``(scale, zero_point)``: float64 / int64, 0-d per tensor, 1-D per channel."""


class MinMaxObserver(ObserverBase):
    """Running global min/max (per tensor, affine or symmetric)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("min_val", np.array(np.inf, dtype=np.float32))
        self.register_buffer("max_val", np.array(-np.inf, dtype=np.float32))

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        lo, hi = np.float32(x.min()), np.float32(x.max())
        self.register_buffer("min_val", np.minimum(self.min_val, lo))
        self.register_buffer("max_val", np.maximum(self.max_val, hi))

    @property
    def has_observed(self) -> bool:
        return bool(self.min_val != np.inf)

    def calculate_qparams(self) -> QParams:
        return self._qparams(self.min_val, self.max_val)


def _check_constant(name: str, value: Any) -> float:
    if not isinstance(value, float | int) or not 0 < value <= 1:
        raise QuantizationError(f"{name}: averaging_constant must be in (0, 1], got {value!r}")
    return float(value)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """First batch sets min/max, then ``min <- min + c * (batch_min - min)`` (float32 EMA);
    the QAT activation observer."""

    def __init__(self, averaging_constant: float = 0.01, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.averaging_constant = _check_constant(type(self).__name__, averaging_constant)

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        lo, hi = np.float32(x.min()), np.float32(x.max())
        if not self.has_observed:
            self.register_buffer("min_val", np.array(lo))
            self.register_buffer("max_val", np.array(hi))
            return
        self.register_buffer("min_val", _ema(self.min_val, lo, self.averaging_constant))
        self.register_buffer("max_val", _ema(self.max_val, hi, self.averaging_constant))


class PerChannelMinMaxObserver(ObserverBase):
    """One running min/max per slice along ``ch_axis`` (0 = Linear ``out_features`` and Conv
    ``out_channels``); per-channel affine or symmetric."""

    _per_channel = True

    def __init__(
        self,
        ch_axis: int = 0,
        dtype: Any = "quint8",
        qscheme: str = "per_channel_affine",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype, qscheme, *args, **kwargs)
        if isinstance(ch_axis, bool) or not isinstance(ch_axis, int | np.integer):
            raise QuantizationError(f"{type(self).__name__}: ch_axis must be an int")
        self.ch_axis = int(ch_axis)
        self.register_buffer("min_val", np.zeros(0, dtype=np.float32))
        self.register_buffer("max_val", np.zeros(0, dtype=np.float32))

    def extra_repr(self) -> str:
        return f"ch_axis={self.ch_axis}, {super().extra_repr()}"

    def _channel_minmax(self, x: npt.NDArray[np.float64]) -> tuple[F32, F32]:
        axis = cast(int, self.ch_axis)  # set to an int by __init__
        if not -x.ndim <= axis < x.ndim:
            raise QuantizationError(
                f"{self.where()}: ch_axis {axis} is out of range for a {x.ndim}-D input "
                f"of shape {tuple(x.shape)}"
            )
        rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        lo, hi = rows.min(axis=1).astype(np.float32), rows.max(axis=1).astype(np.float32)
        if self.has_observed and lo.shape != self.min_val.shape:
            raise QuantizationError(
                f"{self.where()}: saw {lo.size} channels along axis {axis}, "
                f"previously {self.min_val.size}"
            )
        return lo, hi

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        lo, hi = self._channel_minmax(x)
        if self.has_observed:
            lo, hi = np.minimum(self.min_val, lo), np.maximum(self.max_val, hi)
        self.register_buffer("min_val", lo)
        self.register_buffer("max_val", hi)

    @property
    def has_observed(self) -> bool:
        return bool(self.min_val.size > 0)

    def calculate_qparams(self) -> QParams:
        return self._qparams(self.min_val, self.max_val)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """The per-channel EMA variant (QAT per-channel weight fake-quant)."""

    def __init__(self, averaging_constant: float = 0.01, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.averaging_constant = _check_constant(type(self).__name__, averaging_constant)

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        lo, hi = self._channel_minmax(x)
        if self.has_observed:
            lo = _ema(self.min_val, lo, self.averaging_constant)
            hi = _ema(self.max_val, hi, self.averaging_constant)
        self.register_buffer("min_val", lo)
        self.register_buffer("max_val", hi)


class PlaceholderObserver(ObserverBase):
    """Records nothing; carries ``dtype``/range for dynamic quantization (activation qparams
    are chosen per batch at run time). ``calculate_qparams`` raises."""

    @property
    def has_observed(self) -> bool:
        return True

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        return None

    def calculate_qparams(self) -> QParams:
        raise QuantizationError(
            f"{self.where()}: a PlaceholderObserver has no qparams (dynamic quantization "
            "chooses them per batch)"
        )
