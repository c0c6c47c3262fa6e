"""Comparisons, selections, maxima and max pooling on MPCTensor, built on the 3-round
``protocols.comparison`` primitives (CrypTen: 8 rounds for lt, 9 for relu).

Comparison results are fixed-point 0/1 tensors (like CrypTen). Internally the protocols give
integer 0/1 sharings; they become fixed point by a local shift, and a product of such a bit
with a fixed-point value (``mul_ltz``) needs no truncation. The maths of relu, clamp, the
max tournament, the one-hot and max pooling lives in :mod:`crypten_lite.protocols.maxima`.

For autograd, :meth:`CompareMixin.relu_with_mask` returns relu's mask ``[x > 0]`` and
:meth:`CompareMixin.max_pool2d_with_route` a :class:`PoolRoute` holding the tournament's
comparison bits, so the backward passes reuse the forward's comparisons: relu's backward is
one product with the mask, max pooling's ``ceil(log2(kH kW))`` rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.protocols import binary as binary_ops
from crypten_lite.protocols import comparison, conversion, maxima
from crypten_lite.sharing import ARITHMETIC, BINARY
from crypten_lite.tensor._stubs import TensorStubs
from crypten_lite.tensor.shape import int_tuple

if TYPE_CHECKING:
    from crypten_lite.session import Session
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["CompareMixin", "PoolRoute"]

U64 = npt.NDArray[np.uint64]


def _flat(share: U64) -> U64:
    return np.ascontiguousarray(share).reshape(-1)


def _pair(value: tuple[int, ...]) -> tuple[int, int]:
    """A checked 2-tuple (``int_tuple(..., 2, ...)``) as its type."""
    return value[0], value[1]


class PoolRoute:
    """The backward route of :meth:`CompareMixin.max_pool2d_with_route`: the session, the
    window geometry and the tournament's level bits (integer 0/1 sharings
    ``[right operand > left operand]``; ties go left, so each window's gradient goes to
    exactly the one element the forward picked). Its repr shows the public geometry only."""

    __slots__ = ("_batched", "_geometry", "_names", "_route", "session")

    def __init__(
        self,
        session: Session,
        route: maxima.TournamentRoute,
        geometry: maxima.PoolGeometry,
        names: Sequence[str | None],
        batched: bool,
    ) -> None:
        self.session = session
        self._route = route
        self._geometry = geometry
        self._names = tuple(names)
        self._batched = batched

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the pooling input (and of :meth:`backward`'s result)."""
        shape = self._geometry.shape
        return shape if self._batched else shape[1:]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the pooling output (and of the gradient :meth:`backward` takes)."""
        n, c, _, _ = self._geometry.shape
        lead = (n, c) if self._batched else (c,)
        return (*lead, *self._geometry.out_hw)

    @property
    def rounds(self) -> int:
        """Rounds of :meth:`backward`: ``ceil(log2(kH kW))``."""
        return self._route.levels

    def __repr__(self) -> str:
        g = self._geometry
        return (
            f"PoolRoute(input_shape={self.input_shape}, kernel_size={g.kernel}, "
            f"stride={g.stride}, padding={g.padding}, dilation={g.dilation}, "
            f"levels={self.rounds})"
        )

    def window_one_hot(self, kernel: tuple[int, ...], precision: int) -> MPCTensor:
        """CrypTen's max-pooling indices: a fixed-point 0/1 tensor of shape ``output +
        kernel`` with a 1 at each window's maximum (the one the forward picked): public ones
        routed down the tournament, ``ceil(log2(kH kW))`` rounds, no truncation."""
        shape = self._geometry.shape
        out_shape = (*shape[:2], *self._geometry.out_hw)
        ones = np.full(out_shape, 1 if self.session.rank == 0 else 0, dtype=np.uint64)
        from crypten_lite.tensor.core import MPCTensor  # the class this module is mixed into

        hot = self._route.backward(self.session, ones)  # integer 0/1 per window element
        full = hot.reshape(*out_shape, *kernel) << np.uint64(precision)
        values = full if self._batched else full[0]
        return MPCTensor(self.session, np.ascontiguousarray(values), precision)

    def backward(self, grad: MPCTensor) -> MPCTensor:
        """Gradient w.r.t. the pooling input (its shape and names; ``grad``'s precision)
        from ``grad`` (the output's shape): routed down the tournament, ``g_right = g bit``
        and ``g_left = g - g_right``, one batched Beaver product per level (no truncation:
        the bits are integers), then a local scatter-add of the window gradients
        (overlapping windows add, padded positions are dropped).
        Cost: ``ceil(log2(kH kW))`` rounds (forward: 4 per level);
        ``(N-1) 2 n_out`` ring elements per level sent per party, ``n_out`` the pairs of the
        level."""
        self.session.check_same(grad.session)
        grad._require_arith()
        if grad.shape != self.output_shape:
            raise ValueError(
                f"max_pool2d backward: gradient of shape {grad.shape}, expected the output "
                f"shape {self.output_shape}"
            )
        g = grad.share if self._batched else grad.share[None]
        out = maxima.max_pool2d_backward(self.session, self._route, self._geometry, g)
        return grad._wrap(out if self._batched else out[0], names=self._names)


class CompareMixin(TensorStubs):
    """Mixed into MPCTensor (see module doc)."""

    __slots__ = ()

    if TYPE_CHECKING:

        def sum(self, dim: Any = None, keepdim: bool = False) -> MPCTensor: ...
        def reshape(self, *shape: Any) -> MPCTensor: ...
        def transpose(self, dim0: int, dim1: int) -> MPCTensor: ...

    # -- helpers -----------------------------------------------------------------------------
    def _bit_tensor(self, bits: U64) -> MPCTensor:
        """Integer 0/1 sharing -> fixed-point 0/1 tensor (local shift)."""
        return self._wrap(bits << np.uint64(self.precision))

    def _one_minus(self, bits: U64) -> U64:
        out = np.negative(bits)
        if self.session.rank == 0:
            out = out + np.uint64(1)
        return out

    def _diff(self, other: Any) -> MPCTensor:
        self._require_arith()
        self._debug_compare("comparison", [self, other] if hasattr(other, "share") else [self])
        return self.sub(other)

    def _ltz_bits(self, share: U64) -> U64:
        return comparison.ltz(self.session, _flat(share)).reshape(share.shape)

    # -- comparisons (3 rounds each) ---------------------------------------------------------
    def lt(self, other: Any) -> MPCTensor:
        """``self < other`` as a shared fixed-point 0/1 tensor. 3 rounds. Exact for operands
        in the representable range; beyond it the ring difference may wrap and the result
        is the sign of the wrapped difference (``debug_range_check`` flags operands with
        ``|x| > 2^(61 - f)``, 7 more rounds)."""
        d = self._diff(other)
        return d._bit_tensor(d._ltz_bits(d._share))

    def gt(self, other: Any) -> MPCTensor:
        """``self > other``. 3 rounds."""
        d = self._diff(other).neg()
        return d._bit_tensor(d._ltz_bits(d._share))

    def le(self, other: Any) -> MPCTensor:
        """``self <= other`` = 1 - (self > other). 3 rounds."""
        d = self._diff(other).neg()
        return d._bit_tensor(d._one_minus(d._ltz_bits(d._share)))

    def ge(self, other: Any) -> MPCTensor:
        """``self >= other`` = 1 - (self < other). 3 rounds."""
        d = self._diff(other)
        return d._bit_tensor(d._one_minus(d._ltz_bits(d._share)))

    def eq(self, other: Any) -> MPCTensor:
        """``self == other`` (exact equality of the encodings). 3 rounds."""
        d = self._diff(other)
        bits = comparison.eqz(self.session, _flat(d._share)).reshape(d.shape)
        return d._bit_tensor(bits)

    def ne(self, other: Any) -> MPCTensor:
        """``self != other``. 3 rounds."""
        d = self._diff(other)
        bits = comparison.eqz(self.session, _flat(d._share)).reshape(d.shape)
        return d._bit_tensor(d._one_minus(bits))

    __lt__ = lt
    __gt__ = gt
    __le__ = le
    __ge__ = ge
    # ``==`` and ``!=`` compare secrets like ``<`` does (CrypTen): a shared 0/1 tensor, never
    # Python's identity test. Hashing stays by identity.
    __eq__ = eq  # type: ignore[assignment]
    __ne__ = ne  # type: ignore[assignment]
    __hash__ = object.__hash__

    # -- sign, abs, relu, clamp, where ---------------------------------------------------------
    def relu(self) -> MPCTensor:
        """``max(x, 0) = x [x > 0]`` (the code path of :meth:`relu_with_mask`; with
        ``min_rounds`` ``x - x [x < 0]``, fused): 4 rounds (3 with ``min_rounds``), no
        truncation."""
        self._require_arith()
        self._debug_compare("relu", [self])
        flat = _flat(self._share)
        if self.session.config.min_rounds:
            out = maxima.relu(self.session, flat)
        else:
            out, _ = maxima.relu_mask(self.session, flat)
        return self._wrap(out.reshape(self.shape))

    def relu_with_mask(self) -> tuple[MPCTensor, MPCTensor]:
        """``(relu(x), mask)`` with ``mask = [x > 0]`` an INTEGER 0/1 sharing wrapped with
        precision 0 (a product with a fixed-point tensor needs no truncation): relu's
        backward is ``grad * mask``. ``relu = x [x > 0]`` with ``[x > 0] = ltz(-x)``, the
        same value as :meth:`relu` (0 at 0). Cost: 4 rounds (comparison, then one Beaver
        product; also with ``min_rounds``), no truncation."""
        self._require_arith()
        out, bits = maxima.relu_mask(self.session, _flat(self._share))
        mask = self._wrap(bits.reshape(self.shape), precision=0)
        return self._wrap(out.reshape(self.shape)), mask

    def abs(self) -> MPCTensor:
        """``|x| = x - 2 x [x < 0]``. 4 rounds (3 with ``min_rounds``)."""
        self._require_arith()
        flat = _flat(self._share)
        neg_part = maxima.mul_ltz(self.session, flat, flat).reshape(self.shape)
        return self._wrap(self._share - (neg_part << np.uint64(1)))

    def sign(self) -> MPCTensor:
        """torch.sign: -1, 0 or 1. Both comparisons in one call: 3 rounds."""
        self._require_arith()
        flat = _flat(self._share)
        bits = comparison.ltz(self.session, np.concatenate([flat, np.negative(flat)]))
        negative, positive = bits[: flat.size], bits[flat.size :]
        return self._bit_tensor((positive - negative).reshape(self.shape))

    def clamp(self, min: Any = None, max: Any = None) -> MPCTensor:
        """torch.clamp with public or private bounds: ``x + relu(min - x) - relu(x - max)``,
        both relus in one call (4 rounds; 3 with ``min_rounds``). Requires ``min <= max``."""
        self._require_arith()
        if min is None and max is None:
            raise ValueError("clamp needs at least one of min and max")
        below = None if min is None else self.neg().add(min)
        above = None if max is None else self.sub(max)
        out = maxima.clamp(
            self.session,
            self._share,
            None if below is None else below.share,
            None if above is None else above.share,
        )
        return self._wrap(out)

    def where(self, condition: Any, other: Any) -> MPCTensor:
        """torch.where(condition, self, other): ``other + condition (self - other)``.
        A public condition is local; a private 0/1 one costs a Beaver round + truncation."""
        diff = self.sub(other)
        if hasattr(condition, "share"):
            return diff.mul(condition).add(other)
        mask = np.asarray(condition, dtype=bool).astype(np.int64)
        return diff.mul(mask).add(other)

    # -- maxima ----------------------------------------------------------------------------
    def _tournament(self, axis: int, want_max: bool) -> MPCTensor:
        """Pairwise reduction along ``axis``: ``max(a, b) = b + relu(a - b)``;
        ``ceil(log2 n)`` levels of one relu each (all pairs of a level in one call)."""
        return self._wrap(maxima.tournament(self.session, self._share, axis, want_max))

    def _extremum(self, dim: int | str | None, keepdim: bool, want_max: bool) -> Any:
        self._require_arith()
        if self._share.size == 0:
            raise ValueError("max/min of an empty tensor")
        self._debug_compare("max" if want_max else "min", [self])
        if dim is None:
            return self.reshape(-1)._tournament(0, want_max)
        axis = self._axis(dim)
        shares, route = maxima.tournament_route(self.session, self._share, axis, want_max)
        values = self._wrap(shares)
        one_hot = self._bit_tensor(route.one_hot(self.session))
        if keepdim:
            return values._wrap(np.expand_dims(values._share, axis), names=self.names), one_hot
        reduced = self.names[:axis] + self.names[axis + 1 :]
        return values._wrap(values._share, names=reduced), one_hot

    def _hot_to_index(self, hot: MPCTensor, dim: int | str, keepdim: bool) -> MPCTensor:
        """CrypTen's ``_one_hot_to_index``: ``sum_i i hot_i`` along ``dim`` (local)."""
        axis = self._axis(dim)
        index = np.arange(self.shape[axis], dtype=np.int64).reshape(
            [-1 if i == axis else 1 for i in range(len(self.shape))]
        )
        return hot.mul(index).sum(axis, keepdim=keepdim)

    def max(
        self, dim: int | str | None = None, keepdim: bool = False, one_hot: bool = True
    ) -> Any:
        """Overall max (a 0-d tensor) or ``(values, argmax)`` along ``dim`` (CrypTen): the
        argmax one-hot (``one_hot=True``, this tensor's shape; the first maximum) or as a
        shared index. Cost for ``n`` along the axis: ``4 ceil(log2 n)`` rounds (one
        ``select_ltz`` per tournament level, every other axis batched), then ``ceil(log2 n)``
        product rounds routing the one-hot down the same comparison bits."""
        out = self._extremum(dim, keepdim, True)
        if dim is None or one_hot:
            return out
        return out[0], self._hot_to_index(out[1], dim, keepdim)

    def min(
        self, dim: int | str | None = None, keepdim: bool = False, one_hot: bool = True
    ) -> Any:
        """Overall min or ``(values, argmin)`` along ``dim`` (see :meth:`max`)."""
        out = self._extremum(dim, keepdim, False)
        if dim is None or one_hot:
            return out
        return out[0], self._hot_to_index(out[1], dim, keepdim)

    def _arg(
        self, dim: int | str | None, keepdim: bool, one_hot: bool, want_max: bool
    ) -> MPCTensor:
        flat_view = dim is None
        x = self.reshape(-1) if flat_view else self
        axis = 0 if flat_view else self._axis(dim)
        _, hot = x._extremum(axis, False, want_max)
        if flat_view and one_hot:
            return hot.reshape(*self.shape)  # type: ignore[no-any-return]
        if one_hot:
            return hot  # type: ignore[no-any-return]
        index = np.arange(x.shape[axis], dtype=np.int64).reshape(
            [-1 if i == axis else 1 for i in range(len(x.shape))]
        )
        idx = hot.mul(index).sum(axis, keepdim=keepdim and not flat_view)
        return idx  # type: ignore[no-any-return]

    def argmax(
        self, dim: int | str | None = None, keepdim: bool = False, one_hot: bool = True
    ) -> MPCTensor:
        """CrypTen's one-hot argmax by default (first maximum); ``one_hot=False`` gives the
        index as a shared number."""
        return self._arg(dim, keepdim, one_hot, True)

    def argmin(
        self, dim: int | str | None = None, keepdim: bool = False, one_hot: bool = True
    ) -> MPCTensor:
        """Like :meth:`argmax` for the minimum."""
        return self._arg(dim, keepdim, one_hot, False)

    def _pool_geometry(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None,
        padding: int | tuple[int, int],
        dilation: int | tuple[int, int],
    ) -> tuple[maxima.PoolGeometry, U64]:
        """The checked window geometry and the input share as ``(N, C, H, W)``."""
        self._require_arith()
        if len(self.shape) not in (3, 4):
            raise ValueError(f"max_pool2d expects (N, C, H, W) or (C, H, W), got {self.shape}")
        ks = int_tuple(kernel_size, 2, "kernel_size")
        st = ks if stride is None else int_tuple(stride, 2, "stride")
        pd = int_tuple(padding, 2, "padding")
        dl = int_tuple(dilation, 2, "dilation")
        if pd[0] * 2 > ks[0] or pd[1] * 2 > ks[1]:
            raise ValueError("pad should be at most half of effective kernel size")
        x = self._share if len(self.shape) == 4 else self._share[None]
        n, c, h, w = x.shape
        geometry = maxima.PoolGeometry((n, c, h, w), _pair(ks), _pair(st), _pair(pd), _pair(dl))
        return geometry, x

    def max_pool2d(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> Any:
        """torch max_pool2d (padding counts as -inf): windows unfolded locally, then a
        tournament over each window: ``ceil(log2(kH kW))`` relu levels. ``ceil_mode``: torch's
        output size (the extra windows see -inf beyond the input). ``return_indices``:
        also CrypTen's one-hot indices, a fixed-point 0/1 tensor of shape ``output +
        (kH, kW)`` marking each window's maximum (the forward's tournament bits routed back:
        ``ceil(log2(kH kW))`` more rounds), usable by :meth:`max_unpool2d`."""
        x = self._ceil_padded(kernel_size, stride, padding, dilation) if ceil_mode else self
        if not return_indices:
            geometry, share = x._pool_geometry(kernel_size, stride, padding, dilation)
            pooled = maxima.max_pool2d(self.session, share, self.precision, geometry)
            return self._wrap(pooled if len(self.shape) == 4 else pooled[0], names=self.names)
        out, route = x.max_pool2d_with_route(kernel_size, stride, padding, dilation)
        return out, route.window_one_hot(int_tuple(kernel_size, 2, "kernel_size"), self.precision)

    def _ceil_padded(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None,
        padding: int | tuple[int, int],
        dilation: int | tuple[int, int],
    ) -> MPCTensor:
        """The input extended at the bottom and right by -inf so that floor-mode windows give
        torch's ``ceil_mode`` output size (a window must start inside the input or the left
        padding). Local."""
        ks = int_tuple(kernel_size, 2, "kernel_size")
        st = ks if stride is None else int_tuple(stride, 2, "stride")
        pd, dl = int_tuple(padding, 2, "padding"), int_tuple(dilation, 2, "dilation")
        extra = []
        for i in range(2):
            size = self.shape[-2 + i]
            span = size + 2 * pd[i] - dl[i] * (ks[i] - 1) - 1
            out = -(-span // st[i]) + 1
            if (out - 1) * st[i] >= size + pd[i]:
                out -= 1
            extra.append(max(0, (out - 1) * st[i] + dl[i] * (ks[i] - 1) + 1 - size - 2 * pd[i]))
        if not any(extra):
            return self._wrap(self._share)
        low = -(2.0 ** (maxima.POOL_FILL_BITS - self.precision))
        return self.pad([0, extra[1], 0, extra[0]], value=low)  # type: ignore[attr-defined,no-any-return]

    def max_unpool2d(
        self,
        indices: MPCTensor,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        output_size: Sequence[int] | None = None,
    ) -> MPCTensor:
        """torch/CrypTen max_unpool2d with the one-hot ``indices`` of :meth:`max_pool2d`
        (``return_indices=True``): each value is placed at its window's maximum, overlapping
        windows add (one Beaver product + truncation, then a local scatter-add).
        ``output_size`` defaults to torch's ``(o - 1) s - 2 p + k`` per dim."""
        ks = int_tuple(kernel_size, 2, "kernel_size")
        st = ks if stride is None else int_tuple(stride, 2, "stride")
        pd = int_tuple(padding, 2, "padding")
        if len(self.shape) != 4 or tuple(indices.shape) != (*self.shape, *ks):
            raise ValueError(
                f"max_unpool2d: values of shape (N, C, oH, oW) and indices of shape "
                f"values + kernel {ks} are needed, got {self.shape} and {tuple(indices.shape)}"
            )
        n, c, oh, ow = self.shape
        full = ((oh - 1) * st[0] - 2 * pd[0] + ks[0], (ow - 1) * st[1] - 2 * pd[1] + ks[1])
        h, w = full if output_size is None else (int(v) for v in tuple(output_size)[-2:])
        if abs(h - full[0]) >= st[0] or abs(w - full[1]) >= st[1]:
            raise ValueError(
                f"max_unpool2d: output size {(h, w)} cannot pool to {(oh, ow)} with kernel "
                f"{ks}, stride {st} and padding {pd} (expected within a stride of {full})"
            )
        geometry = maxima.PoolGeometry((n, c, *full), _pair(ks), _pair(st), _pair(pd), (1, 1))
        spread = self.reshape(n, c, oh, ow, 1, 1).mul(indices)
        folded = geometry.fold(spread._share.reshape(n, c, oh, ow, ks[0] * ks[1]))
        out = np.zeros((n, c, h, w), dtype=np.uint64)  # crop, or zeros beyond (ceil_mode)
        rows, cols = min(h, full[0]), min(w, full[1])
        out[:, :, :rows, :cols] = folded[:, :, :rows, :cols]
        return self._wrap(out, names=self.names)

    def max_pool2d_with_route(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
    ) -> tuple[MPCTensor, PoolRoute]:
        """:meth:`max_pool2d` (same value, rounds and traffic; with ``min_rounds`` 4 rounds
        per level instead of 3) and a :class:`PoolRoute` whose ``backward(grad)`` gives the
        gradient w.r.t. this input in ``ceil(log2(kH kW))`` rounds, reusing the forward's
        comparison bits ``[right > left]`` of every tournament level (ties go left: each
        window routes its gradient to exactly one element, the one picked)."""
        geometry, x = self._pool_geometry(kernel_size, stride, padding, dilation)
        pooled, route = maxima.max_pool2d_route(self.session, x, self.precision, geometry)
        batched = len(self.shape) == 4
        out = self._wrap(pooled if batched else pooled[0], names=self.names)
        return out, PoolRoute(self.session, route, geometry, self.names, batched)

    # -- share types and bitwise ops ---------------------------------------------------------
    def to(self, ptype: str) -> MPCTensor:
        """Convert between ``cl.mpc.arithmetic`` and ``cl.mpc.binary`` shares
        (a2b: 5 rounds; b2a: 1 round)."""
        if ptype == self.ptype:
            return self._wrap(self._share)
        if ptype == BINARY:
            bits = conversion.a2b(self.session, _flat(self._share)).reshape(self.shape)
            return self._wrap(bits, ptype=BINARY)
        if ptype == ARITHMETIC:
            value = conversion.b2a(self.session, _flat(self._share)).reshape(self.shape)
            return self._wrap(value, ptype=ARITHMETIC)
        raise ValueError(f"unknown ptype {ptype!r}; use cl.mpc.arithmetic or cl.mpc.binary")

    def _require_binary(self) -> None:
        if self.ptype != BINARY:
            raise TypeError("bitwise ops need binary shares: use .to(cl.mpc.binary)")

    def _bitwise(self, other: Any, private_op: Any, public_op: Any) -> MPCTensor:
        self._require_binary()
        if hasattr(other, "share"):
            if other.ptype != BINARY:
                raise TypeError("bitwise ops need both operands as binary shares")
            self.session.check_same(other.session)
            shape = np.broadcast_shapes(self.shape, other.shape)
            a = np.broadcast_to(self._share, shape).reshape(-1)
            b = np.broadcast_to(other.share, shape).reshape(-1)
            return self._wrap(private_op(a, b).reshape(shape))
        public = ring.from_signed(np.asarray(other))
        return self._wrap(public_op(self._share, public))

    def __xor__(self, other: Any) -> MPCTensor:
        """XOR (local)."""
        return self._bitwise(
            other, binary_ops.xor, lambda s, c: binary_ops.xor_public(self.session, s, c)
        )

    def __and__(self, other: Any) -> MPCTensor:
        """AND: private operands 1 round (AND triple), public operand local."""
        return self._bitwise(
            other,
            lambda a, b: binary_ops.and_(
                self.session, np.ascontiguousarray(a), np.ascontiguousarray(b)
            ),
            binary_ops.and_public,
        )

    def __or__(self, other: Any) -> MPCTensor:
        """OR: private operands 1 round, public operand local."""
        return self._bitwise(
            other,
            lambda a, b: binary_ops.or_(
                self.session, np.ascontiguousarray(a), np.ascontiguousarray(b)
            ),
            lambda s, c: binary_ops.or_public(self.session, s, c),
        )

    def __invert__(self) -> MPCTensor:
        self._require_binary()
        return self._wrap(binary_ops.not_(self.session, self._share))

    def __lshift__(self, bits: int) -> MPCTensor:
        """Shift the shared bits left (binary shares; local)."""
        self._require_binary()
        return self._wrap(binary_ops.lshift(self._share, bits))

    def __rshift__(self, bits: int) -> MPCTensor:
        """Logical right shift of the shared bits (binary shares; local)."""
        self._require_binary()
        return self._wrap(binary_ops.rshift(self._share, bits))
