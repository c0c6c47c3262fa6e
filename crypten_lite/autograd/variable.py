"""``Variable``: a tensor that records the operations applied to it, and ``Parameter``.

A Variable holds one value — an ``MPCTensor`` (secret-shared) or a float64 numpy array
(public) — and, when it requires a gradient, the node of the operation that produced it. It
does not extend ``MPCTensor``: autograd is a layer above ``tensor``, and its methods are thin
calls into the rules of ``ops_*`` (each written next to its forward). Operands may mix
Variables, MPCTensors, numpy arrays and numbers; only Variables that require a gradient get
one. ``grad`` is an MPCTensor when the gradient depends on a secret, else a numpy array, and
keeps the names of a named tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from crypten_lite.autograd import ops_arith, ops_conv, ops_shape, ops_unary
from crypten_lite.autograd.graph import Node, run_backward
from crypten_lite.autograd.values import Value, as_value
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import names as names_mod

__all__ = ["Parameter", "Variable"]


class Variable:
    """See module doc. ``Variable(value, requires_grad=False)``."""

    # Above MPCTensor's 1000: MPCTensor and numpy operators defer to ours.
    __array_priority__ = 2000
    __array_ufunc__ = None
    __slots__ = ("_data", "_deferred", "grad", "grad_fn", "requires_grad")

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        if isinstance(data, Variable):
            raise TypeError("data is already a Variable; use .detach() or .data")
        if not isinstance(requires_grad, bool):
            raise TypeError(f"requires_grad must be a bool, got {type(requires_grad).__name__}")
        self._data: Value | None = as_value(data, "Variable")
        self._deferred: tuple[tuple[int, ...], Callable[[], Value]] | None = None
        self.requires_grad = requires_grad
        self.grad: Value | None = None
        self.grad_fn: Node | None = None

    @classmethod
    def deferred(cls, shape: tuple[int, ...], compute: Callable[[], Value]) -> Variable:
        """A Variable whose value is computed on first use (losses: their backward does not
        need their value, so a training step that never reads the loss never pays for it).
        Every party runs the same program, so every party computes it at the same point."""
        out = cls(np.zeros(()))
        out._data, out._deferred = None, (tuple(shape), compute)
        return out

    @property
    def data(self) -> Value:
        """The value: an MPCTensor (secret-shared) or a float64 numpy array (public)."""
        if self._data is None:
            if self._deferred is None:  # unreachable: one of the two is always set
                raise RuntimeError("Variable has no value")
            self._data, self._deferred = self._deferred[1](), None
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data, self._deferred = as_value(value, "Variable.data"), None

    # -- metadata ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        if self._data is None and self._deferred is not None:
            return self._deferred[0]
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def size(self) -> names_mod.Size:
        """The element count, callable like torch (see ``MPCTensor.size``)."""
        return names_mod.Size(self.shape, self.names)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def names(self) -> names_mod.Names:
        if self._data is not None and isinstance(self._data, MPCTensor):
            return self._data.names
        return names_mod.unnamed(self.ndim)

    @property
    def is_encrypted(self) -> bool:
        """Whether the value is secret-shared (a deferred value is computed first)."""
        return isinstance(self.data, MPCTensor)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __repr__(self) -> str:
        kind = "encrypted" if self.is_encrypted else "public"
        grad = f", grad_fn={self.grad_fn!r}" if self.grad_fn is not None else ""
        flag = ", requires_grad=True" if self.requires_grad and self.grad_fn is None else ""
        return f"{type(self).__name__}(shape={self.shape}, {kind}{flag}{grad})"

    def __bool__(self) -> bool:
        if self.is_encrypted:
            raise TypeError("the truth value of an encrypted tensor is secret; reveal it first")
        return bool(np.asarray(self.data))

    # -- autograd ---------------------------------------------------------------------------
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate ``d self / d leaf`` (times ``gradient``) into every leaf's ``.grad``.
        ``gradient`` is required unless this is a one-element tensor."""
        grad = None if gradient is None else (
            gradient.data if isinstance(gradient, Variable) else as_value(gradient, "gradient")
        )
        run_backward(self, grad, retain_graph)

    def detach(self) -> Variable:
        """The same value, cut from the graph (no gradient flows through it)."""
        return Variable(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # -- reveal -----------------------------------------------------------------------------
    def get_plain_text(self, dst: int | None = None) -> Any:
        """The value in the clear (1 round when encrypted; see ``MPCTensor.get_plain_text``)."""
        if isinstance(self.data, MPCTensor):
            return self.data.get_plain_text(dst)
        return self.data.copy()

    # -- arithmetic -------------------------------------------------------------------------
    def add(self, other: Any) -> Variable:
        return ops_arith.add(self, other)

    def sub(self, other: Any) -> Variable:
        return ops_arith.sub(self, other)

    def mul(self, other: Any) -> Variable:
        return ops_arith.mul(self, other)

    def div(self, other: Any) -> Variable:
        return ops_arith.div(self, other)

    def neg(self) -> Variable:
        return ops_arith.neg(self)

    def matmul(self, other: Any) -> Variable:
        return ops_arith.matmul(self, other)

    def square(self) -> Variable:
        return ops_arith.mul(self, self)

    def pow(self, exponent: int) -> Variable:
        return ops_arith.pow_int(self, exponent)

    def __add__(self, other: Any) -> Variable:
        return ops_arith.add(self, other)

    def __radd__(self, other: Any) -> Variable:
        return ops_arith.add(other, self)

    def __sub__(self, other: Any) -> Variable:
        return ops_arith.sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return ops_arith.sub(other, self)

    def __mul__(self, other: Any) -> Variable:
        return ops_arith.mul(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return ops_arith.mul(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return ops_arith.div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return ops_arith.div(other, self)

    def __matmul__(self, other: Any) -> Variable:
        return ops_arith.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return ops_arith.matmul(other, self)

    def __neg__(self) -> Variable:
        return ops_arith.neg(self)

    def __pow__(self, exponent: int) -> Variable:
        return ops_arith.pow_int(self, exponent)

    # -- nonlinear --------------------------------------------------------------------------
    def relu(self) -> Variable:
        return ops_unary.relu(self)

    def exp(self) -> Variable:
        return ops_unary.exp(self)

    def log(self) -> Variable:
        return ops_unary.log(self)

    def reciprocal(self) -> Variable:
        return ops_unary.reciprocal(self)

    def sqrt(self) -> Variable:
        return ops_unary.sqrt(self)

    def inv_sqrt(self) -> Variable:
        return ops_unary.inv_sqrt(self)

    def sigmoid(self) -> Variable:
        return ops_unary.sigmoid(self)

    def tanh(self) -> Variable:
        return ops_unary.tanh(self)

    def gelu(self) -> Variable:
        return ops_unary.gelu(self)

    def softmax(self, dim: int | str) -> Variable:
        return ops_unary.softmax(self, dim)

    def log_softmax(self, dim: int | str) -> Variable:
        return ops_unary.log_softmax(self, dim)

    # -- reductions -------------------------------------------------------------------------
    def sum(self, dim: Any = None, keepdim: bool = False) -> Variable:
        return ops_shape.sum(self, dim, keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Variable:
        return ops_shape.mean(self, dim, keepdim)

    def var(self, dim: Any = None, keepdim: bool = False, unbiased: bool = True) -> Variable:
        """Variance as ``mean((x - mean x)^2)`` with Bessel's correction when ``unbiased``."""
        centered = self - self.mean(dim, keepdim=True)
        squares = (centered * centered).sum(dim, keepdim)
        count = self.numel() // max(squares.numel(), 1)
        if count - int(unbiased) <= 0:
            raise ValueError("var needs at least 2 elements along dim (unbiased)")
        return squares * (1.0 / (count - int(unbiased)))

    # -- shape ------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Variable:
        return ops_shape.reshape(self, *shape)

    view = reshape

    def transpose(self, dim0: Any, dim1: Any) -> Variable:
        return ops_shape.transpose(self, dim0, dim1)

    def t(self) -> Variable:
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dims, got {self.ndim}")
        return self if self.ndim < 2 else ops_shape.transpose(self, 0, 1)

    @property
    def T(self) -> Variable:
        return ops_shape.permute(self, list(range(self.ndim))[::-1])

    def permute(self, *dims: Any) -> Variable:
        return ops_shape.permute(self, *dims)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Variable:
        return ops_shape.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> Variable:
        return ops_shape.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Variable:
        return ops_shape.unsqueeze(self, dim)

    def expand(self, *sizes: Any) -> Variable:
        return ops_shape.expand(self, *sizes)

    def pad(self, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Variable:
        if mode != "constant":
            raise ValueError(f"only constant padding is supported, got mode={mode!r}")
        return ops_shape.pad(self, pad, value)

    def __getitem__(self, index: Any) -> Variable:
        if isinstance(index, Variable | MPCTensor):
            raise TypeError("indexing with a tensor-valued index is not supported")
        return ops_shape.getitem(self, index)

    # -- convolution and pooling ------------------------------------------------------------
    def conv2d(
        self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1,
    ) -> Variable:
        out = ops_conv.conv2d(self, weight, stride, padding, dilation, groups)
        return out if bias is None else out + _channel_bias(bias, 2)

    def conv1d(
        self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1,
    ) -> Variable:
        """1-D convolution as a 2-D one over a height-1 image (same cost)."""
        w = weight.unsqueeze(2) if isinstance(weight, Variable) else _unsqueeze2(weight)
        out = ops_conv.conv2d(
            self.unsqueeze(2), w, (1, _int(stride)), (0, _int(padding)), (1, _int(dilation)),
            groups,
        ).squeeze(2)
        return out if bias is None else out + _channel_bias(bias, 1)

    def conv_transpose2d(
        self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
        output_padding: Any = 0, groups: int = 1, dilation: Any = 1,
    ) -> Variable:
        out = ops_conv.conv_transpose2d(
            self, weight, stride, padding, output_padding, groups, dilation
        )
        return out if bias is None else out + _channel_bias(bias, 2)

    def avg_pool2d(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Variable:
        return ops_conv.avg_pool2d(self, kernel_size, stride, padding)

    def adaptive_avg_pool2d(self, output_size: Any) -> Variable:
        return ops_conv.adaptive_avg_pool2d(self, output_size)

    def max_pool2d(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
    ) -> Variable:
        return ops_conv.max_pool2d(self, kernel_size, stride, padding, dilation)


def _int(value: Any) -> int:
    return int(value[0]) if isinstance(value, Sequence) else int(value)


def _unsqueeze2(weight: Any) -> Any:
    value = weight if isinstance(weight, MPCTensor) else np.asarray(weight, dtype=np.float64)
    return value.unsqueeze(2) if isinstance(value, MPCTensor) else value[:, :, None, :]


def _channel_bias(bias: Any, spatial: int) -> Any:
    shape = (1, -1) + (1,) * spatial
    if isinstance(bias, Variable | MPCTensor):
        return bias.reshape(*shape)
    return np.asarray(bias, dtype=np.float64).reshape(shape)


class Parameter(Variable):
    """A learnable leaf: a Variable that requires a gradient by default (what
    ``Module.parameters()`` yields in training and what optimizers update in place)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad)
