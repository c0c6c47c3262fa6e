"""Gradient rules of the shape ops and reductions: reshape/view, transpose, permute,
flatten, squeeze/unsqueeze, expand, indexing and slicing, cat, stack, pad, sum, mean.

All forwards and backwards are local on shares (no round, no byte), except that ``mean``'s
backward multiplies by the public ``1/n`` (one truncation, as its forward). Dims may be
given by name on named MPCTensors; they are resolved once, in the forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from crypten_lite.autograd.graph import record
from crypten_lite.autograd.ops_arith import unpack
from crypten_lite.autograd.values import Value, scatter, sum_to, to_private, vsum
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import cat as mpc_cat

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = [
    "cat",
    "expand",
    "flatten",
    "getitem",
    "mean",
    "pad",
    "permute",
    "reshape",
    "squeeze",
    "stack",
    "sum",
    "transpose",
    "unsqueeze",
]


def _axis(v: Value, dim: Any, ndim: int | None = None) -> int:
    n = v.ndim if ndim is None else ndim
    if isinstance(v, MPCTensor) and ndim is None:
        return v._axis(dim)
    if isinstance(dim, str):
        raise TypeError("a named dim needs a (named) MPCTensor")
    if not -n <= int(dim) < max(n, 1):
        raise IndexError(f"dim {dim} is out of range for {n} dims")
    return int(dim) % max(n, 1)


def _axes(v: Value, dim: Any) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(v.ndim))
    dims = (dim,) if isinstance(dim, int | np.integer | str) else tuple(dim)
    return tuple(sorted(_axis(v, d) for d in dims))


def _reshape(v: Value, shape: tuple[int, ...]) -> Value:
    return v.reshape(shape)


def reshape(x: Any, *shape: Any) -> Variable:
    v, src = unpack(x, "reshape")
    sizes = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], Sequence) else shape
    out = _reshape(v, tuple(int(s) for s in sizes))
    original = tuple(v.shape)

    def backward(g: Value) -> tuple[Value]:
        return (_reshape(g, original),)

    return record(out, (src,), backward, "Reshape")


def _permute(v: Value, axes: Sequence[int]) -> Value:
    if isinstance(v, MPCTensor):
        return v.permute(*axes)
    return np.transpose(v, axes)


def permute(x: Any, *dims: Any) -> Variable:
    v, src = unpack(x, "permute")
    order = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], Sequence) else dims
    axes = [_axis(v, d) for d in order]
    if sorted(axes) != list(range(v.ndim)):
        raise ValueError(f"permute: {tuple(order)} is not a permutation of {v.ndim} dims")
    inverse = list(np.argsort(axes))

    def backward(g: Value) -> tuple[Value]:
        return (_permute(g, [int(i) for i in inverse]),)

    return record(_permute(v, axes), (src,), backward, "Permute")


def transpose(x: Any, dim0: Any, dim1: Any) -> Variable:
    v, _ = unpack(x, "transpose")
    a, b = _axis(v, dim0), _axis(v, dim1)
    axes = list(range(v.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return permute(x, axes)


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Variable:
    v, _ = unpack(x, "flatten")
    if v.ndim == 0:
        return reshape(x, (1,))
    start, end = _axis(v, start_dim), _axis(v, end_dim)
    shape = tuple(v.shape)
    return reshape(x, (*shape[:start], -1, *shape[end + 1 :]))


def _named_reshape(x: Any, name: str, shape: tuple[int, ...], names: Any) -> Variable:
    """A reshape that keeps the names ``names`` on a named MPCTensor (squeeze/unsqueeze)."""
    v, src = unpack(x, name)
    original = tuple(v.shape)
    out: Value = v.reshape(shape)
    if isinstance(out, MPCTensor) and names is not None:
        out = out.rename(*names) if any(n is not None for n in names) else out

    def backward(g: Value) -> tuple[Value]:
        return (_reshape(g, original),)

    return record(out, (src,), backward, name.capitalize())


def squeeze(x: Any, dim: Any = None) -> Variable:
    v, _ = unpack(x, "squeeze")
    shape = tuple(v.shape)
    names = list(v.names) if isinstance(v, MPCTensor) else [None] * len(shape)
    if dim is None:
        keep = [i for i, s in enumerate(shape) if s != 1]
    else:
        axis = _axis(v, dim)
        keep = [i for i in range(len(shape)) if i != axis or shape[axis] != 1]
    return _named_reshape(
        x, "squeeze", tuple(shape[i] for i in keep), tuple(names[i] for i in keep)
    )


def unsqueeze(x: Any, dim: int) -> Variable:
    v, _ = unpack(x, "unsqueeze")
    axis = _axis(v, dim, v.ndim + 1)
    shape = tuple(v.shape)
    names = tuple(v.names) if isinstance(v, MPCTensor) else (None,) * len(shape)
    return _named_reshape(
        x, "unsqueeze", (*shape[:axis], 1, *shape[axis:]), (*names[:axis], None, *names[axis:])
    )


def expand(x: Any, *sizes: Any) -> Variable:
    v, src = unpack(x, "expand")
    target = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], Sequence) else sizes
    shape = tuple(v.shape)
    offset = len(target) - len(shape)
    full = tuple(
        shape[i - offset] if int(s) == -1 and i >= offset else int(s) for i, s in enumerate(target)
    )
    out: Value = v.expand(*full) if isinstance(v, MPCTensor) else np.broadcast_to(v, full).copy()

    def backward(g: Value) -> tuple[Value]:
        return (sum_to(g, shape),)

    return record(out, (src,), backward, "Expand")


def getitem(x: Any, index: Any) -> Variable:
    """Indexing and slicing with public indices (repeated indices add in backward)."""
    v, src = unpack(x, "index")
    out: Value = v[index]
    shape = tuple(v.shape)

    def backward(g: Value) -> tuple[Value]:
        return (scatter(g, shape, index),)

    return record(out, (src,), backward, "Index")


def cat(tensors: Sequence[Any], dim: int = 0) -> Variable:
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    parts = [unpack(t, "cat") for t in tensors]
    values = [p[0] for p in parts]
    axis = _axis(values[0], dim)
    private = [isinstance(v, MPCTensor) for v in values]
    out: Value
    if any(private):
        template = next(v for v in values if isinstance(v, MPCTensor))
        out = mpc_cat([to_private(v, template) for v in values], dim=axis)
    else:
        out = np.concatenate([np.asarray(v) for v in values], axis=axis)
    bounds = np.cumsum([v.shape[axis] for v in values])[:-1]

    def backward(g: Value) -> list[Value]:
        if isinstance(g, MPCTensor):
            return list(g.split([int(v.shape[axis]) for v in values], dim=axis))
        return list(np.split(g, bounds, axis=axis))

    return record(out, [p[1] for p in parts], backward, "Cat")


def stack(tensors: Sequence[Any], dim: int = 0) -> Variable:
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    first, _ = unpack(tensors[0], "stack")
    axis = _axis(first, dim, first.ndim + 1)
    return cat([unsqueeze(t, axis) for t in tensors], dim=axis)


def pad(x: Any, widths: Sequence[int], value: float = 0.0) -> Variable:
    """torch.nn.functional.pad, constant mode (``widths`` in (left, right) pairs from the
    last dim); backward crops."""
    v, src = unpack(x, "pad")
    if len(widths) % 2 or len(widths) // 2 > v.ndim:
        raise ValueError("padding length must be even and at most 2 * ndim")
    pairs = [(0, 0)] * v.ndim
    for i in range(len(widths) // 2):
        pairs[v.ndim - 1 - i] = (int(widths[2 * i]), int(widths[2 * i + 1]))
    out: Value
    if isinstance(v, MPCTensor):
        out = v.pad(list(widths), value=value)
    else:
        out = np.pad(v, pairs, constant_values=value)
    crop = tuple(slice(lo, lo + size) for (lo, _), size in zip(pairs, v.shape, strict=True))

    def backward(g: Value) -> tuple[Value]:
        return (g[crop],)

    return record(out, (src,), backward, "Pad")


def sum(x: Any, dim: Any = None, keepdim: bool = False) -> Variable:
    v, src = unpack(x, "sum")
    axes = _axes(v, dim)
    out = vsum(v, axes, keepdim) if axes else v
    shape = tuple(v.shape)
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))

    def backward(g: Value) -> tuple[Value]:
        grown = g if keepdim else _reshape(g, kept)
        if isinstance(grown, MPCTensor):
            return (grown.expand(*shape),)
        return (np.broadcast_to(grown, shape).copy(),)

    return record(out, (src,), backward, "Sum")


def mean(x: Any, dim: Any = None, keepdim: bool = False) -> Variable:
    """Mean: ``sum * (1/n)``; the backward spreads ``g / n`` (one truncation)."""
    v, _ = unpack(x, "mean")
    axes = _axes(v, dim)
    count = int(np.prod([v.shape[a] for a in axes])) if axes else 1
    if count == 0:
        raise ValueError("mean of an empty dimension")
    from crypten_lite.autograd.ops_arith import mul

    return mul(sum(x, dim, keepdim), np.array(1.0 / count))
