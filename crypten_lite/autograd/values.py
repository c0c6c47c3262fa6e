"""The two kinds of value autograd differentiates, and the local (communication-free) helpers
its rules need on both: a secret-shared ``MPCTensor`` or a public float64 numpy array.

Every helper here is linear or structural (sums, reshapes, scatters, crops): on shares it is
local, costs no round and moves no byte. Products and nonlinear maps stay in ``tensor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import names as names_mod

__all__ = [
    "Value",
    "as_value",
    "is_private",
    "like",
    "mul_mask",
    "rename_like",
    "scatter",
    "sum_to",
    "to_private",
    "vsum",
]

F64: TypeAlias = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
Value: TypeAlias = MPCTensor | F64


def is_private(value: object) -> bool:
    return isinstance(value, MPCTensor)


def as_value(value: Any, where: str) -> Value:
    """An MPCTensor as it is, anything numeric as a float64 array; else a TypeError naming
    ``where``."""
    if isinstance(value, MPCTensor):
        return value
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        kind = type(value).__name__
        raise TypeError(f"{where}: expected a number, numpy array or MPCTensor, got {kind}")
    return np.asarray(arr, dtype=np.float64)


def like(template: MPCTensor, share: U64, names: Sequence[str | None] | None = None) -> MPCTensor:
    """A tensor of ``template``'s session and precision holding ``share`` (names given, or
    none)."""
    return MPCTensor(template.session, np.ascontiguousarray(share, dtype=np.uint64),
                     template.precision, names=names)


def to_private(value: Value, template: MPCTensor, precision: int | None = None) -> MPCTensor:
    """A public array as a trivial sharing in ``template``'s session at ``precision``
    (default the template's; party 0 holds the encoding, the others zeros; no
    communication); a private value unchanged."""
    if isinstance(value, MPCTensor):
        return value
    bits = template.precision if precision is None else precision
    encoded = FixedPointEncoder(bits).encode(np.asarray(value, dtype=np.float64))
    share = encoded if template.session.rank == 0 else np.zeros_like(encoded)
    return MPCTensor(template.session, share, bits)


def vsum(value: Value, axes: tuple[int, ...], keepdim: bool) -> Value:
    """Sum over ``axes`` (local)."""
    if not axes:
        return value
    if isinstance(value, MPCTensor):
        return value.sum(axes, keepdim=keepdim)
    return np.asarray(np.sum(value, axis=axes, keepdims=keepdim), dtype=np.float64)


def sum_to(grad: Value, shape: tuple[int, ...]) -> Value:
    """Undo broadcasting: sum ``grad`` down to ``shape`` (local)."""
    gshape = tuple(grad.shape)
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    out = vsum(grad, tuple(range(lead)), keepdim=False)
    kept = tuple(i for i, size in enumerate(shape) if size == 1 and gshape[lead + i] != 1)
    out = vsum(out, kept, keepdim=True)
    return out.reshape(shape) if tuple(out.shape) != shape else out


def scatter(grad: Value, shape: tuple[int, ...], index: Any) -> Value:
    """Zeros of ``shape`` with ``grad`` added at ``index`` (repeated indices add; local)."""
    if isinstance(grad, MPCTensor):
        out = np.zeros(shape, dtype=np.uint64)
        np.add.at(out, index, grad.share)
        return like(grad, out)
    plain = np.zeros(shape, dtype=np.float64)
    np.add.at(plain, index, grad)
    return plain


def mul_mask(grad: Value, mask: MPCTensor | npt.NDArray[np.bool_]) -> Value:
    """``grad * mask`` for a 0/1 mask: a public mask is local; a private integer (precision
    0) mask costs one Beaver product and no truncation."""
    if not isinstance(mask, MPCTensor):
        return grad * mask.astype(np.int64)  # type: ignore[no-any-return]
    if not isinstance(grad, MPCTensor):
        grad = to_private(grad, mask, mask.session.config.precision)
    return grad.mul(mask)


def rename_like(grad: Value, names: names_mod.Names) -> Value:
    """``grad`` carrying ``names`` (gradients keep the names of what they differentiate)."""
    if isinstance(grad, MPCTensor) and names_mod.is_named(names) and grad.names != names:
        return grad.rename(*names)
    return grad
