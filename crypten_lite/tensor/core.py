"""MPCTensor: a secret-shared fixed-point tensor with CrypTen's names on numpy arrays.

Representable range (precision ``f``, default 16): an encoded value ``v = round(x 2^f)`` must
satisfy ``|v| < 2^62`` (``|x| < 2^(62-f)``, about 7e13 at f=16). A product of two values is
held at scale ``2^(2f)`` before truncation, so ``|x y| < 2^(62-2f)`` (about 1e9) is needed
with the dealer truncation; with 2-party local truncation each element of a product fails
(is wildly wrong) with probability about ``|x y| 2^(2f-63)`` — about 2^-23 for ``|x y| = 2^8``.
Overflow wraps silently mod 2^64 in the ring; ``SessionConfig(debug_range_check=True)``
checks every revealed value against the range, and the operands of every private product,
matmul and product with a public real before it is computed (a wrapped product would
reveal an in-range value), and raises instead (each check: 7 rounds, reveals one bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import SessionError, ShareError
from crypten_lite.protocols import approximations, beaver, truncation
from crypten_lite.session import Session, current_session
from crypten_lite.sharing import ARITHMETIC, BINARY, reveal, share_from
from crypten_lite.tensor import names as names_mod
from crypten_lite.tensor.approx import ApproxMixin
from crypten_lite.tensor.compare import CompareMixin
from crypten_lite.tensor.names import Names
from crypten_lite.tensor.parity import ParityMixin
from crypten_lite.tensor.reduce import LinearMixin
from crypten_lite.tensor.shape import ShapeMixin

__all__ = ["MPCTensor", "cryptensor", "lift"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]


def _public_array(value: Any, name: str = "value") -> F64 | npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind in "bi" or (arr.dtype.kind == "u" and arr.dtype.itemsize < 8):
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _broadcast_or_raise(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast shape, or a ValueError naming both shapes (before any triple is used)."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError as err:
        raise ValueError(f"{op}: shapes {a} and {b} do not broadcast") from err


def _check_matmul_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    if not a or not b:
        raise ValueError("matmul: both operands need at least one dimension")
    inner = b[0] if len(b) == 1 else b[-2]
    if a[-1] != inner:
        raise ValueError(f"matmul: shapes {a} and {b} cannot be multiplied ({a[-1]} != {inner})")
    _broadcast_or_raise("matmul batch", a[:-2], b[:-2])


def lift(share: U64) -> U64:
    """A 0-d share as shape (1,), so protocol arithmetic stays in (silently wrapping) array
    ufuncs instead of numpy scalars (which warn on wrap-around)."""
    return share.reshape(1) if share.ndim == 0 else share


class MPCTensor(ParityMixin, ApproxMixin, CompareMixin, ShapeMixin, LinearMixin):
    """A secret-shared tensor (one party's share plus public metadata; see module doc)."""

    __array_priority__ = 1000  # numpy operands on the left defer to us
    __slots__ = ("_names", "_session", "_share", "precision", "ptype")

    def __init__(
        self,
        session: Session,
        share: U64,
        precision: int,
        ptype: str = ARITHMETIC,
        names: Sequence[str | None] | None = None,
    ):
        self._session = session
        self._share = share
        self.precision = precision
        self.ptype = ptype
        self._names = names_mod.check_names(names, share.ndim)

    # -- construction and reveal ------------------------------------------------------------
    @classmethod
    def from_shares(
        cls, share: U64, *, precision: int | None = None, session: Session | None = None
    ) -> MPCTensor:
        """Wrap this party's arithmetic share (advanced use)."""
        session = session or current_session()
        if not isinstance(share, np.ndarray) or share.dtype != np.uint64:
            raise TypeError("share must be a numpy uint64 array")
        return cls(session, share, session.config.precision if precision is None else precision)

    @property
    def session(self) -> Session:
        return self._session

    @property
    def share(self) -> U64:
        """This party's share (ring elements). Sharing it reveals nothing by itself."""
        return self._share

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._share.shape)

    @property
    def ndim(self) -> int:
        return self._share.ndim

    @property
    def size(self) -> names_mod.Size:
        """The element count, callable like torch: ``x.size`` (numpy: an int), ``x.size()``
        (the shape), ``x.size(dim)`` (one dim, by position or name)."""
        return names_mod.Size(self.shape, self._names)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d MPCTensor")
        return self.shape[0]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self._share.size)

    @property
    def names(self) -> Names:
        """One name (str) or None per dim; public metadata like the shape."""
        return self._names

    def _axis(self, dim: Any) -> int:
        """A dim given by name or (possibly negative) position, as an axis."""
        return names_mod.lookup(self._names, dim, self._share.ndim)

    @property
    def encoder(self) -> FixedPointEncoder:
        return FixedPointEncoder(self.precision)

    def __repr__(self) -> str:
        named = f", names={self._names}" if names_mod.is_named(self._names) else ""
        return (
            f"MPCTensor(shape={self.shape}{named}, ptype={self.ptype}, "
            f"precision={self.precision}, rank={self._session.rank}, <hidden>)"
        )

    def __bool__(self) -> bool:
        raise TypeError("the truth value of an MPCTensor is secret; reveal it first")

    def _wrap(
        self,
        share: U64,
        precision: int | None = None,
        ptype: str | None = None,
        names: Sequence[str | None] | None = None,
    ) -> MPCTensor:
        """A tensor of this session from a share. Names: those given, else this tensor's
        when the number of dims is unchanged (pointwise ops, pooling, padding), else none."""
        share = np.asarray(share, dtype=np.uint64)
        if names is None and share.ndim == self._share.ndim:
            names = self._names
        return MPCTensor(
            self._session,
            share,
            self.precision if precision is None else precision,
            self.ptype if ptype is None else ptype,
            names,
        )

    def _replace(self, share: U64, precision: int, names: Sequence[str | None]) -> None:
        """Hold a new share in place (in-place ops; see ``tensor.parity``)."""
        self._share = share
        self.precision = precision
        self._names = names_mod.check_names(names, share.ndim)

    def reveal_ring(self, dst: int | None = None) -> U64 | None:
        """The revealed ring elements (1 round)."""
        return reveal(self._session.comm, self._share, dst, self.ptype)

    def get_plain_text(self, dst: int | None = None) -> F64 | None:
        """Decode the revealed value on every party (``dst=None``) or on party ``dst`` only
        (``None`` elsewhere). Cost: 1 round; (N-1)·n elements sent per party (n to ``dst``)."""
        revealed = self.reveal_ring(dst)
        if revealed is None:
            return None
        if self._session.config.debug_range_check and self.ptype != BINARY:
            self._check_range(revealed)
        return self.encoder.decode(revealed)

    def _check_range(self, revealed: U64) -> None:
        limit = np.int64(1) << np.int64(62)
        signed = revealed.view(np.int64)
        if signed.size and (int(signed.max()) >= limit or int(signed.min()) <= -limit):
            raise ShareError(
                "a revealed value lies outside the representable range "
                f"|x| < 2^{62 - self.precision} (precision {self.precision}): "
                "an operation overflowed"
            )

    # -- operand handling ---------------------------------------------------------------------
    def _check_other(self, other: MPCTensor, *, integer_ok: bool = False) -> None:
        """Same session, arithmetic shares, same precision (or, with ``integer_ok``, one of
        the two an integer tensor of precision 0)."""
        self._session.check_same(other._session)
        mixed = integer_ok and 0 in (self.precision, other.precision)
        if not mixed and other.precision != self.precision:
            raise ValueError(f"precision mismatch: {self.precision} and {other.precision}")
        if self.ptype != ARITHMETIC or other.ptype != ARITHMETIC:
            raise TypeError("arithmetic on binary shares: convert with .to(cl.mpc.arithmetic)")

    def _encode_public(self, value: Any) -> U64:
        return self.encoder.encode(_public_array(value))

    def _require_arith(self) -> None:
        if self.ptype != ARITHMETIC:
            raise TypeError("this operation needs arithmetic shares: use .to(cl.mpc.arithmetic)")

    def _names_with(self, other: Any) -> Names:
        """Output names of a broadcasting binary op (checked before anything is computed)."""
        if isinstance(other, MPCTensor):
            return names_mod.unify_from_right(self._names, other._names)
        return names_mod.unify_from_right(self._names, names_mod.unnamed(np.ndim(other)))

    def _add_public_ring(self, encoded: U64, sign: int = 1) -> MPCTensor:
        shape = _broadcast_or_raise("add", self.shape, encoded.shape)
        names = self._names_with(encoded)
        share = np.broadcast_to(self._share, shape).copy()
        if self._session.rank == 0:
            share = share + encoded if sign > 0 else share - encoded
        return self._wrap(share, names=names)

    def _add_masked_public(self, mask: npt.NDArray[np.bool_], value: float) -> MPCTensor:
        """Add the public ``value`` where ``mask`` is set (used by constant padding)."""
        encoded = self._encode_public(np.where(mask, value, 0.0))
        return self._add_public_ring(encoded)

    def _debug_operands(
        self, op: str, operands: Sequence[MPCTensor], bound: float, reason: str, hint: str
    ) -> None:
        """With ``debug_range_check``: raise unless every element of ``operands`` has
        ``|x| <= bound`` (checked before ``op``; revealed values are already wrapped). One
        batched check, 7 rounds, reveals one bit. Nothing without ``debug_range_check``."""
        if not self._session.config.debug_range_check:
            return
        flat = np.concatenate([lift(t._share).reshape(-1) for t in operands])
        approximations.check_range(
            self._session, flat, self.precision, op, None, bound, absolute=True,
            reason=reason, hint=hint,
        )

    def _debug_product(self, op: str, operands: Sequence[MPCTensor], bound: float) -> None:
        """:meth:`_debug_operands` with ``bound`` the magnitude below which ``op``'s ring
        product cannot wrap mod 2^64."""
        self._debug_operands(
            op, operands, bound,
            "an operand is too large, the product could overflow the ring: needs",
            f"products need |x y| < 2^{62 - 2 * self.precision}",
        )

    def _debug_compare(self, op: str, operands: Sequence[MPCTensor]) -> None:
        """:meth:`_debug_operands` with ``|x| <= 2^(61 - f)`` (half the representable range),
        where a comparison's ring difference cannot wrap. Outside it ``op`` still returns the
        sign of the difference mod 2^64 (of the value itself for relu and max), which is wrong
        once the true difference reaches 2^(63 - f)."""
        self._debug_operands(
            op, operands, float(2.0 ** (61 - self.precision)),
            "an operand is too large, its comparison could wrap the ring: needs",
            f"comparisons need |x| <= 2^{61 - self.precision}",
        )

    def _product_bound(self, terms: int = 1) -> float:
        """Largest safe operand magnitude of a private product with ``terms`` summed terms:
        ``sqrt(2^(62-2f) / terms)``."""
        return float(2.0 ** ((62 - 2 * self.precision) / 2) / math.sqrt(max(terms, 1)))

    def truncate(self, bits: int) -> MPCTensor:
        """Divide the shared value by ``2^bits`` (session's truncation method)."""
        out = truncation.truncate(self._session, lift(self._share), bits)
        return self._wrap(out.reshape(self.shape))

    # -- arithmetic ----------------------------------------------------------------------------
    def add(self, other: Any) -> MPCTensor:
        """Elementwise sum (local)."""
        self._require_arith()
        if isinstance(other, MPCTensor):
            self._check_other(other)
            shape = _broadcast_or_raise("add", self.shape, other.shape)
            total = np.add(lift(self._share), lift(other._share)).reshape(shape)
            return self._wrap(total, names=self._names_with(other))
        return self._add_public_ring(self._encode_public(other))

    def sub(self, other: Any) -> MPCTensor:
        """Elementwise difference (local)."""
        self._require_arith()
        if isinstance(other, MPCTensor):
            self._check_other(other)
            shape = _broadcast_or_raise("sub", self.shape, other.shape)
            # lifted: 0-d shares as (1,) arrays, whose wrap-around numpy does not warn about
            difference = np.subtract(lift(self._share), lift(other._share)).reshape(shape)
            return self._wrap(difference, names=self._names_with(other))
        return self._add_public_ring(self._encode_public(other), sign=-1)

    def neg(self) -> MPCTensor:
        self._require_arith()
        return self._wrap(np.negative(self._share))

    def mul(self, other: Any) -> MPCTensor:
        """Elementwise product. Private * private: 1 Beaver round + truncation (0 rounds with
        2-party local truncation, 1 with the dealer's). Private * integer: local and exact.
        Private * real: local product and one truncation. A private integer tensor
        (precision 0, e.g. a comparison bit or a mask) times a fixed-point one keeps the
        fixed-point precision and needs no truncation: 1 round, exact."""
        self._require_arith()
        if isinstance(other, MPCTensor):
            self._check_other(other, integer_ok=True)
            shape = _broadcast_or_raise("mul", self.shape, other.shape)
            names = self._names_with(other)  # a name clash fails before a triple is used
            if self.precision and other.precision:
                self._debug_product("mul", (self, other), self._product_bound())
            product = beaver.mul(self._session, lift(self._share), lift(other._share))
            low, high = sorted((self.precision, other.precision))
            out = self._wrap(product.reshape(shape), precision=high, names=names)
            return out.truncate(low) if low else out
        return self._mul_public(_public_array(other))

    def _mul_public(self, value: F64 | npt.NDArray[np.int64]) -> MPCTensor:
        names = self._names_with(value)
        if value.dtype == np.int64:
            return self._wrap(self._share * value.view(np.uint64), names=names)
        finite = value[np.isfinite(value)] if value.size else value
        if finite.size != value.size:
            raise ValueError("cannot multiply by NaN or infinity")
        largest = float(np.max(np.abs(value))) if value.size else 0.0
        if largest == 0.0:
            zeros = np.zeros(np.broadcast_shapes(self.shape, value.shape), np.uint64)
            return self._wrap(zeros, names=names)
        # Encode the factor at the tensor's precision, or finer when it is small so that it
        # keeps `precision` significant bits (1/n of a mean over many elements stays accurate).
        bits = max(self.precision, min(self.precision - math.ceil(math.log2(largest)), 61))
        # the ring product holds x c at scale 2^(f + bits): it must stay below 2^62
        limit = 2.0 ** (62 - bits - self.precision) / largest
        self._debug_product("mul by a public value", (self,), limit)
        multiplier = FixedPointEncoder(bits).encode(value)
        return self._wrap(self._share * multiplier, names=names).truncate(bits)

    def div(self, other: Any) -> MPCTensor:
        """Division by a public value (one truncation), or by a private one: ``reciprocal``
        with ``self`` folded into its last product (see ``MPCTensor.reciprocal`` for the
        divisor's range, error and cost)."""
        if isinstance(other, MPCTensor):
            return self._div_private(other)
        divisor = _public_array(other, "divisor").astype(np.float64)
        if np.any(divisor == 0):
            raise ZeroDivisionError("division of an MPCTensor by zero")
        return self._mul_public(1.0 / divisor)

    def square(self) -> MPCTensor:
        return self.mul(self)

    def matmul(self, other: Any) -> MPCTensor:
        """Matrix product (numpy semantics). Private @ private: 1 Beaver round + truncation."""
        self._require_arith()
        if isinstance(other, MPCTensor):
            self._check_other(other)
            _check_matmul_shapes(self.shape, other.shape)
            names = names_mod.matmul_names(self._names, other._names)
            self._debug_product("matmul", (self, other), self._product_bound(self.shape[-1]))
            z = beaver.matmul(self._session, self._share, other._share)
        else:
            public = self._encode_public(other)
            _check_matmul_shapes(self.shape, public.shape)
            names = names_mod.matmul_names(self._names, names_mod.unnamed(public.ndim))
            z = ring.matmul(self._share, public)
        return self._wrap(z, names=names).truncate(self.precision)

    def rmatmul(self, other: Any) -> MPCTensor:
        """``public @ self``."""
        public = self._encode_public(other)
        _check_matmul_shapes(public.shape, self.shape)
        names = names_mod.matmul_names(names_mod.unnamed(public.ndim), self._names)
        z = ring.matmul(public, self._share)
        return self._wrap(z, names=names).truncate(self.precision)

    # Operators return NotImplemented for an operand of a higher ``__array_priority__``
    # (an autograd Variable), so that operand's reflected operator records the operation.
    def _defers_to(self, other: Any) -> bool:
        priority = getattr(other, "__array_priority__", 0)
        return isinstance(priority, int | float) and priority > self.__array_priority__

    def __add__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.add(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.sub(other)

    def __rsub__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.neg().add(other)

    def __mul__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.mul(other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.div(other)

    def __matmul__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.matmul(other)

    def __rmatmul__(self, other: Any) -> Any:
        return NotImplemented if self._defers_to(other) else self.rmatmul(other)

    __neg__ = neg

    def __pos__(self) -> MPCTensor:
        return self

    def __abs__(self) -> MPCTensor:
        return self.abs()


def _encode_meta(shape: tuple[int, ...], names: Names) -> npt.NDArray[np.int64]:
    """``[ndim, *shape, then per name: -1 (None) or its length and UTF-8 bytes]``."""
    flat: list[int] = [len(shape), *shape]
    for name in names:
        if name is None:
            flat.append(-1)
        else:
            raw = name.encode("utf-8")
            flat.extend([len(raw), *raw])
    return np.array(flat, dtype=np.int64)


def _decode_meta(message: npt.NDArray[np.generic], src: int) -> tuple[tuple[int, ...], Names]:
    try:
        values = [int(v) for v in np.asarray(message, dtype=np.int64).reshape(-1)]
        ndim = values[0]
        shape = tuple(values[1 : 1 + ndim])
        names: list[str | None] = []
        i = 1 + ndim
        for _ in range(ndim):
            length = values[i]
            if length < 0:
                names.append(None)
                i += 1
            else:
                names.append(bytes(values[i + 1 : i + 1 + length]).decode("utf-8"))
                i += 1 + length
    except (IndexError, ValueError) as err:
        raise ShareError(f"malformed tensor metadata from party {src}") from err
    return shape, names_mod.check_names(names, ndim)


def cryptensor(
    data: Any,
    src: int = 0,
    precision: int | None = None,
    *,
    names: Sequence[str | None] | None = None,
    session: Session | None = None,
    ptype: str = ARITHMETIC,
) -> MPCTensor:
    """Secret-share ``data`` held by party ``src``: only that party's values matter; the
    others pass an array of the same shape or ``None``. ``ptype`` (``cl.mpc.arithmetic``, the
    default, or ``cl.mpc.binary``) is the kind of shares: binary shares XOR-share the same
    fixed-point encoding (same cost). ``names`` names the dims (the
    source's names travel with the shape; another party passing different names or another
    shape raises ``ShareError`` before any triple is used). Cost: 1 round in which ``src``
    announces shape and names; the sharing itself is pseudo-random zero-sharing and sends
    nothing."""
    session = session or current_session()
    if not isinstance(session, Session):
        raise SessionError("session must be a crypten_lite Session")
    if isinstance(data, MPCTensor):
        raise TypeError("data is already an MPCTensor")
    if ptype not in (ARITHMETIC, BINARY):
        raise ValueError(f"unknown ptype {ptype!r}; use cl.mpc.arithmetic or cl.mpc.binary")
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < session.world_size:
        raise ShareError(
            f"src={src!r} is not a party rank; parties are 0..{session.world_size - 1}"
        )
    precision = session.config.precision if precision is None else precision
    encoder = FixedPointEncoder(precision)
    if data is not None and names is not None:  # every party holding data checks its names
        names_mod.check_names(names, np.ndim(data))  # before anything is sent
    value = None
    meta = None
    if session.rank == src:
        if data is None:
            raise ShareError(f"party {src} is the source of cryptensor but passed None")
        value = encoder.encode(_public_array(data, "data"))
        meta = _encode_meta(value.shape, names_mod.check_names(names, value.ndim))
    shape, agreed = _decode_meta(session.comm.broadcast(meta, src), src)
    if session.rank != src:
        if data is not None and np.shape(data) != shape:
            raise ShareError(
                f"party {session.rank} passed data of shape {np.shape(data)} but the source "
                f"party {src} shares shape {shape}"
            )
        if names is not None and names_mod.check_names(names, len(shape)) != agreed:
            raise ShareError(
                f"party {session.rank} expects names {tuple(names)} but the source party "
                f"{src} shares {names_mod.fmt(agreed)}"
            )
    share = share_from(session.comm, session.zeros, value, src, shape, kind=ptype)
    return MPCTensor(session, share, precision, ptype, names=agreed)
