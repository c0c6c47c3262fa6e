"""Layers without parameters (activations, pooling, reshaping, dropout), torch's arguments.

Each runs on plaintext numpy arrays and on MPCTensors (see ``functional``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from crypten_lite.autograd import Variable
from crypten_lite.errors import ProtocolError
from crypten_lite.nn import functional as F
from crypten_lite.nn.layers import _Layer, _tuple
from crypten_lite.ring.prg import SEED_SIZE, AesCtrPrg
from crypten_lite.tensor import MPCTensor

__all__ = [
    "GELU",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "Hardtanh",
    "Identity",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
    "ReLU6",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


class ReLU(_Layer):
    def forward(self, *args: Any) -> Any:
        return F.relu(self._input(args[0]))


class Sigmoid(_Layer):
    def forward(self, *args: Any) -> Any:
        return F.sigmoid(self._input(args[0]))


class Tanh(_Layer):
    def forward(self, *args: Any) -> Any:
        return F.tanh(self._input(args[0]))


class GELU(_Layer):
    """``approximate`` ('none' or 'tanh') applies to plaintext; MPCTensors use the library's
    GELU approximation either way."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"

    def forward(self, *args: Any) -> Any:
        return F.gelu(self._input(args[0]), self.approximate)


class _DimLayer(_Layer):
    def __init__(self, dim: int) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"{type(self).__name__}: dim must be an int, got {dim!r}")
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def _checked(self, x: Any) -> F.Tensor:
        t = self._input(x)
        if not -t.ndim <= self.dim < t.ndim:
            raise self._shape_error(f"input with dim {self.dim}", t)
        return t


class Softmax(_DimLayer):
    def forward(self, *args: Any) -> Any:
        return F.softmax(self._checked(args[0]), self.dim)


class LogSoftmax(_DimLayer):
    def forward(self, *args: Any) -> Any:
        return F.log_softmax(self._checked(args[0]), self.dim)


class _Pool2d(_Layer):
    def _pool_input(self, x: Any) -> F.Tensor:
        t = self._input(x)
        if t.ndim not in (3, 4):
            raise self._shape_error("input (N, C, H, W) or (C, H, W)", t)
        return t


class MaxPool2d(_Pool2d):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
    ) -> None:
        super().__init__()
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", "MaxPool2d")
        self.stride = (
            self.kernel_size if stride is None else _tuple(stride, 2, "stride", "MaxPool2d")
        )
        self.padding = _tuple(padding, 2, "padding", "MaxPool2d")
        self.dilation = _tuple(dilation, 2, "dilation", "MaxPool2d")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0 or min(self.dilation) <= 0:
            raise ValueError("MaxPool2d: kernel_size, stride and dilation must be positive")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError("MaxPool2d: padding must be at most half of kernel_size")

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}"
        )

    def forward(self, *args: Any) -> Any:
        return F.max_pool2d(
            self._pool_input(args[0]),
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )


class AvgPool2d(_Pool2d):
    """``count_include_pad=True`` (torch's default) only."""

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", "AvgPool2d")
        self.stride = (
            self.kernel_size if stride is None else _tuple(stride, 2, "stride", "AvgPool2d")
        )
        self.padding = _tuple(padding, 2, "padding", "AvgPool2d")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0:
            raise ValueError("AvgPool2d: kernel_size and stride must be positive")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, *args: Any) -> Any:
        return F.avg_pool2d(
            self._pool_input(args[0]),
            self.kernel_size,
            self.stride,
            self.padding,
        )


class AdaptiveAvgPool2d(_Pool2d):
    def __init__(self, output_size: int | Sequence[int]) -> None:
        super().__init__()
        self.output_size = _tuple(output_size, 2, "output_size", "AdaptiveAvgPool2d")
        if min(self.output_size) <= 0:
            raise ValueError("AdaptiveAvgPool2d: output_size must be positive")

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, *args: Any) -> Any:
        return F.adaptive_avg_pool2d(self._pool_input(args[0]), self.output_size)


class Flatten(_Layer):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        nd = max(x.ndim, 1)
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd):
            raise self._shape_error(f"input with dims {self.start_dim}..{self.end_dim}", x)
        if self.start_dim % nd > self.end_dim % nd:
            raise self._shape_error("start_dim not after end_dim", x)
        return F.flatten(x, self.start_dim, self.end_dim)


class Dropout(_Layer):
    """Inverted dropout in training mode, identity in eval mode (``functional.dropout``).

    Plaintext arrays: the keep-mask comes from ``rng`` (numpy). Encrypted input (MPCTensor
    or private Variable): the mask is PUBLIC and independent of the data (it reveals
    nothing about the data), the same on every party: at the layer's first encrypted use in
    training, party 0 draws a 32-byte seed with ``secrets`` and broadcasts it (1 round, once
    per layer); every party then expands the same mask from an AES-CTR stream
    (``ring.prg.AesCtrPrg``), so all parties must call the layer the same number of times
    with the same shapes. Cost per call: a public multiply (local plus one truncation). The
    stream holds key material: a Dropout that has run encrypted cannot be deep-copied.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self._rng = rng or np.random.default_rng()
        self._mask_prg: AesCtrPrg | None = None

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def _shared_prg(self, x: F.Tensor) -> AesCtrPrg:
        """The mask stream all parties share (its seed broadcast from party 0 once)."""
        if self._mask_prg is None:
            value = x.data if isinstance(x, Variable) else x
            if not isinstance(value, MPCTensor):
                raise TypeError("Dropout: the shared mask stream needs an encrypted input")
            comm = value.session.comm
            seed = secrets.token_bytes(SEED_SIZE) if comm.rank == 0 else None
            message = comm.broadcast(
                np.frombuffer(seed, dtype=np.uint8).copy() if seed is not None else None, 0
            )
            if message.dtype != np.uint8 or message.shape != (SEED_SIZE,):
                raise ProtocolError("Dropout: malformed mask seed from party 0")
            self._mask_prg = AesCtrPrg.from_seed(message.tobytes())
        return self._mask_prg

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        prg = None
        if self.training and 0.0 < self.p and F.is_encrypted(x):
            prg = self._shared_prg(x)
        return F.dropout(x, self.p, self.training, self._rng, prg)


class Identity(_Layer):
    def forward(self, *args: Any) -> Any:
        return self._input(args[0])


class Hardtanh(_Layer):
    """``clamp(x, min_val, max_val)``: numpy exact; MPCTensor ``clamp`` (4 rounds);
    autograd Variables via two relus so gradients flow (``functional.hardtanh``)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        for label, value in (("min_val", min_val), ("max_val", max_val)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise TypeError(f"{name}: {label} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"{name}: {label} must be finite, got {value!r}")
        if not max_val > min_val:
            raise ValueError(
                f"{name}: max_val ({max_val}) must be greater than min_val ({min_val})"
            )
        self.min_val = float(min_val)
        self.max_val = float(max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def forward(self, *args: Any) -> Any:
        return F.hardtanh(self._input(args[0]), self.min_val, self.max_val)


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)`` (Hardtanh(0, 6))."""

    def __init__(self) -> None:
        super().__init__(0.0, 6.0)

    def extra_repr(self) -> str:
        return ""


class AdaptiveMaxPool2d(_Pool2d):
    """torch.nn.AdaptiveMaxPool2d (values only: ``return_indices=True`` is refused).
    ``None`` in ``output_size`` keeps that input size. Encrypted: see
    ``functional.adaptive_max_pool2d`` (a relu tournament per window)."""

    def __init__(
        self, output_size: int | Sequence[int | None] | None, return_indices: bool = False
    ) -> None:
        super().__init__()
        if return_indices:
            raise ValueError("AdaptiveMaxPool2d: return_indices=True is not supported")
        sizes = (
            tuple(output_size)
            if isinstance(output_size, Sequence)
            else (output_size, output_size)
        )
        if len(sizes) != 2 or not all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in sizes
        ):
            raise ValueError(
                f"AdaptiveMaxPool2d: output_size must be a positive int (or None) or two of "
                f"them, got {output_size!r}"
            )
        self.output_size: tuple[int | None, ...] = sizes

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, *args: Any) -> Any:
        x = self._pool_input(args[0])
        h, w = int(x.shape[-2]), int(x.shape[-1])
        out_h = h if self.output_size[0] is None else self.output_size[0]
        out_w = w if self.output_size[1] is None else self.output_size[1]
        if h == 0 or w == 0:
            raise self._shape_error("a non-empty spatial input", x)
        return F.adaptive_max_pool2d(x, (out_h, out_w))


class Dropout2d(Dropout):
    """Channel-wise dropout on ``(N, C, H, W)`` or ``(C, H, W)`` (torch.nn.Dropout2d): each
    channel is zeroed with probability ``p`` in training, the rest scaled by ``1/(1-p)``.
    Encrypted inputs use a PUBLIC mask from the stream every party shares (see
    :class:`Dropout`): one value per channel, independent of the data."""

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        if x.ndim not in (3, 4):
            raise self._shape_error("input (N, C, H, W) or (C, H, W)", x)
        prg = None
        if self.training and 0.0 < self.p and F.is_encrypted(x):
            prg = self._shared_prg(x)
        return F.dropout2d(x, self.p, self.training, self._rng, prg)


class _ConstantPadNd(_Layer):
    _dims = 1

    def __init__(self, padding: int | Sequence[int], value: float) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        if isinstance(padding, int) and not isinstance(padding, bool):
            pads = (padding,) * (2 * n)
        elif isinstance(padding, Sequence):
            pads = tuple(padding)
        else:
            raise TypeError(f"{name}: padding must be an int or {2 * n} ints, got {padding!r}")
        if len(pads) != 2 * n or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in pads
        ):
            raise ValueError(f"{name}: padding must be an int or {2 * n} ints, got {padding!r}")
        if min(pads) < 0:
            raise ValueError(f"{name}: negative padding (cropping) is not supported, got {pads}")
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise TypeError(f"{name}: value must be a number, got {value!r}")
        self.padding: tuple[int, ...] = pads
        self.value = float(value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"

    def forward(self, *args: Any) -> Any:
        x = self._input(args[0])
        n = self._dims
        if x.ndim not in (n + 1, n + 2):
            raise self._shape_error(f"input of {n + 1} or {n + 2} dims", x)
        return F.constant_pad(x, self.padding, self.value)


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim: ``padding`` is an int or ``(left, right)``."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims: an int or ``(left, right, top, bottom)``."""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims: an int or ``(left, right, top, bottom, front, back)``."""

    _dims = 3
