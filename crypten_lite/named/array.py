"""``NamedArray``: a thin plaintext numpy array with named dimensions, following the same
name-inference rules (and error wording) as named ``MPCTensor``s, so a named computation can
be checked in the clear and then run on secret-shared data unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.tensor import names as names_mod
from crypten_lite.tensor.names import Names
from crypten_lite.tensor.shape import ShapeMixin

__all__ = ["NamedArray"]


class NamedArray(ShapeMixin):
    """A numpy array plus one name (or None) per dim. Shape and name methods are shared
    with ``MPCTensor`` (``ShapeMixin``); arithmetic and reductions are numpy's."""

    __array_priority__ = 1000
    __slots__ = ("_names", "_share")

    def __init__(self, array: npt.ArrayLike, names: Sequence[str | None] | None = None) -> None:
        self._share = np.asarray(array)
        self._names = names_mod.check_names(names, self._share.ndim)

    # -- what ShapeMixin needs ---------------------------------------------------------------
    def _wrap(
        self,
        share: Any,
        precision: int | None = None,
        ptype: str | None = None,
        names: Sequence[str | None] | None = None,
    ) -> Any:
        out = np.asarray(share)
        if names is None and out.ndim == self._share.ndim:
            names = self._names
        return NamedArray(out, names)

    def _check_other(self, other: Any, *, integer_ok: bool = False) -> None:
        if not isinstance(other, NamedArray):
            raise TypeError("cat/stack of a NamedArray needs NamedArrays")

    def _add_masked_public(self, mask: npt.NDArray[np.bool_], value: float) -> Any:
        return NamedArray(np.where(mask, value, self._share), self._names)

    @property
    def array(self) -> npt.NDArray[Any]:
        """The underlying numpy array."""
        return self._share

    @property
    def share(self) -> npt.NDArray[Any]:
        return self._share

    @property
    def names(self) -> Names:
        return self._names

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._share.shape)

    @property
    def ndim(self) -> int:
        return int(self._share.ndim)

    def _axis(self, dim: Any) -> int:
        return names_mod.lookup(self._names, dim, self._share.ndim)

    def __repr__(self) -> str:
        return f"NamedArray({self._share!r}, names={self._names})"

    # -- arithmetic: names unified from the right ---------------------------------------------
    def _binary(self, other: Any, op: Any, reverse: bool = False) -> NamedArray:
        other_names = (
            other.names if isinstance(other, NamedArray) else names_mod.unnamed(np.ndim(other))
        )
        other_arr = other.array if isinstance(other, NamedArray) else np.asarray(other)
        if reverse:
            names = names_mod.unify_from_right(other_names, self._names)
            return NamedArray(op(other_arr, self._share), names)
        names = names_mod.unify_from_right(self._names, other_names)
        return NamedArray(op(self._share, other_arr), names)

    def __add__(self, other: Any) -> NamedArray:
        return self._binary(other, np.add)

    def __radd__(self, other: Any) -> NamedArray:
        return self._binary(other, np.add, reverse=True)

    def __sub__(self, other: Any) -> NamedArray:
        return self._binary(other, np.subtract)

    def __rsub__(self, other: Any) -> NamedArray:
        return self._binary(other, np.subtract, reverse=True)

    def __mul__(self, other: Any) -> NamedArray:
        return self._binary(other, np.multiply)

    def __rmul__(self, other: Any) -> NamedArray:
        return self._binary(other, np.multiply, reverse=True)

    def __truediv__(self, other: Any) -> NamedArray:
        return self._binary(other, np.divide)

    def __neg__(self) -> NamedArray:
        return NamedArray(-self._share, self._names)

    def __matmul__(self, other: Any) -> NamedArray:
        other_names = (
            other.names if isinstance(other, NamedArray) else names_mod.unnamed(np.ndim(other))
        )
        other_arr = other.array if isinstance(other, NamedArray) else np.asarray(other)
        names = names_mod.matmul_names(self._names, other_names)
        return NamedArray(np.matmul(self._share, other_arr), names)

    # -- reductions by position or name ---------------------------------------------------------
    def _reduce(self, fn: Any, dim: Any, keepdim: bool) -> NamedArray:
        if dim is None:
            return NamedArray(fn(self._share))
        dims = dim if isinstance(dim, list | tuple) else [dim]
        axes = tuple(self._axis(d) for d in dims)
        out = fn(self._share, axis=axes, keepdims=keepdim)
        kept = range(self.ndim) if keepdim else [i for i in range(self.ndim) if i not in axes]
        return NamedArray(out, [self._names[i] for i in kept])

    def sum(self, dim: Any = None, keepdim: bool = False) -> NamedArray:
        return self._reduce(np.sum, dim, keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> NamedArray:
        return self._reduce(np.mean, dim, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> NamedArray:
        """Maximum over ``dim`` (values only)."""
        return self._reduce(np.max, dim, keepdim)
