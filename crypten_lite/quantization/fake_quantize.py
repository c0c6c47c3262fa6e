"""``FakeQuantize``: simulated quantization for quantization-aware training
(``torch.ao.quantization.FakeQuantize``).

Forward (float in, float out): ``x~ = (clamp(rint(x / s) + z, qmin, qmax) - z) * s`` with
``(s, z)`` refreshed from the wrapped observer while observing is enabled. Backward: the
straight-through estimator with clipping, ``dL/dx = dL/dx~`` where the pre-clamp quantized value
``rint(x / s) + z`` lies inside ``[qmin, qmax]`` and 0 elsewhere. ``crypten_lite.nn`` has no
autograd, so the mask of the last forward is cached and :meth:`FakeQuantize.backward` applies it.

Arithmetic is float64 ``x / s`` (PyTorch's kernel multiplies by a float32 ``1 / s``; results
can differ by one step on exact near-ties). Plaintext only, no communication.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import QuantizationError
from crypten_lite.nn import Module
from crypten_lite.quantization.observers import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    ObserverBase,
    QParams,
)

__all__ = [
    "FakeQuantize",
    "default_fake_quant",
    "default_per_channel_weight_fake_quant",
    "default_weight_fake_quant",
    "fake_quantize",
]

F64 = npt.NDArray[np.float64]


def fake_quantize(
    x: npt.ArrayLike,
    scale: npt.ArrayLike,
    zero_point: npt.ArrayLike,
    quant_min: int,
    quant_max: int,
    axis: int | None = None,
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """``(x~, mask)``: the fake-quantized values and the straight-through gradient mask."""
    arr = np.asarray(x, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    z = np.asarray(zero_point, dtype=np.float64)
    if axis is not None:
        shape = [1] * arr.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    q = np.rint(arr / s) + z
    mask = (q >= quant_min) & (q <= quant_max)
    out = (np.clip(q, quant_min, quant_max) - z) * s
    return out, mask


class FakeQuantize(Module):
    """Observer + fake quantization (``torch.ao.quantization.FakeQuantize``).

    ``observer`` is an observer class or ``with_args`` constructor, called with the remaining
    keyword arguments (``quant_min``/``quant_max`` are forwarded to it). The observer's
    ``dtype``, ``qscheme``, resolved ``quant_min``/``quant_max`` and ``ch_axis`` are exposed, so a
    FakeQuantize can stand wherever an observer is expected (``convert`` and ``from_float``).
    """

    def __init__(
        self,
        observer: Callable[..., ObserverBase] = MovingAverageMinMaxObserver,
        quant_min: int | None = None,
        quant_max: int | None = None,
        **observer_kwargs: Any,
    ) -> None:
        super().__init__()
        if quant_min is not None or quant_max is not None:
            observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        obs = observer(**observer_kwargs)
        if not isinstance(obs, ObserverBase):
            raise QuantizationError(
                f"FakeQuantize: observer must build an observer, got {type(obs).__name__}"
            )
        self.activation_post_process = obs
        self.fake_quant_enabled = True
        self.observer_enabled = True
        self.register_buffer("scale", np.array(1.0))
        self.register_buffer("zero_point", np.array(0, dtype=np.int64))
        self._mask: npt.NDArray[np.bool_] | None = None

    @classmethod
    def with_args(cls, **kwargs: Any) -> Callable[[], FakeQuantize]:
        """A constructor with bound arguments, for a :class:`~.qconfig.QConfig`."""
        return functools.partial(cls, **kwargs)

    # observer attributes, so a FakeQuantize is usable wherever an observer is
    @property
    def dtype(self) -> np.dtype[np.integer]:
        return self.activation_post_process.dtype  # type: ignore[no-any-return]

    @property
    def qscheme(self) -> str:
        return self.activation_post_process.qscheme  # type: ignore[no-any-return]

    @property
    def quant_min(self) -> int:
        return self.activation_post_process.quant_min  # type: ignore[no-any-return]

    @property
    def quant_max(self) -> int:
        return self.activation_post_process.quant_max  # type: ignore[no-any-return]

    @property
    def ch_axis(self) -> int | None:
        return self.activation_post_process.ch_axis  # type: ignore[no-any-return]

    @property
    def eps(self) -> float:
        return self.activation_post_process.eps  # type: ignore[no-any-return]

    @property
    def has_observed(self) -> bool:
        return bool(self.activation_post_process.has_observed)

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.fake_quant_enabled}, "
            f"observer_enabled={self.observer_enabled}, quant_min={self.quant_min}, "
            f"quant_max={self.quant_max}, qscheme={self.qscheme}"
        )

    def enable_fake_quant(self, enabled: bool = True) -> FakeQuantize:
        self.fake_quant_enabled = bool(enabled)
        return self

    def disable_fake_quant(self) -> FakeQuantize:
        return self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> FakeQuantize:
        self.observer_enabled = bool(enabled)
        return self

    def disable_observer(self) -> FakeQuantize:
        return self.enable_observer(False)

    def calculate_qparams(self) -> QParams:
        return self.activation_post_process.calculate_qparams()  # type: ignore[no-any-return]

    def forward(self, *args: Any) -> Any:
        x = args[0]
        if self.observer_enabled:
            self.activation_post_process(x)
            scale, zp = self.calculate_qparams()
            self.register_buffer("scale", scale)
            self.register_buffer("zero_point", zp)
        if not self.fake_quant_enabled:
            self._mask = None
            return x
        if not self.has_observed:
            raise QuantizationError(
                f"{self.activation_post_process.where()}: fake quantization needs qparams; "
                "enable the observer for at least one forward pass first"
            )
        arr = np.asarray(x, dtype=np.float64)
        axis = self.ch_axis
        if axis is not None:
            axis = axis % arr.ndim
        out, mask = fake_quantize(
            arr, self.scale, self.zero_point, self.quant_min, self.quant_max, axis
        )
        self._mask = mask
        return out

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        """Straight-through estimator: ``grad_output`` where the last forward's quantized value
        was inside ``[quant_min, quant_max]``, else 0 (identity if fake quant was disabled)."""
        grad = np.asarray(grad_output, dtype=np.float64)
        if self._mask is None:
            return grad
        if grad.shape != self._mask.shape:
            raise QuantizationError(
                f"{self.activation_post_process.where()}: backward got a gradient of shape "
                f"{grad.shape}, the last forward produced {self._mask.shape}"
            )
        return np.where(self._mask, grad, 0.0)


#: activations: 0..255 quint8 with reduce_range (0..127), moving-average min/max (torch's)
default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=0,
    quant_max=255,
    dtype="quint8",
    qscheme="per_tensor_affine",
    reduce_range=True,
)
#: weights: qint8 per-tensor symmetric
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype="qint8",
    qscheme="per_tensor_symmetric",
)
#: weights: qint8 per-channel symmetric along axis 0
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype="qint8",
    qscheme="per_channel_symmetric",
    ch_axis=0,
)
