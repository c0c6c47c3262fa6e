"""Fixed-point arithmetic circuits on raw arithmetic shares, evaluated level by level, and
Chebyshev polynomials on them in logarithmic depth.

A :class:`Circuit` is built first (inputs, linear combinations with public coefficients,
exact local maps, products) and then :meth:`Circuit.run` evaluates it. A value is a sharing
of ``v 2^scale``: fixed-point values have ``scale = frac``, comparison bits ``scale = 0``.
Every product sits at a *level*, one more than its deepest operand, and all products of a
level share ONE opening round:

1. Products of a level are grouped by their left operand; a group opens its left operand
   once (``e = x - a``) and each right operand once (``f_q = y_q - b_q``), with one dealer
   triple ``[a b_q]`` for the whole group (``"mul"`` kind with shapes ``(1, 1, X)`` and
   ``(1, Q, Y)``). Party ``i`` sets ``z_q = c_q + e b_q + a f_q`` (party 0 adds ``e f_q``).
2. Truncation. With 2-party *local* truncation every value is brought back to ``scale =
   frac`` as soon as it exceeds it (0 rounds). With the *dealer* truncation a value above
   ``frac`` stays *pending* until a level uses it as an operand. By default
   (``fuse=False``) that level first truncates its pending operands together
   (``truncation.truncate_dealer``: 1 round, one element each), then opens as in step 1.
   With ``fuse=True`` (``SessionConfig.min_rounds``) the truncation rides in the level's
   own opening: for a pending operand ``x`` (``b`` bits too many) the dealer gives the
   truncation mask ``[r], [r >> b], [msb r]`` and two Beaver masks ``[a0], [a1]``; the level
   opens ``c = x + 2^62 + r``, ``w0 = [r >> b] + [a0]`` and ``w1 = 2^(64-b) [msb r] -
   [a1]`` together with the other operands. With ``s = 1 - msb(c)`` the truncated value is
   ``x' = (c >> b) - 2^(62-b) - [r >> b] + s 2^(64-b) [msb r] = E + [a0] + s [a1]`` with the
   public ``E = (c >> b) - 2^(62-b) - w0 + s w1``: a Beaver opening of ``x'`` under the mask
   ``A = a0 + s a1``. The triple provides ``[a_i b_j]`` for ``i, j`` in ``{0, 1}`` (shapes
   ``(2, 1, X)``, ``(1, 2Q, Y)``) and ``[A B] = sum_ij sel_i sel_j [a_i b_j]``. Every opened
   value is uniformly masked (``r``, ``a0``, ``a1`` fresh). Either way the circuit's
   outputs, if pending, take one final truncation round (all outputs together).
3. Linear combinations with real coefficients encode them with enough extra bits for the
   largest coefficient to keep ``frac`` significant bits (``scale + g``, pending or truncated
   as above); integer coefficients and local maps (sums, reshapes) are exact.

Cost per level: 1 round (2 with unfused dealer truncation of pending operands); ``(N-1)``
ring elements per opened element sent per party: one per left operand of a group and per
right operand, plus one per pending operand (and with ``fuse``, two more per use of it). A
fused square of a pending value opens 5 elements instead of 3 and draws about twice the
dealer randomness (4 mask products instead of 1): it saves rounds, not work.
Errors: each truncation is within one unit of ``2^-frac`` (local: rare large errors with
probability ``|v| 2^(scale-64)`` per element, see ``truncation``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev as cheb

from crypten_lite.errors import ProtocolError
from crypten_lite.protocols.context import ProtocolContext, open_arith
from crypten_lite.protocols.truncation import truncate_local, truncation_method
from crypten_lite.providers import Correlation

__all__ = ["Circuit", "Fixed", "chebyshev", "chebyshev_fit"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
_BIAS = 62
#: Largest scale a pending value may reach (dealer mode): |v| 2^scale < 2^62 leaves 2^10.
_MAX_SCALE = 52
_ONE = np.uint64(1)


@dataclass(frozen=True)
class Fixed:
    """One party's share of ``v * 2^scale``."""

    share: U64
    scale: int


@dataclass(frozen=True)
class _Input:
    value: Fixed


@dataclass(frozen=True)
class _Lin:
    terms: tuple[tuple[float, int], ...]
    const: float


@dataclass(frozen=True)
class _Map:
    source: int
    fn: Callable[[U64], U64]


@dataclass(frozen=True)
class _Mul:
    left: int
    right: int


_Node = _Input | _Lin | _Map | _Mul


def _ring_int(value: int) -> np.uint64:
    return np.uint64(value % (1 << 64))


def _is_int(value: float) -> bool:
    return float(value).is_integer()


class Circuit:
    """Build with :meth:`input`, :meth:`lin`, :meth:`map`, :meth:`mul`; evaluate with
    :meth:`run` (see module doc). Nodes are ints.

    ``frac``: fractional bits of every value's result. ``fuse``: with the dealer truncation,
    truncate pending operands inside the next level's opening (step 2 of the module doc; 1
    round per level) instead of in a round of their own just before it (2 rounds per level,
    but for a square of a pending value 3 opened elements instead of 5 and about half the
    dealer randomness: measured faster in-process). No effect with 2-party local
    truncation."""

    def __init__(self, frac: int, fuse: bool = False) -> None:
        self.frac = frac
        self.fuse = fuse
        self._nodes: list[_Node] = []
        self._levels: list[int] = []

    # -- building ----------------------------------------------------------------------------
    def _add(self, node: _Node, level: int) -> int:
        self._nodes.append(node)
        self._levels.append(level)
        return len(self._nodes) - 1

    def level(self, node: int) -> int:
        """Rounds of products (2-party count) before ``node`` is available."""
        return self._levels[node]

    def input(self, share: U64, scale: int) -> int:
        """A shared input ``v 2^scale`` (``scale = frac`` fixed point, ``0`` for bits)."""
        return self._add(_Input(Fixed(np.asarray(share, dtype=np.uint64), scale)), 0)

    def lin(self, terms: Sequence[tuple[float, int]], const: float = 0.0) -> int:
        """``const + sum c_i v_i``; exact when every ``c_i`` is an integer. Real coefficients
        are encoded with enough bits for the largest to keep ``frac`` significant bits, so a
        term whose coefficient is much smaller than the largest one should have a small value
        too (its absolute resolution is ``|v| 2^-frac`` times the ratio)."""
        merged: dict[int, float] = {}
        for c, n in terms:
            merged[n] = merged.get(n, 0.0) + float(c)
        kept = tuple((c, n) for n, c in merged.items() if c != 0.0)
        level = max((self._levels[n] for _, n in kept), default=0)
        return self._add(_Lin(kept, float(const)), level)

    def map(self, node: int, fn: Callable[[U64], U64]) -> int:
        """An exact local linear map of the share (sum over an axis, reshape, broadcast)."""
        return self._add(_Map(node, fn), self._levels[node])

    def mul(self, left: int, right: int) -> int:
        """Elementwise product with broadcasting (one level)."""
        return self._add(_Mul(left, right), 1 + max(self._levels[left], self._levels[right]))

    def square(self, node: int) -> int:
        return self.mul(node, node)

    # -- evaluation ------------------------------------------------------------------------
    def run(self, ctx: ProtocolContext, outputs: Sequence[int]) -> list[U64]:
        """Evaluate and return each output's share at ``scale = frac``.

        Cost: one round per product level; with the dealer truncation one more round when an
        output is still pending.
        """
        return _Run(self, ctx).outputs(list(outputs))


class _Run:
    """One evaluation of a circuit."""

    def __init__(self, circuit: Circuit, ctx: ProtocolContext) -> None:
        self.c = circuit
        self.ctx = ctx
        self.frac = circuit.frac
        self.local = truncation_method(ctx) == "local"
        self.values: dict[int, Fixed] = {}

    # -- helpers -----------------------------------------------------------------------------
    def normalize(self, value: Fixed) -> Fixed:
        """Local mode: truncate anything above ``frac`` at once (0 rounds)."""
        if self.local and value.scale > self.frac:
            share = truncate_local(self.ctx, value.share, value.scale - self.frac)
            return Fixed(share, self.frac)
        return value

    def public(self, value: U64) -> U64:
        """A public ring value as a sharing: party 0 holds it."""
        return value if self.ctx.rank == 0 else np.zeros_like(value)

    def biased(self, share: U64) -> U64:
        return share + np.uint64(1 << _BIAS) if self.ctx.rank == 0 else share

    def _needed(self, outputs: list[int]) -> set[int]:
        seen: set[int] = set()
        stack = list(outputs)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            node = self.c._nodes[n]
            if isinstance(node, _Lin):
                stack.extend(t for _, t in node.terms)
            elif isinstance(node, _Map):
                stack.append(node.source)
            elif isinstance(node, _Mul):
                stack.extend((node.left, node.right))
        return seen

    def value(self, n: int) -> Fixed:
        """The value of a node whose product dependencies are evaluated."""
        if n in self.values:
            return self.values[n]
        node = self.c._nodes[n]
        if isinstance(node, _Input):
            out = node.value
        elif isinstance(node, _Map):
            src = self.value(node.source)
            out = Fixed(np.asarray(node.fn(src.share), dtype=np.uint64), src.scale)
        elif isinstance(node, _Lin):
            out = self._lin(node)
        else:  # pragma: no cover - products are evaluated level by level
            raise AssertionError("product evaluated out of order")
        self.values[n] = out
        return out

    def _expand(self, node: _Lin) -> tuple[list[tuple[float, Fixed]], float]:
        """The terms of ``node`` (dealer mode): a term that is itself a linear combination
        whose value sits at a high scale is replaced by its own terms, so that real
        coefficients are not applied on top of each other (the scale would overflow)."""
        terms: list[tuple[float, Fixed]] = []
        const = node.const
        for c, n in node.terms:
            inner = self.c._nodes[n]
            value = self.value(n)
            if not self.local and isinstance(inner, _Lin) and value.scale > _MAX_SCALE - self.frac:
                sub, sub_const = self._expand(inner)
                terms.extend((c * c2, v) for c2, v in sub)
                const += c * sub_const
            else:
                terms.append((c, value))
        return terms, const

    def _lin(self, node: _Lin) -> Fixed:
        terms, const = self._expand(node)
        coefs = [c for c, _ in terms]
        values = [v for _, v in terms]
        top = max((v.scale for v in values), default=0)
        if all(_is_int(c) for c in coefs):
            scale = top if _is_int(const * 2.0**top) else max(top, self.frac)
        else:
            # enough bits for the largest coefficient to keep `frac` significant bits
            largest = max(abs(c) for c in coefs)
            extra = self.frac + max(0, -math.floor(math.log2(largest)))
            if not self.local:
                extra += 4
                if top + extra > _MAX_SCALE and top > _MAX_SCALE - self.frac:
                    values = self._settle(values)  # 1 more round; only above 17 fractional bits
                    top = max(v.scale for v in values)
                extra = min(extra, _MAX_SCALE - top)
            scale = max(top + extra, self.frac)
        shape = np.broadcast_shapes(*(v.share.shape for v in values)) if values else ()
        acc = np.zeros(shape, dtype=np.uint64)
        for c, v in zip(coefs, values, strict=True):
            acc = acc + v.share * _ring_int(round(c * 2.0 ** (scale - v.scale)))
        if const and self.ctx.rank == 0:
            acc = acc + _ring_int(round(const * 2.0**scale))
        return self.normalize(Fixed(acc, scale))

    # -- settling ----------------------------------------------------------------------------
    def _settle(self, values: list[Fixed]) -> list[Fixed]:
        """Bring every value to ``scale <= frac``: dealer truncation of all pending ones in
        ONE round (nothing is pending in local mode)."""
        pending = [i for i, v in enumerate(values) if v.scale > self.frac]
        if not pending:
            return values
        out = list(values)
        corrs: list[Correlation] = []
        masked = []
        for i in pending:
            v = values[i]
            corr = self.ctx.provider.get("trunc", (v.share.shape, (v.scale - self.frac,)))
            corrs.append(corr)
            masked.append(self.biased(v.share) + corr["r"])
        opened = open_arith(self.ctx, *masked)
        for i, corr, c in zip(pending, corrs, opened, strict=True):
            bits = values[i].scale - self.frac
            base, s = trunc_public(c, bits)
            share = ((corr["r_msb"] * s) << np.uint64(64 - bits)) - corr["r_shifted"]
            out[i] = Fixed(share + self.public(base), self.frac)
        return out

    def outputs(self, outputs: list[int]) -> list[U64]:
        needed = self._needed(outputs)
        by_level: dict[int, list[int]] = {}
        for n in sorted(needed):
            if isinstance(self.c._nodes[n], _Mul):
                by_level.setdefault(self.c._levels[n], []).append(n)
        for level in sorted(by_level):
            self._level(by_level[level])
        values = self._settle([self.value(n) for n in outputs])
        return [
            v.share << np.uint64(self.frac - v.scale) if v.scale < self.frac else v.share
            for v in values
        ]

    # -- one level of products ---------------------------------------------------------------
    def _level(self, muls: list[int]) -> None:
        pairs: list[tuple[int, int, int]] = []
        for n in muls:
            node = self.c._nodes[n]
            if not isinstance(node, _Mul):  # the scheduler only lists product nodes here
                raise ProtocolError(f"circuit node {n} scheduled as a product is not one")
            pairs.append((n, node.left, node.right))
        counts = Counter(o for _, a, b in pairs for o in (a, b))
        groups: dict[tuple[int, tuple[int, ...]], list[tuple[int, int]]] = {}
        for n, a, b in pairs:
            left, right = (a, b) if counts[a] >= counts[b] else (b, a)
            shape = tuple(self.value(right).share.shape)
            groups.setdefault((left, shape), []).append((n, right))
        operands = {o for _, a, b in pairs for o in (a, b)}
        pending = sorted(o for o in operands if self.value(o).scale > self.frac)
        if pending and not self.c.fuse:
            for o, v in zip(pending, self._settle([self.value(o) for o in pending]), strict=True):
                self.values[o] = v
            pending = []
        level = _Level(self, pending)
        plans = [level.plan(left, rights) for (left, _), rights in groups.items()]
        level.open()
        for plan in plans:
            level.finish(plan)
        self.values.update(level.settled)


def trunc_public(c: U64, bits: int) -> tuple[U64, U64]:
    """``((c >> b) - 2^(62-b), 1 - msb(c))`` from the opened ``c = x + 2^62 + r``."""
    base = (c >> np.uint64(bits)) - np.uint64(1 << (_BIAS - bits))
    return base, _ONE - (c >> np.uint64(63))


@dataclass
class _Use:
    """One use of an operand in a group: where its openings sit and its mask components."""

    node: int
    masks: U64  # shape (k, *shape): a0, and a1 when the operand is pending
    slot: int  # index of its first opened array
    pending: bool


@dataclass
class _Plan:
    triple: Correlation
    left: _Use
    products: list[int]
    rights: list[_Use]


class _Level:
    """The openings of one level (module doc, steps 1-2)."""

    def __init__(self, run: _Run, pending: list[int]) -> None:
        self.run = run
        self.arrays: list[U64] = []
        self.opened: list[U64] = []
        self.trunc: dict[int, tuple[Correlation, int, int]] = {}  # node -> corr, slot, bits
        self.public: dict[int, tuple[U64, U64]] = {}
        self.settled: dict[int, Fixed] = {}
        for node in pending:
            v = run.value(node)
            bits = v.scale - run.frac
            corr = run.ctx.provider.get("trunc", (v.share.shape, (bits,)))
            self.trunc[node] = (corr, self._push(run.biased(v.share) + corr["r"]), bits)

    def _push(self, array: U64) -> int:
        self.arrays.append(np.asarray(array, dtype=np.uint64))
        return len(self.arrays) - 1

    def _use(self, node: int, masks: U64) -> _Use:
        """Open one use of ``node`` under ``masks``."""
        if node in self.trunc:
            corr, _, bits = self.trunc[node]
            slot = self._push(corr["r_shifted"] + masks[0])
            self._push((corr["r_msb"] << np.uint64(64 - bits)) - masks[1])
            return _Use(node, masks, slot, True)
        return _Use(node, masks, self._push(self.run.value(node).share - masks[0]), False)

    def plan(self, left: int, rights: list[tuple[int, int]]) -> _Plan:
        x_shape = tuple(self.run.value(left).share.shape)
        y_shape = tuple(self.run.value(rights[0][1]).share.shape)
        ka = 2 if left in self.trunc else 1
        kbs = [2 if r in self.trunc else 1 for _, r in rights]
        ndim = max(len(x_shape), len(y_shape))
        xa = (1,) * (ndim - len(x_shape)) + x_shape
        ya = (1,) * (ndim - len(y_shape)) + y_shape
        triple = self.run.ctx.provider.get("mul", ((ka, 1, *xa), (1, sum(kbs), *ya)))
        left_use = self._use(left, triple["a"].reshape(ka, *x_shape))
        b = triple["b"].reshape(sum(kbs), *y_shape)
        uses, start = [], 0
        for (_, r), kb in zip(rights, kbs, strict=True):
            uses.append(self._use(r, b[start : start + kb]))
            start += kb
        return _Plan(triple, left_use, [n for n, _ in rights], uses)

    def open(self) -> None:
        self.opened = open_arith(self.run.ctx, *self.arrays)

    def _public_part(self, use: _Use) -> tuple[U64, U64 | None]:
        """The opened ``E`` of one use and its selector ``s`` (None when not pending); the
        use's value is ``E + A`` with ``A = a0 (+ s a1)``. Records settled values."""
        if not use.pending:
            return self.opened[use.slot], None
        if use.node not in self.public:
            _, c_slot, bits = self.trunc[use.node]
            self.public[use.node] = trunc_public(self.opened[c_slot], bits)
        base, s = self.public[use.node]
        e = base - self.opened[use.slot] + s * self.opened[use.slot + 1]
        if use.node not in self.settled:
            mask = use.masks[0] + s * use.masks[1]
            self.settled[use.node] = Fixed(mask + self.run.public(e), self.run.frac)
        return e, s

    def finish(self, plan: _Plan) -> None:
        run = self.run
        e_l, s_l = self._public_part(plan.left)
        a_l = plan.left.masks[0] if s_l is None else plan.left.masks[0] + s_l * plan.left.masks[1]
        scale_l = run.frac if plan.left.pending else run.value(plan.left.node).scale
        c = plan.triple["c"]
        start = 0
        for n, use in zip(plan.products, plan.rights, strict=True):
            kb = 2 if use.pending else 1
            e_r, s_r = self._public_part(use)
            b_r = use.masks[0] if s_r is None else use.masks[0] + s_r * use.masks[1]
            cs = c[:, start : start + kb]
            ab = cs[0, 0] if s_r is None else cs[0, 0] + s_r * cs[0, 1]
            if s_l is not None:
                ab = ab + s_l * (cs[1, 0] if s_r is None else cs[1, 0] + s_r * cs[1, 1])
            shape = np.broadcast_shapes(a_l.shape, b_r.shape)
            z = ab.reshape(shape) + e_l * b_r + e_r * a_l + run.public(e_l * e_r)
            scale_r = run.frac if use.pending else run.value(use.node).scale
            run.values[n] = run.normalize(Fixed(np.asarray(z, dtype=np.uint64), scale_l + scale_r))
            start += kb


# -- Chebyshev polynomials -------------------------------------------------------------------
def chebyshev_fit(fn: Callable[[F64], F64], lo: float, hi: float, degree: int) -> F64:
    """Chebyshev coefficients (in ``t = (2x - lo - hi) / (hi - lo)``) of the degree-``degree``
    interpolant of ``fn`` at the Chebyshev points of ``[lo, hi]`` (near-minimax)."""
    k = np.arange(degree + 1)
    t = np.cos(np.pi * (k + 0.5) / (degree + 1))
    x = (t * (hi - lo) + hi + lo) / 2
    return np.asarray(cheb.chebfit(t, fn(x), degree), dtype=np.float64)


class _Basis:
    """``T_k(t)`` nodes built on demand in depth ``ceil(log2 k)``:
    ``T_2m = 2 T_m^2 - 1`` and ``T_(a+b) = 2 T_a T_b - T_(a-b)`` with ``a`` a power of two."""

    def __init__(self, circ: Circuit, t: int, t2: int | None) -> None:
        self.circ = circ
        self.nodes: dict[int, int] = {1: t}
        if t2 is not None:
            self.nodes[2] = t2

    def __getitem__(self, k: int) -> int:
        if k in self.nodes:
            return self.nodes[k]
        circ = self.circ
        a = 1 << (k.bit_length() - 1)
        if a == k:
            half = self[k // 2]
            node = circ.lin([(2, circ.square(half))], -1.0)
        else:
            b = k - a
            prod = circ.mul(self[a], self[b])
            diff = a - b
            node = (
                circ.lin([(2, prod)], -1.0)
                if diff == 0
                else circ.lin([(2, prod), (-1, self[diff])])
            )
        self.nodes[k] = node
        return node


def _mul_count(degree: int, baby: int) -> int:
    """Products :func:`chebyshev` spends (basis and giant steps included, roughly)."""
    if degree <= baby:
        return 0
    giant = 1 << ((degree - 1).bit_length() - 1)
    return 1 + _mul_count(degree - giant, baby) + _mul_count(giant - 1, baby)


def chebyshev(circ: Circuit, t: int, coeffs: F64, *, t2: int | None = None) -> int:
    """``sum_k coeffs[k] T_k(t)`` as a circuit node of depth ``ceil(log2 degree)`` (levels
    after ``t``), by baby-step giant-step: ``p = r + T_G q`` with ``G`` the power of two just
    below the degree (``numpy.polynomial.chebyshev.chebdiv``), recursing down to degree
    ``baby`` (4 or 8, whichever needs fewer products), where ``p`` is a linear combination of
    ``T_0 .. T_baby``. ``t2``: an already computed ``T_2(t)``. The coefficients of ``q`` and
    ``r`` stay within twice those of ``p``, and every ``|T_k(t)| <= 1`` on ``|t| <= 1``.
    """
    coeffs = np.trim_zeros(np.asarray(coeffs, dtype=np.float64), "b")
    if coeffs.size == 0:
        coeffs = np.zeros(1)
    degree = coeffs.size - 1
    baby = min((4, 8), key=lambda b: (_mul_count(degree, b) + min(b, degree) - 1, b))
    return _eval(circ, _Basis(circ, t, t2), coeffs, baby)


def _eval(circ: Circuit, basis: _Basis, coeffs: F64, baby: int) -> int:
    degree = coeffs.size - 1
    if degree <= baby:
        terms = [(float(c), basis[k]) for k, c in enumerate(coeffs) if k and c != 0.0]
        return circ.lin(terms, float(coeffs[0]))
    giant = 1 << ((degree - 1).bit_length() - 1)
    t_g = np.zeros(giant + 1)
    t_g[giant] = 1.0
    quo, rem = (np.asarray(v, dtype=np.float64) for v in cheb.chebdiv(coeffs, t_g))
    low = _eval(circ, basis, rem, baby)
    if quo.size == 1:
        return circ.lin([(1, low), (float(quo[0]), basis[giant])])
    high = _eval(circ, basis, quo, baby)
    return circ.lin([(1, low), (1, circ.mul(basis[giant], high))])
