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
    "AvgPool2d",
    "Dropout",
    "Flatten",
    "Identity",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
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
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
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
