"""Quantization-aware training modules (``torch.ao.nn.qat``), with explicit backward.

``crypten_lite.nn`` has no autograd, so each QAT module caches what its backward needs in
``forward`` and implements ``backward(grad_output) -> grad_input``, storing parameter
gradients in ``.grads`` (``{"weight": ..., "bias": ...}``). Weights pass through
``weight_fake_quant`` (a :class:`~.fake_quantize.FakeQuantize` from ``qconfig.weight()``) in
forward; its straight-through estimator masks the weight gradient. :func:`qat_backward` walks a
``Sequential`` backwards; :func:`sgd_step` applies plain SGD.

Scope: Linear, LinearReLU, Conv2d / ConvReLU2d (groups = 1), ReLU, MaxPool2d, Flatten, stubs
and identity. Not provided: batch norm in QAT (``ConvBn2d``, ``freeze_bn_stats``), average
pooling, LSQ / learnable scales.
Plaintext float64 only.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from crypten_lite import nn
from crypten_lite.errors import QuantizationError
from crypten_lite.nn import functional as F
from crypten_lite.quantization.intrinsic import ConvReLU2d as FloatConvReLU2d
from crypten_lite.quantization.intrinsic import LinearReLU as FloatLinearReLU
from crypten_lite.quantization.intrinsic import float_layer, qconfig_of
from crypten_lite.quantization.qconfig import QConfig

__all__ = [
    "Conv2d",
    "ConvReLU2d",
    "Flatten",
    "Linear",
    "LinearReLU",
    "MaxPool2d",
    "ReLU",
    "qat_backward",
    "sgd_step",
]

F64 = npt.NDArray[np.float64]
APP = "activation_post_process"


def _no_cache(mod: nn.Module) -> QuantizationError:
    return QuantizationError(f"{mod.describe()}: backward called before forward")


def _carry(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Give ``dst`` the qconfig and output observer of ``src`` (for ``to_float``). A trained
    ``weight_fake_quant`` replaces the qconfig's weight constructor (a copy per call), so
    ``from_float`` quantizes with the trained weight qparams (frozen if its observer was
    disabled), as torch's ``from_float`` on a QAT module does."""
    qconfig = getattr(src, "qconfig", None)
    wfq = dict(src.named_children()).get("weight_fake_quant")
    if qconfig is not None and wfq is not None:
        qconfig = QConfig(qconfig.activation, functools.partial(copy.deepcopy, wfq))
    object.__setattr__(dst, "qconfig", qconfig)
    obs = dict(src.named_children()).get(APP)
    if obs is not None:
        dst.activation_post_process = obs
    dst.training = src.training
    return dst


_Layer = TypeVar("_Layer", bound=nn.Module)


def _take_params(dst: _Layer, src: nn.Module, training: bool) -> _Layer:
    """``from_float`` of a QAT layer: ``dst`` gets float64 copies of ``src``'s weight and
    bias and the float module's training mode (the inverse of :func:`_float_twin`)."""
    dst.register_parameter("weight", np.array(src.weight, dtype=np.float64))
    if src.bias is not None:
        dst.register_parameter("bias", np.array(src.bias, dtype=np.float64))
    dst.training = training
    return dst


def _float_twin(
    src: Any, base: nn.Module, fused: Callable[[nn.Module, nn.Module], nn.Module]
) -> nn.Module:
    """``to_float`` of a QAT layer: ``base`` (a fresh float layer) gets ``src``'s weight and
    bias, wrapped with a ReLU in ``fused`` for a ReLU-fused layer, then ``_carry``."""
    base.register_parameter("weight", src.weight.copy())
    if src.bias is not None:
        base.register_parameter("bias", src.bias.copy())
    if src._relu:
        base.training = src.training
        return _carry(src, fused(base, nn.ReLU()))
    return _carry(src, base)


class _WeightedQAT:
    """Mixin: fake-quantized weight, cached input, SGD-ready ``grads``."""

    weight: F64
    bias: F64 | None
    weight_fake_quant: Any
    _relu = False

    def _init_qat(self, qconfig: Any) -> None:
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()
        self.grads: dict[str, F64] = {}
        self._cache: tuple[Any, ...] | None = None

    def _finish(self, out: F64, *cache: Any) -> F64:
        mask = out > 0 if self._relu else None
        self._cache = (*cache, mask)
        return np.where(mask, out, 0.0) if mask is not None else out

    def _grad_out(self, grad_output: npt.ArrayLike) -> tuple[F64, tuple[Any, ...]]:
        if self._cache is None:
            raise _no_cache(self)  # type: ignore[arg-type]
        grad = np.asarray(grad_output, dtype=np.float64)
        mask = self._cache[-1]
        return (np.where(mask, grad, 0.0) if mask is not None else grad), self._cache[:-1]


class Linear(_WeightedQAT, nn.Linear):
    """``nn.Linear`` whose weight is fake-quantized in forward (torch ``nn.qat.Linear``)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, qconfig: Any = None
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias)
        if qconfig is None:
            raise QuantizationError(f"{type(self).__name__}: a qconfig is required")
        self._init_qat(qconfig)

    @classmethod
    def from_float(cls, mod: nn.Module) -> Linear:
        float_linear = float_layer(mod)
        qconfig = qconfig_of(mod, cls.__name__)
        new = cls(
            float_linear.in_features,
            float_linear.out_features,
            float_linear.bias is not None,
            qconfig=qconfig,
        )
        return _take_params(new, float_linear, mod.training)

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if F.is_encrypted(x):
            raise QuantizationError(f"{self.describe()}: QAT runs on plaintext only")
        w = self.weight_fake_quant(self.weight)
        out = x @ w.T + (0.0 if self.bias is None else self.bias)
        return self._finish(out, x, w)

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        grad, (x, w) = self._grad_out(grad_output)
        g2 = grad.reshape(-1, grad.shape[-1])
        x2 = np.asarray(x).reshape(-1, x.shape[-1])
        self.grads = {"weight": self.weight_fake_quant.backward(g2.T @ x2)}
        if self.bias is not None:
            self.grads["bias"] = g2.sum(axis=0)
        return np.asarray(grad @ w, dtype=np.float64)

    def to_float(self) -> nn.Module:
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        return _float_twin(self, lin, FloatLinearReLU)


class LinearReLU(Linear):
    """Fused ``relu(linear(x))`` with a fake-quantized weight (torch ``intrinsic.qat``)."""

    _relu = True


def _conv_backward(
    x: F64,
    w: F64,
    grad: F64,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[F64, F64]:
    """``(grad_input, grad_weight)`` of a groups=1 conv2d (torch semantics)."""
    _, _, h, wd = x.shape
    _, _, kh, kw = w.shape
    oh, ow = grad.shape[2], grad.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            rows = slice(r0, r0 + stride[0] * (oh - 1) + 1, stride[0])
            cols = slice(c0, c0 + stride[1] * (ow - 1) + 1, stride[1])
            patch = xp[:, :, rows, cols]
            gw[:, :, i, j] = np.einsum("noyx,ncyx->oc", grad, patch, optimize=True)
            gxp[:, :, rows, cols] += np.einsum("noyx,oc->ncyx", grad, w[:, :, i, j], optimize=True)
    gx = gxp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + wd]
    return np.ascontiguousarray(gx), gw


class Conv2d(_WeightedQAT, nn.Conv2d):
    """``nn.Conv2d`` (groups = 1) with a fake-quantized weight (torch ``nn.qat.Conv2d``)."""

    def __init__(self, *args: Any, qconfig: Any = None, **kwargs: Any) -> None:
        nn.Conv2d.__init__(self, *args, **kwargs)
        if qconfig is None:
            raise QuantizationError(f"{type(self).__name__}: a qconfig is required")
        if self.groups != 1:
            raise QuantizationError(f"{type(self).__name__}: QAT supports groups=1 only")
        self._init_qat(qconfig)

    @classmethod
    def from_float(cls, mod: nn.Module) -> Conv2d:
        conv = float_layer(mod)
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            qconfig=qconfig_of(mod, cls.__name__),
        )
        return _take_params(new, conv, mod.training)

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if F.is_encrypted(x):
            raise QuantizationError(f"{self.describe()}: QAT runs on plaintext only")
        w = self.weight_fake_quant(self.weight)
        out = F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, 1)
        return self._finish(np.asarray(out), x, w)

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        grad, (x, w) = self._grad_out(grad_output)
        gx, gw = _conv_backward(x, w, grad, self.stride, self.padding, self.dilation)
        self.grads = {"weight": self.weight_fake_quant.backward(gw)}
        if self.bias is not None:
            self.grads["bias"] = grad.sum(axis=(0, 2, 3))
        return gx

    def to_float(self) -> nn.Module:
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            1,
            self.bias is not None,
        )
        return _float_twin(self, conv, FloatConvReLU2d)


class ConvReLU2d(Conv2d):
    """Fused ``relu(conv(x))`` with a fake-quantized weight."""

    _relu = True


class ReLU(nn.ReLU):
    """``nn.ReLU`` with a backward (mask of the last forward)."""

    @classmethod
    def from_float(cls, mod: nn.Module) -> ReLU:
        new = cls()
        return _carry(mod, new)  # type: ignore[return-value]

    def forward(self, *args: Any) -> Any:
        x = np.asarray(self._input(args[0]))
        self._mask = x > 0
        return np.where(self._mask, x, 0.0)

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        mask = self.__dict__.get("_mask")
        if mask is None:
            raise _no_cache(self)
        return np.where(mask, np.asarray(grad_output, dtype=np.float64), 0.0)

    def to_float(self) -> nn.Module:
        return _carry(self, nn.ReLU())


class Flatten(nn.Flatten):
    """``nn.Flatten`` with a backward (reshape to the last input shape)."""

    @classmethod
    def from_float(cls, mod: nn.Module) -> Flatten:
        return _carry(mod, cls(mod.start_dim, mod.end_dim))  # type: ignore[return-value]

    def forward(self, *args: Any) -> Any:
        x = np.asarray(self._input(args[0]))
        self._shape = x.shape
        return super().forward(x)

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        shape = self.__dict__.get("_shape")
        if shape is None:
            raise _no_cache(self)
        return np.asarray(grad_output, dtype=np.float64).reshape(shape)

    def to_float(self) -> nn.Module:
        return _carry(self, nn.Flatten(self.start_dim, self.end_dim))


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` with a backward: the gradient goes to the (first) maximum of each
    window, as torch's."""

    @classmethod
    def from_float(cls, mod: nn.Module) -> MaxPool2d:
        new = cls(mod.kernel_size, mod.stride, mod.padding, mod.dilation)
        return _carry(mod, new)  # type: ignore[return-value]

    def forward(self, *args: Any) -> Any:
        x = np.asarray(self._pool_input(args[0]))
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        pads = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
        xp = np.pad(x, pads, constant_values=-np.inf)
        hp, wp = xp.shape[-2:]
        span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(-2, -1))
        win = win[..., ::sh, ::sw, ::dh, ::dw]
        pos = np.arange(hp * wp).reshape(hp, wp)
        pos_win = np.lib.stride_tricks.sliding_window_view(pos, span)[::sh, ::sw, ::dh, ::dw]
        oh, ow = win.shape[-4], win.shape[-3]
        flat = win.reshape(*win.shape[:-2], -1)
        arg = flat.argmax(axis=-1)
        chosen = np.take_along_axis(
            np.broadcast_to(pos_win.reshape(oh, ow, -1), (*arg.shape, kh * kw)),
            arg[..., None],
            axis=-1,
        )[..., 0]
        self._pool_cache = (x.shape, xp.shape, chosen)
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    def backward(self, grad_output: npt.ArrayLike) -> F64:
        cache = self.__dict__.get("_pool_cache")
        if cache is None:
            raise _no_cache(self)
        shape, padded, chosen = cache
        (ph, pw) = self.padding
        grad = np.asarray(grad_output, dtype=np.float64)
        rows = int(np.prod(padded[:-2], dtype=np.int64))
        gp = np.zeros((rows, padded[-2] * padded[-1]))
        np.add.at(gp, (np.arange(rows)[:, None], chosen.reshape(rows, -1)), grad.reshape(rows, -1))
        gp = gp.reshape(padded)
        return np.ascontiguousarray(gp[..., ph : ph + shape[-2], pw : pw + shape[-1]])

    def to_float(self) -> nn.Module:
        return _carry(
            self, nn.MaxPool2d(self.kernel_size, self.stride, self.padding, self.dilation)
        )


def qat_backward(model: nn.Module, grad_output: npt.ArrayLike) -> F64:
    """Back-propagate ``grad_output`` through a (nested) ``Sequential`` of modules with a
    ``backward`` method, last to first; returns the gradient w.r.t. the model input."""
    grad = np.asarray(grad_output, dtype=np.float64)
    if "backward" in model.__dict__ or hasattr(type(model), "backward"):
        return np.asarray(model.backward(grad), dtype=np.float64)
    if isinstance(model, nn.Sequential):
        for name, child in reversed(list(model.named_children())):
            if name != APP:
                grad = qat_backward(child, grad)
        return grad
    raise QuantizationError(
        f"qat_backward: {model.describe()} has no backward; QAT supports Linear, Conv2d, "
        "ReLU, MaxPool2d, Flatten, fused LinearReLU/ConvReLU2d, stubs and Identity"
    )


def sgd_step(model: nn.Module, lr: float) -> None:
    """``param -= lr * grad`` for every QAT module's stored ``grads``."""
    for mod in model.modules():
        for name, grad in mod.__dict__.get("grads", {}).items():
            mod.register_parameter(name, getattr(mod, name) - lr * grad)
