"""Layers with parameters, with torch's constructor arguments, parameter names, layouts and default
initialisation. Each runs on plaintext numpy arrays and on MPCTensors (see ``functional``).

Initialisation follows torch: ``kaiming_uniform_(a=sqrt(5))`` for weights, i.e. uniform in
``±1/sqrt(fan_in)``, and the same bound for biases. Weights are not secret randomness, so a
numpy ``Generator`` (``rng=``, default ``np.random.default_rng()``) draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from crypten_lite.nn import functional as F
from crypten_lite.nn.module import Module

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "GroupNorm",
    "LayerNorm",
    "Linear",
]


def _positive(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def _tuple(value: int | Sequence[int], n: int, name: str, where: str) -> tuple[int, ...]:
    out = (value,) * n if isinstance(value, int) else tuple(value)
    if len(out) != n or not all(isinstance(v, int) and v >= 0 for v in out):
        raise ValueError(f"{where}: {name} must be an int or {n} non-negative ints, got {value!r}")
    return out


def _uniform(
    rng: np.random.Generator, bound: float, shape: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    return rng.uniform(-bound, bound, size=shape).astype(np.float64)


class _Layer(Module):
    """A leaf layer: validates the kind of its input and names itself in errors."""

    def _input(self, x: Any) -> F.Tensor:
        return F.as_input(x, self.describe())

    def _shape_error(self, expected: str, x: F.Tensor) -> ValueError:
        return ValueError(f"{self.describe()}: expected {expected}, got shape {tuple(x.shape)}")


class Linear(_Layer):
    """``y = x @ weight.T + bias``; ``weight`` is ``(out_features, in_features)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        rng = rng or np.random.default_rng()
        bound = 1.0 / math.sqrt(self.in_features)
        self.register_parameter("weight", _uniform(rng, bound, (out_features, in_features)))
        self.register_parameter("bias", _uniform(rng, bound, (out_features,)) if bias else None)

    def extra_repr(self) -> str:
        tail = "" if self.bias is not None else ", bias=False"
        return f"in_features={self.in_features}, out_features={self.out_features}{tail}"

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise self._shape_error(f"input with last dim {self.in_features}", x)
        return F.linear(x, self.weight, self.bias)


class _ConvNd(_Layer):
    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        self.in_channels = _positive(in_channels, "in_channels", name)
        self.out_channels = _positive(out_channels, "out_channels", name)
        self.groups = _positive(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels and out_channels must be divisible by groups")
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"{name}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = _tuple(stride, n, "stride", name)
        if min(self.stride) <= 0:
            raise ValueError(f"{name}: stride must be positive, got {stride!r}")
        self.padding = _tuple(padding, n, "padding", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        rng = rng or np.random.default_rng()
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.register_parameter("weight", _uniform(rng, bound, shape))
        self.register_parameter("bias", _uniform(rng, bound, (out_channels,)) if bias else None)

    def extra_repr(self) -> str:
        parts = [
            f"{self.in_channels}, {self.out_channels}",
            f"kernel_size={self.kernel_size}",
            f"stride={self.stride}",
        ]
        if any(self.padding):
            parts.append(f"padding={self.padding}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.bias is None:
            parts.append("bias=False")
        return ", ".join(parts)

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        n = self._dims
        if x.ndim != n + 2 or x.shape[1] != self.in_channels:
            dims = "(N, C, L)" if n == 1 else "(N, C, H, W)"
            raise self._shape_error(f"input {dims} with C={self.in_channels}", x)
        spatial = x.shape[2:]
        for size, k, p, d in zip(
            spatial, self.kernel_size, self.padding, self.dilation, strict=True
        ):
            if size + 2 * p < d * (k - 1) + 1:
                raise self._shape_error("input at least as large as the kernel", x)
        conv = F.conv1d if n == 1 else F.conv2d
        return conv(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """torch.nn.Conv1d: weight ``(out, in/groups, k)``, input ``(N, C, L)``."""

    _dims = 1


class Conv2d(_ConvNd):
    """torch.nn.Conv2d: weight ``(out, in/groups, kH, kW)``, input ``(N, C, H, W)``."""

    _dims = 2


class _BatchNorm(_Layer):
    """Batch norm over dim 1 (statistics over the batch and spatial dims), torch's semantics.

    Training mode normalizes with the batch mean and biased variance and updates
    ``running_mean``/``running_var`` (unbiased) by ``momentum`` and ``num_batches_tracked``
    from detached values (no graph). Plain numpy input and parameters: exact float64. An
    autograd Variable or MPCTensor anywhere (input or parameters): the statistics are built
    from Variable ops so gradients reach the input, ``weight`` and ``bias``; the running
    statistics become MPCTensors once they mix with a private mean.
    Cost (private input, training): two means (local, one truncation each), one Beaver square
    (1 round), ``inv_sqrt`` of ``var + eps`` (8 rounds with 2 parties, 14 with 3) and two
    products: about 11 rounds with 2 parties; the backward adds a few products.
    Accuracy: ``inv_sqrt`` is accurate (1e-3 relative) for ``var + eps`` in ``[2^-8, 2^8]``
    (``SessionConfig.approx.scale_range``): per-channel standard deviations between about
    0.06 and 16. Below, the normalized output is too small (``inv_sqrt`` saturates near 28-38);
    above, it is undefined. Measured against float64 with unit-variance inputs: outputs and
    gradients within 1e-2.
    Eval mode uses the running statistics (public: per-channel scale/shift computed in
    numpy; encrypted: ``inv_sqrt`` on the shared variance)."""

    _ndims: tuple[int, ...] = (2, 3)

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
    ) -> None:
        super().__init__()
        self.num_features = _positive(num_features, "num_features", type(self).__name__)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = affine
        self.register_parameter("weight", np.ones(num_features) if affine else None)
        self.register_parameter("bias", np.zeros(num_features) if affine else None)
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise self._shape_error(
                f"input of {' or '.join(map(str, self._ndims))} dims with C={self.num_features}",
                x,
            )
        if self.training:
            from crypten_lite.autograd import Variable

            tensors = (x, self.weight, self.bias, self.running_mean, self.running_var)
            if any(F.is_encrypted(t) or isinstance(t, Variable) for t in tensors):
                return self._train_forward_autograd(x)
            return self._train_forward(x)  # type: ignore[arg-type]
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.eps
        )

    def _train_forward(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        axes = (0, *range(2, x.ndim))
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        count = x.size // self.num_features
        m = self.momentum
        unbiased = var * count / max(count - 1, 1)
        self.register_buffer("running_mean", (1 - m) * self.running_mean + m * mean)
        self.register_buffer("running_var", (1 - m) * self.running_var + m * unbiased)
        self.register_buffer("num_batches_tracked", self.num_batches_tracked + 1)
        out: np.ndarray[Any, Any] = F.batch_norm(x, mean, var, self.weight, self.bias, self.eps)  # type: ignore[assignment]
        return out


    def _train_forward_autograd(self, x: F.Tensor) -> Any:
        """Training mode with Variable ops (see the class doc); returns a Variable."""
        from crypten_lite.autograd import Variable

        inp = x if isinstance(x, Variable) else Variable(x)
        axes = (0, *range(2, inp.ndim))
        shape = (1, -1) + (1,) * (inp.ndim - 2)
        mean = inp.mean(axes, keepdim=True)
        centered = inp - mean
        var = (centered * centered).mean(axes, keepdim=True)
        out = centered * (var + self.eps).inv_sqrt()
        if self.weight is not None:
            out = out * self._channel(self.weight, shape)
        if self.bias is not None:
            out = out + self._channel(self.bias, shape)
        count = inp.numel() // self.num_features
        m = self.momentum
        batch_mean = mean.data.reshape(self.num_features)
        unbiased = var.data.reshape(self.num_features) * (count / max(count - 1, 1))
        self.register_buffer("running_mean", self.running_mean * (1 - m) + batch_mean * m)
        self.register_buffer("running_var", self.running_var * (1 - m) + unbiased * m)
        self.register_buffer("num_batches_tracked", self.num_batches_tracked + 1)
        return out

    @staticmethod
    def _channel(value: Any, shape: tuple[int, ...]) -> Any:
        """A per-channel parameter reshaped to broadcast over ``(N, C, ...)``."""
        if isinstance(value, np.ndarray):
            return np.asarray(value, dtype=np.float64).reshape(shape)
        return value.reshape(*shape)


class BatchNorm1d(_BatchNorm):
    """Input ``(N, C)`` or ``(N, C, L)``."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input ``(N, C, H, W)``."""

    _ndims = (4,)


class LayerNorm(_Layer):
    """Normalize over the trailing ``normalized_shape`` dims (``inv_sqrt`` on MPCTensors)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        for s in shape:
            _positive(s, "normalized_shape", "LayerNorm")
        self.normalized_shape = shape
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        affine = elementwise_affine
        self.register_parameter("weight", np.ones(shape) if affine else None)
        self.register_parameter("bias", np.zeros(shape) if affine and bias else None)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        n = len(self.normalized_shape)
        if x.ndim < n or tuple(x.shape[x.ndim - n :]) != self.normalized_shape:
            raise self._shape_error(f"input ending in {self.normalized_shape}", x)
        return F.layer_norm(x, n, self.weight, self.bias, self.eps)


class GroupNorm(_Layer):
    """torch.nn.GroupNorm: the ``num_channels`` channels of each sample split into
    ``num_groups`` groups, each normalized over its channels and spatial positions (biased
    variance), then per-channel ``weight``/``bias`` (ones/zeros). Encrypted: ``inv_sqrt`` of
    the shared variance, accurate for ``var + eps`` in ``[2^-8, 2^8]`` (as LayerNorm)."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True
    ) -> None:
        super().__init__()
        self.num_groups = _positive(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        if isinstance(eps, bool) or not isinstance(eps, int | float) or eps < 0:
            raise ValueError(f"GroupNorm: eps must be a non-negative number, got {eps!r}")
        self.eps = float(eps)
        self.affine = bool(affine)
        self.register_parameter("weight", np.ones(num_channels) if affine else None)
        self.register_parameter("bias", np.zeros(num_channels) if affine else None)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise self._shape_error(f"input (N, C, *) with C={self.num_channels}", x)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
