"""Shape operations on shared tensors, torch semantics. All are local (0 rounds, 0 bytes):
the same rearrangement applied to every party's share is a sharing of the rearranged value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite.tensor import names as names_mod
from crypten_lite.tensor._stubs import TensorStubs

if TYPE_CHECKING:
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["ShapeMixin", "cat", "int_tuple", "normalize_dim", "stack"]

U64 = npt.NDArray[np.uint64]


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """A torch-style (possibly negative) dim as a non-negative axis, or IndexError."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(
            f"{name} out of range (expected to be in range of [{-span}, {span - 1}], got {dim})"
        )
    return int(dim) % span


def int_tuple(value: int | Sequence[int], dims: int, name: str) -> tuple[int, ...]:
    """``value`` as ``dims`` ints (an int is repeated), or a ValueError naming ``name``."""
    out = (
        (int(value),) * dims
        if isinstance(value, int | np.integer)
        else tuple(int(v) for v in value)
    )
    if len(out) != dims:
        raise ValueError(f"{name} must be an int or a tuple of {dims} ints, got {value!r}")
    return out


def _sizes(args: tuple[Any, ...]) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], Sequence | np.ndarray):
        return tuple(int(v) for v in args[0])
    return tuple(int(v) for v in args)


class ShapeMixin(TensorStubs):
    """Mixed into MPCTensor; relies on ``_share``, ``_wrap``, ``shape``, ``ndim``."""

    __slots__ = ()

    def reshape(self, *shape: Any) -> MPCTensor:
        """torch reshape/view; the result is unnamed (use ``flatten``/``unflatten`` by name
        to keep names)."""
        try:
            out = self._share.reshape(_sizes(shape))
            return self._wrap(out, names=names_mod.unnamed(out.ndim))
        except ValueError as err:
            raise RuntimeError(
                f"shape '{list(_sizes(shape))}' is invalid for input of size {self._share.size}"
            ) from err

    view = reshape

    def flatten(
        self, start_dim: Any = 0, end_dim: Any = -1, out_dim: str | None = None
    ) -> MPCTensor:
        """torch.flatten by position (``flatten(1)``), or by name: ``flatten(["C", "H"],
        "CH")`` merges consecutive named dims into ``out_dim``."""
        if isinstance(start_dim, list | tuple):
            dims = [self._axis(d) for d in start_dim]
            if not dims or dims != list(range(dims[0], dims[0] + len(dims))):
                raise RuntimeError(
                    f"flatten(dims, out_dim): dims {list(start_dim)} must be consecutive and in "
                    f"order in {names_mod.fmt(self.names)}"
                )
            new_name = (
                out_dim if out_dim is not None else end_dim if isinstance(end_dim, str) else None
            )
            return self._merge(dims[0], dims[-1], new_name)
        nd = self._share.ndim
        if nd == 0:
            return self.reshape(1)
        start, end = self._axis(start_dim), self._axis(end_dim)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        return self._merge(start, end, None)

    def _merge(self, start: int, end: int, new_name: str | None) -> MPCTensor:
        shape, names = self.shape, self.names
        out = self._share.reshape(*shape[:start], -1, *shape[end + 1 :])
        merged = (*names[:start], new_name, *names[end + 1 :])
        return self._wrap(out, names=merged)

    def unflatten(self, dim: Any, sizes: Sequence[Any]) -> MPCTensor:
        """Split one dim into several; ``sizes`` is ints or named ``(name, size)`` pairs."""
        axis = self._axis(dim)
        named = [tuple(s) for s in sizes if isinstance(s, tuple | list)]
        if named and len(named) != len(sizes):
            raise RuntimeError("unflatten: sizes must be all ints or all (name, size) pairs")
        new_sizes = [int(s[1]) for s in named] if named else [int(s) for s in sizes]
        new_names: list[str | None] = [str(s[0]) for s in named] if named else [None] * len(sizes)
        if int(np.prod(new_sizes)) != self.shape[axis]:
            raise RuntimeError(
                f"unflatten: Provided sizes {new_sizes} don't multiply up to the size of dim "
                f"{dim} ({self.shape[axis]}) in the input tensor"
            )
        out = self._share.reshape(*self.shape[:axis], *new_sizes, *self.shape[axis + 1 :])
        return self._wrap(out, names=names_mod.unflatten_names(self.names, axis, new_names))

    def transpose(self, dim0: Any, dim1: Any) -> MPCTensor:
        a, b = self._axis(dim0), self._axis(dim1)
        names = list(self.names)
        names[a], names[b] = names[b], names[a]
        return self._wrap(np.swapaxes(self._share, a, b), names=names)

    def t(self) -> MPCTensor:
        if self._share.ndim > 2:
            raise RuntimeError("t() expects a tensor with <= 2 dimensions")
        return self._wrap(self._share.T, names=self.names[::-1])

    def permute(self, *dims: Any) -> MPCTensor:
        order = (
            dims[0]
            if len(dims) == 1 and isinstance(dims[0], Sequence) and not isinstance(dims[0], str)
            else dims
        )
        nd = self._share.ndim
        axes = [self._axis(d) for d in order]
        if sorted(axes) != list(range(nd)):
            raise RuntimeError(f"permute(): dims {list(order)} are not a permutation of {nd} dims")
        return self._wrap(np.transpose(self._share, axes), names=[self.names[a] for a in axes])

    def squeeze(self, dim: Any = None) -> MPCTensor:
        if dim is None:
            keep = [i for i, n in enumerate(self.shape) if n != 1]
            kept = [self.names[i] for i in keep]
            return self._wrap(self._share.reshape([self.shape[i] for i in keep]), names=kept)
        axis = self._axis(dim)
        if self._share.ndim == 0 or self.shape[axis] != 1:
            return self._wrap(self._share)
        names = self.names[:axis] + self.names[axis + 1 :]
        return self._wrap(np.squeeze(self._share, axis=axis), names=names)

    def unsqueeze(self, dim: int) -> MPCTensor:
        axis = normalize_dim(dim, self._share.ndim + 1)
        names = (*self.names[:axis], None, *self.names[axis:])
        return self._wrap(np.expand_dims(self._share, axis), names=names)

    # -- names ----------------------------------------------------------------------------
    def rename(self, *names: Any, **rename_map: str) -> MPCTensor:
        """``rename("N", "C")``, ``rename("N", ...)``, ``rename(C="channels")`` or
        ``rename(None)``; local, returns a new tensor sharing nothing with this one."""
        return self._wrap(self._share, names=names_mod.rename(self.names, names, rename_map))

    def refine_names(self, *names: Any) -> MPCTensor:
        """Turn None names into names (``...`` allowed); a name may only stay itself."""
        return self._wrap(self._share, names=names_mod.refine(self.names, names))

    def align_to(self, *names: str) -> MPCTensor:
        """Permute named dims into ``names`` order, inserting size-1 dims for missing names;
        ``...`` stands for the unmentioned dims in their order. Local."""
        plan, out_names = names_mod.align_plan(self.names, names)
        moved = np.transpose(self._share, [a for a in plan if a is not None])
        shape = [self.shape[a] if a is not None else 1 for a in plan]
        return self._wrap(moved.reshape(shape), names=out_names)

    def align_as(self, other: Any) -> MPCTensor:
        """``align_to(*other.names)``."""
        return self.align_to(*other.names)

    def expand(self, *sizes: Any) -> MPCTensor:
        target = list(_sizes(sizes))
        new_names = (None,) * (len(target) - self._share.ndim) + self.names
        if len(target) < self._share.ndim:
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(target)}) must be greater or equal "
                f"to the number of dimensions in the tensor ({self._share.ndim})"
            )
        offset = len(target) - self._share.ndim
        for i, size in enumerate(target):
            if size == -1:
                if i < offset:
                    raise RuntimeError("expand: -1 is not allowed in a leading, new dimension")
                target[i] = self.shape[i - offset]
        try:
            out = np.broadcast_to(self._share, tuple(target)).copy()
            return self._wrap(out, names=new_names)
        except ValueError as err:
            raise RuntimeError(f"expand: cannot expand shape {self.shape} to {target}") from err

    def repeat(self, *sizes: Any) -> MPCTensor:
        reps = _sizes(sizes)
        if len(reps) < self._share.ndim:
            raise RuntimeError(
                "repeat: number of repeat dims can not be smaller than number of tensor dims"
            )
        names = (None,) * (len(reps) - self._share.ndim) + self.names
        return self._wrap(np.tile(self._share, reps), names=names)

    def flip(self, dims: int | Sequence[int]) -> MPCTensor:
        axes = (dims,) if isinstance(dims, int) else tuple(dims)
        return self._wrap(np.flip(self._share, tuple(self._axis(d) for d in axes)))

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> list[MPCTensor]:
        """torch.split: an int is the chunk size (last chunk may be smaller); a list gives sizes."""
        axis = self._axis(dim)
        length = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError("split_size must be a positive int")
            sizes = [split_size_or_sections] * (length // split_size_or_sections)
            if length % split_size_or_sections:
                sizes.append(length % split_size_or_sections)
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != length:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {length} "
                    f"(input tensor's size at dimension {dim}), but got split_sizes={sizes}"
                )
        bounds = np.cumsum(sizes)[:-1]
        return [self._wrap(part) for part in np.split(self._share, bounds, axis=axis)]

    def chunk(self, chunks: int, dim: int = 0) -> list[MPCTensor]:
        length = self.shape[self._axis(dim)]
        return self.split(max(1, -(-length // chunks)), dim)

    def __getitem__(self, index: Any) -> MPCTensor:
        if isinstance(index, ShapeMixin):
            raise TypeError("indexing with a secret-shared index is not supported")
        out = np.asarray(self._share[index])
        names = names_mod.index_names(self.names, index)
        return self._wrap(out, names=names if names is not None else names_mod.unnamed(out.ndim))

    def pad(self, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> MPCTensor:
        """torch.nn.functional.pad: ``pad`` lists (left, right) pairs from the last dim."""
        if mode != "constant":
            raise ValueError(f"only constant padding is supported, got mode={mode!r}")
        if len(pad) % 2 or len(pad) // 2 > self._share.ndim:
            raise ValueError("padding length must be even and at most 2 * ndim")
        widths = [(0, 0)] * self._share.ndim
        for i in range(len(pad) // 2):
            left, right = int(pad[2 * i]), int(pad[2 * i + 1])
            if left < 0 or right < 0:
                raise ValueError("negative padding (cropping) is not supported")
            widths[self._share.ndim - 1 - i] = (left, right)
        padded = np.pad(self._share, widths)
        if value != 0:
            mask = np.pad(np.zeros(self.shape, dtype=bool), widths, constant_values=True)
            return self._wrap(padded)._add_masked_public(mask, value)
        return self._wrap(padded)


def _as_tensors(tensors: Sequence[MPCTensor]) -> list[MPCTensor]:
    items = list(tensors)
    if not items:
        raise ValueError("expected a non-empty sequence of MPCTensors")
    first = items[0]
    for other in items[1:]:
        first._check_other(other)
    return items


def cat(tensors: Sequence[MPCTensor], dim: Any = 0) -> MPCTensor:
    """Concatenate along an existing dim, by position or name (local). Names must agree
    position by position (None matches anything)."""
    items = _as_tensors(tensors)
    names = items[0].names
    for other in items[1:]:
        if other.ndim != items[0].ndim:
            raise RuntimeError("cat: tensors must have the same number of dimensions")
        names = names_mod.unify_from_right(names, other.names)
    axis = names_mod.lookup(names, dim, items[0].ndim)
    return items[0]._wrap(np.concatenate([t.share for t in items], axis=axis), names=names)


def stack(tensors: Sequence[MPCTensor], dim: int = 0) -> MPCTensor:
    """Stack along a new dim (local)."""
    items = _as_tensors(tensors)
    names = items[0].names
    for other in items[1:]:
        names = names_mod.unify_from_right(names, other.names)
    axis = normalize_dim(dim, items[0].ndim + 1)
    out_names = (*names[:axis], None, *names[axis:])
    return items[0]._wrap(np.stack([t.share for t in items], axis=axis), names=out_names)
