"""Shape operations on shared tensors, torch semantics. All are local (0 rounds, 0 bytes):
the same rearrangement applied to every party's share is a sharing of the rearranged value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["ShapeMixin", "cat", "normalize_dim", "stack"]

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


def _sizes(args: tuple[Any, ...]) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], Sequence | np.ndarray):
        return tuple(int(v) for v in args[0])
    return tuple(int(v) for v in args)


class ShapeMixin:
    """Mixed into MPCTensor; relies on ``_share``, ``_wrap``, ``shape``, ``ndim``."""

    __slots__ = ()
    _share: U64

    if TYPE_CHECKING:

        def _wrap(
            self, share: U64, precision: int | None = None, ptype: str | None = None
        ) -> MPCTensor: ...

        @property
        def shape(self) -> tuple[int, ...]: ...

        def _add_masked_public(self, mask: npt.NDArray[np.bool_], value: float) -> MPCTensor: ...

    def reshape(self, *shape: Any) -> MPCTensor:
        try:
            return self._wrap(self._share.reshape(_sizes(shape)))
        except ValueError as err:
            raise RuntimeError(
                f"shape '{list(_sizes(shape))}' is invalid for input of size {self._share.size}"
            ) from err

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> MPCTensor:
        nd = self._share.ndim
        if nd == 0:
            return self.reshape(1)
        start, end = (
            normalize_dim(start_dim, nd, "start_dim"),
            normalize_dim(end_dim, nd, "end_dim"),
        )
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = self.shape
        return self.reshape(*shape[:start], -1, *shape[end + 1 :])

    def transpose(self, dim0: int, dim1: int) -> MPCTensor:
        nd = self._share.ndim
        return self._wrap(
            np.swapaxes(self._share, normalize_dim(dim0, nd), normalize_dim(dim1, nd))
        )

    def t(self) -> MPCTensor:
        if self._share.ndim > 2:
            raise RuntimeError("t() expects a tensor with <= 2 dimensions")
        return self._wrap(self._share.T)

    def permute(self, *dims: Any) -> MPCTensor:
        order = _sizes(dims)
        nd = self._share.ndim
        axes = [normalize_dim(d, nd) for d in order]
        if sorted(axes) != list(range(nd)):
            raise RuntimeError(f"permute(): dims {list(order)} are not a permutation of {nd} dims")
        return self._wrap(np.transpose(self._share, axes))

    def squeeze(self, dim: int | None = None) -> MPCTensor:
        if dim is None:
            return self._wrap(np.squeeze(self._share))
        axis = normalize_dim(dim, self._share.ndim)
        if self._share.ndim == 0 or self.shape[axis] != 1:
            return self._wrap(self._share)
        return self._wrap(np.squeeze(self._share, axis=axis))

    def unsqueeze(self, dim: int) -> MPCTensor:
        axis = normalize_dim(dim, self._share.ndim + 1)
        return self._wrap(np.expand_dims(self._share, axis))

    def expand(self, *sizes: Any) -> MPCTensor:
        target = list(_sizes(sizes))
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
            return self._wrap(np.broadcast_to(self._share, tuple(target)).copy())
        except ValueError as err:
            raise RuntimeError(f"expand: cannot expand shape {self.shape} to {target}") from err

    def repeat(self, *sizes: Any) -> MPCTensor:
        reps = _sizes(sizes)
        if len(reps) < self._share.ndim:
            raise RuntimeError(
                "repeat: number of repeat dims can not be smaller than number of tensor dims"
            )
        return self._wrap(np.tile(self._share, reps))

    def flip(self, dims: int | Sequence[int]) -> MPCTensor:
        axes = (dims,) if isinstance(dims, int) else tuple(dims)
        return self._wrap(
            np.flip(self._share, tuple(normalize_dim(d, self._share.ndim) for d in axes))
        )

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> list[MPCTensor]:
        """torch.split: an int is the chunk size (last chunk may be smaller); a list gives sizes."""
        axis = normalize_dim(dim, self._share.ndim)
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
        length = self.shape[normalize_dim(dim, self._share.ndim)]
        return self.split(max(1, -(-length // chunks)), dim)

    def __getitem__(self, index: Any) -> MPCTensor:
        if isinstance(index, ShapeMixin):
            raise TypeError("indexing with a secret-shared index is not supported")
        return self._wrap(np.asarray(self._share[index]))

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


def cat(tensors: Sequence[MPCTensor], dim: int = 0) -> MPCTensor:
    """Concatenate along an existing dim (local)."""
    items = _as_tensors(tensors)
    axis = normalize_dim(dim, items[0].ndim)
    return items[0]._wrap(np.concatenate([t.share for t in items], axis=axis))


def stack(tensors: Sequence[MPCTensor], dim: int = 0) -> MPCTensor:
    """Stack along a new dim (local)."""
    items = _as_tensors(tensors)
    axis = normalize_dim(dim, items[0].ndim + 1)
    return items[0]._wrap(np.stack([t.share for t in items], axis=axis))
