"""Binary (XOR) sharings: bitwise gates, and multi-input gates from dealer monomials.

A binary sharing ``<x>`` is one ``np.uint64`` word per element on every party; the XOR of
the parties' words is ``x``. The 64 bits of a word are independent lanes, so one AND of two
arrays evaluates 64 AND gates per element. XOR, NOT, shifts and operations with a public
operand are local; an AND of two sharings takes one round with an ``"and"`` triple.

Multi-input gates (used by ``conversion`` and ``comparison``): a level of a circuit whose
inputs ``y_v`` are known as ``y_v = m_v XOR s_v`` with ``m_v`` public (an opened, masked
value, or a public bit combined with a dealer bit) is a polynomial in the dealer's bits
``s_v``. Expanding every product ``prod_v (alpha_v s_v XOR beta_v)`` gives
``sum_U C_U s_U`` with public ``C_U`` and ``s_U = prod_{v in U} s_v``; the dealer provides
``s_U`` (``"monomials"`` kind), so a gate with any number of inputs costs one opening.
The same expansion in Z_2^64 (``y = m + (1 - 2m) s``) yields arithmetic shares directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.errors import ProtocolError, RingDTypeError, RingShapeError
from crypten_lite.protocols.context import ProtocolContext, open_binary
from crypten_lite.providers.base import Correlation
from crypten_lite.providers.kinds import (
    MONO_ARITH,
    MONO_BINARY,
    REF_BIT,
    Params,
    encode_ref,
)
from crypten_lite.ring.program import Compiled, ProgramBuilder, Reg, Sym

__all__ = [
    "ONES",
    "Group",
    "Lit",
    "Mono",
    "Monomials",
    "Term",
    "Var",
    "Word",
    "and_",
    "and_many",
    "and_public",
    "carry_terms",
    "check_u64",
    "correlation_resolver",
    "evaluate",
    "evaluate_fused",
    "expand",
    "gate_words",
    "lane_mask",
    "lshift",
    "monomials_of",
    "not_",
    "open_bits",
    "or_",
    "or_public",
    "request_params",
    "rshift",
    "share_key",
    "shifted",
    "xor",
    "xor_public",
]

U64 = npt.NDArray[np.uint64]
ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
Var = tuple[int, int, int]  # (reference kind, source, bit offset): see providers.kinds
Mono = frozenset[Var]
Word = U64 | Sym  # a public value: an array, or a symbolic word while a level is compiled


def check_u64(name: str, x: object) -> U64:
    """``x`` as a uint64 array (a 0-d share may be a numpy scalar), or
    :class:`RingDTypeError` naming ``name``."""
    if not isinstance(x, np.ndarray | np.generic) or x.dtype != np.uint64:
        raise RingDTypeError(f"{name} must be a numpy uint64 array (a share)")
    return np.asarray(x)


def _pair(x: object, y: object) -> tuple[U64, U64]:
    a, b = check_u64("x", x), check_u64("y", y)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError as err:
        raise RingShapeError(f"x {a.shape} and y {b.shape} do not broadcast") from err
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)


def xor(x: U64, y: U64) -> U64:
    """``<x ^ y> = <x> ^ <y>``. Cost: local (0 rounds, 0 bytes)."""
    a, b = _pair(x, y)
    return np.bitwise_xor(a, b)


def not_(ctx: ProtocolContext, x: U64) -> U64:
    """``<~x>``: party 0 flips every bit of its share. Cost: local."""
    x = check_u64("x", x)
    return np.bitwise_not(x) if ctx.rank == 0 else x.copy()


def xor_public(ctx: ProtocolContext, x: U64, c: U64) -> U64:
    """``<x ^ c>`` for public ``c``: party 0 XORs ``c`` into its share. Cost: local."""
    a, b = _pair(x, c)
    return np.bitwise_xor(a, b) if ctx.rank == 0 else np.array(a, dtype=np.uint64)


def and_public(x: U64, c: U64) -> U64:
    """``<x & c>`` for public ``c``: every party ANDs its share with ``c``. Cost: local."""
    a, b = _pair(x, c)
    return np.bitwise_and(a, b)


def or_public(ctx: ProtocolContext, x: U64, c: U64) -> U64:
    """``<x | c> = <x & ~c> ^ c`` for public ``c``. Cost: local."""
    a, b = _pair(x, c)
    return xor_public(ctx, np.bitwise_and(a, np.bitwise_not(b)), b)


def lshift(x: U64, bits: int) -> U64:
    """``<x << bits>`` (logical, mod 2^64): each party shifts its share. Cost: local."""
    return shifted(check_u64("x", x), -_shift_count(bits))


def rshift(x: U64, bits: int) -> U64:
    """``<x >> bits>`` (logical): each party shifts its share. Cost: local."""
    return shifted(check_u64("x", x), _shift_count(bits))


def _shift_count(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 0 <= bits < 64:
        raise RingShapeError(f"shift bits must be an int in [0, 63], got {bits!r}")
    return int(bits)


def shifted(word: U64, pos: int) -> U64:
    """``word >> pos`` for ``pos >= 0``, ``word << -pos`` otherwise (zeros shift in)."""
    if pos >= 0:
        return np.right_shift(word, np.uint64(pos))
    return np.left_shift(word, np.uint64(-pos))


def lane_mask(stride: int) -> np.uint64:
    """The word with ones at bits ``stride * k`` (the lane bases of that stride)."""
    return np.uint64(sum(1 << k for k in range(0, 64, stride)))


def and_many(ctx: ProtocolContext, pairs: Sequence[tuple[U64, U64]]) -> list[U64]:
    """Several independent ``<x_i & y_i>`` in ONE round (one ``"and"`` request for all).

    1. The dealer gives ``<a>, <b>, <c = a & b>`` of the total size (uniform words).
    2. Open ``d = x ^ a`` and ``e = y ^ b`` for every pair together.
    3. ``<z> = <c> ^ (d & <b>) ^ (e & <a>)``, and party 0 also XORs ``d & e``.

    Cost: 1 round; ``2 (N-1) n`` ring elements sent per party for ``n`` words in all; one
    AND triple of ``n`` words (party N-1 receives ``n`` words of corrections).
    Reference: Beaver triples over GF(2)^64 (bit-sliced), as in GMW / CrypTen.
    """
    checked = [_pair(x, y) for x, y in pairs]
    sizes = [x.size for x, _ in checked]
    n = sum(sizes)
    if n == 0:
        return [np.zeros(x.shape, dtype=np.uint64) for x, _ in checked]
    xs = np.concatenate([x.reshape(-1) for x, _ in checked])
    ys = np.concatenate([y.reshape(-1) for _, y in checked])
    triple = ctx.provider.get("and", ((n,),))
    a, b = triple["a"], triple["b"]
    d, e = open_binary(ctx, xs ^ a, ys ^ b)
    z = triple["c"] ^ (d & b) ^ (e & a)
    if ctx.rank == 0:
        z ^= d & e
    out: list[U64] = []
    start = 0
    for (x, _), size in zip(checked, sizes, strict=True):
        out.append(z[start : start + size].reshape(x.shape))
        start += size
    return out


def and_(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """``<x & y>`` (broadcasting); see :func:`and_many`. Cost: 1 round, ``2 (N-1) n`` ring
    elements sent per party, one AND triple of ``n`` words."""
    return and_many(ctx, [(x, y)])[0]


def or_(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """``<x | y> = <x> ^ <y> ^ <x & y>``. Cost: as :func:`and_` (1 round)."""
    a, b = _pair(x, y)
    return a ^ b ^ and_(ctx, a, b)


def open_bits(ctx: ProtocolContext, share: U64, positions: Sequence[int]) -> U64:
    """Open only the bits at ``positions`` of a binary sharing, packed 8 to a byte.

    Returns a public word per element holding those bits (all other bits zero).
    Cost: 1 round; ``(N-1) ceil(n |positions| / 8)`` bytes sent per party (8 bytes per
    element when all 64 bits are opened).
    """
    flat = share.reshape(-1)
    if sorted(positions) == list(range(64)):
        (full,) = open_binary(ctx, flat)
        return full.reshape(share.shape)
    cols = np.array(list(positions), dtype=np.int64)
    packed = ring.gather_bits(np.ascontiguousarray(flat), cols)
    total = np.zeros_like(packed)
    for part in ctx.comm.all_gather(packed):
        if part.dtype != np.uint8 or part.shape != packed.shape:
            raise ProtocolError("a peer sent opened bits of the wrong size or dtype")
        total ^= np.asarray(part, dtype=np.uint8)
    return ring.scatter_bits(total, flat.size, cols).reshape(share.shape)


# -- multi-input gates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    """A factor on dealer bit ``var``: ``scale * s XOR offset`` (binary) or
    ``offset + scale * s`` (arithmetic). ``None`` scale means 1, ``None`` offset means 0.
    Public values are arrays, or symbolic words when a level is compiled."""

    var: Var
    scale: Word | None = None
    offset: Word | None = None


@dataclass(frozen=True)
class Term:
    """``coef * prod(lits)`` (``None`` coef means 1); the lits have distinct variables."""

    lits: tuple[Lit, ...]
    coef: Word | None = None


@dataclass(frozen=True)
class Group:
    """One dealer monomial component: binary words or arithmetic values per lane."""

    form: int
    stride: int
    monos: tuple[Mono, ...]


def carry_terms(gen: Sequence[Lit], eq: Sequence[Lit]) -> tuple[list[Term], list[Term]]:
    """Group generate ``G = g0 + e0 g1 + e0 e1 g2 + ...`` and ``E = e0 e1 ...`` from the
    most significant part down (the terms of ``G`` are mutually exclusive, so ``+`` is
    both XOR and integer addition). Used for carries (``eq`` = propagate) and comparisons."""
    gterms = [Term((*eq[:i], gen[i])) for i in range(len(gen))]
    return gterms, [Term(tuple(eq))]


def monomials_of(terms: Sequence[Term], min_size: int) -> list[Mono]:
    """Every ``U`` that can get a nonzero coefficient, smallest first (static structure:
    a factor with offset 0 must be in ``U``)."""
    found: set[Mono] = set()
    for term in terms:
        forced = [lit.var for lit in term.lits if lit.offset is None]
        optional = [lit.var for lit in term.lits if lit.offset is not None]
        for mask in range(1 << len(optional)):
            chosen = [v for i, v in enumerate(optional) if mask >> i & 1]
            mono = frozenset(forced + chosen)
            if len(mono) >= min_size:
                found.add(mono)
    return sorted(found, key=lambda m: (len(m), sorted(m)))


def _concrete(value: Word | None) -> U64 | None:
    if isinstance(value, Sym):
        raise ProtocolError("symbolic terms are compiled (gate_words), not expanded")
    return value


def expand(terms: Sequence[Term], binary: bool) -> dict[Mono, U64]:
    """Public coefficients ``C_U`` with ``sum_terms = sum_U C_U s_U`` (XOR/AND when
    ``binary``, else + and * mod 2^64). ``C_{}`` is the public constant."""
    one = np.asarray(ONES if binary else np.uint64(1))
    out: dict[Mono, U64] = {}
    for term in terms:
        # multiply out factor by factor: each lit maps U to U (offset) and U + v (scale)
        coef = _concrete(term.coef)
        partial: dict[Mono, U64] = {frozenset(): one if coef is None else coef}
        for lit in term.lits:
            grown: dict[Mono, U64] = {}
            scale, offset = _concrete(lit.scale), _concrete(lit.offset)
            for mono, value in partial.items():
                if offset is not None:
                    grown[mono] = (value & offset) if binary else (value * offset)
                if scale is None:
                    grown[mono | {lit.var}] = value
                else:
                    grown[mono | {lit.var}] = (value & scale) if binary else (value * scale)
            partial = grown
        for mono, value in partial.items():
            if mono in out:
                out[mono] = (out[mono] ^ value) if binary else (out[mono] + value)
            else:
                out[mono] = value
    return out


def request_params(
    n: int, groups: Sequence[Group], with_r: bool, n_masks: int, with_a: bool = False
) -> Params:
    """Parameters of a ``"monomials"`` request (see ``providers.kinds``)."""
    params: list[tuple[int, ...]] = [(n,), (int(with_r), n_masks, int(with_a)), (len(groups),)]
    for group in groups:
        params.append((group.form, group.stride, len(group.monos)))
        params.extend(tuple(encode_ref(*v) for v in sorted(m)) for m in group.monos)
    return tuple(params)


class Monomials:
    """This party's shares of the monomials ``s_U`` of one ``"monomials"`` correlation."""

    def __init__(self, corr: Correlation, groups: Sequence[Group]) -> None:
        self.corr = corr
        self.groups = list(groups)
        self._index = [{m: q for q, m in enumerate(g.monos)} for g in groups]

    def mask(self, src: int) -> U64:
        """The source word (``r`` as binary for 0, ``s_src`` otherwise)."""
        return self.corr["r_bin"] if src == 0 else self.corr[f"s{src}"]

    def share(self, g: int, mono: Mono) -> U64:
        """Share of ``s_U``: a binary word aligned at the lane bases, or arithmetic values of
        shape ``(n, lanes)``."""
        group = self.groups[g]
        if group.form == MONO_BINARY and len(mono) == 1:
            ((kind, src, pos),) = tuple(mono)
            if kind != REF_BIT:
                raise ProtocolError("binary monomials take bit references only")
            return shifted(self.mask(src), pos)
        q = self._index[g][mono]
        values = self.corr[f"m{g}"]
        if group.form == MONO_BINARY:
            return shifted(values[q // group.stride], q % group.stride)
        lanes: U64 = values[q]
        return lanes


def evaluate(ctx: ProtocolContext, coeffs: dict[Mono, U64], mono: Monomials, g: int) -> U64:
    """``[sum_U C_U s_U]`` (arithmetic group) or ``<XOR_U C_U & s_U>`` (binary group); the
    constant ``C_{}`` is added by party 0. Cost: local."""
    binary = mono.groups[g].form != MONO_ARITH
    stored = mono.corr[f"m{g}"].shape
    acc = np.zeros(stored[1:], dtype=np.uint64)
    for u, c in coeffs.items():
        if not u:
            if ctx.rank == 0:
                acc = (acc ^ c) if binary else (acc + c)
            continue
        share = mono.share(g, u)
        acc = (acc ^ (share & c)) if binary else (acc + share * c)
    return acc


_ONE_BINARY = np.array(ONES, dtype=np.uint64)
_ONE_ARITH = np.array(1, dtype=np.uint64)
_ZERO = np.array(0, dtype=np.uint64)


class _TermCompiler:
    """Records :func:`expand` then :func:`evaluate` as one word program. Partial products
    of terms with a common prefix of factors (the carry terms of a comparison share every
    prefix of their ``E`` factors) are computed once. Coefficients may be arrays or
    :class:`~crypten_lite.ring.program.Sym` words; monomial shares are placeholders
    ``("corr", component, row)`` (see :func:`share_key`)."""

    def __init__(self, builder: ProgramBuilder, binary: bool) -> None:
        self.b = builder
        self.binary = binary
        self.one = builder.input(_ONE_BINARY if binary else _ONE_ARITH)
        self._memo: dict[tuple[object, ...], dict[Mono, Reg]] = {}

    def times(self, a: Reg, b: Reg) -> Reg:
        if a == self.one:
            return b
        if b == self.one:
            return a
        return self.b.and_(a, b) if self.binary else self.b.mul(a, b)

    def plus(self, a: Reg | None, b: Reg) -> Reg:
        if a is None:
            return b
        return self.b.xor(a, b) if self.binary else self.b.add(a, b)

    def _factor(self, value: Word | None) -> Reg | None:
        if value is None:
            return None
        return value.reg if isinstance(value, Sym) else self.b.input(value)

    def coefficients(self, terms: Sequence[Term]) -> dict[Mono, Reg]:
        """Registers of the ``C_U`` of :func:`expand`."""
        out: dict[Mono, Reg] = {}
        for term in terms:
            start = self._factor(term.coef)
            key: tuple[object, ...] = (start,)
            first = self.one if start is None else start
            partial = self._memo.setdefault(key, {frozenset(): first})
            for lit in term.lits:
                key = (*key, lit.var, self._factor(lit.scale), self._factor(lit.offset))
                if key not in self._memo:
                    self._memo[key] = self._grow(partial, lit)
                partial = self._memo[key]
            for mono, reg in partial.items():
                out[mono] = self.plus(out.get(mono), reg)
        return out

    def _grow(self, partial: dict[Mono, Reg], lit: Lit) -> dict[Mono, Reg]:
        scale, offset = self._factor(lit.scale), self._factor(lit.offset)
        grown: dict[Mono, Reg] = {}
        for mono, reg in partial.items():
            if offset is not None:
                grown[mono] = self.times(reg, offset)
            grown[mono | {lit.var}] = reg if scale is None else self.times(reg, scale)
        return grown

    def evaluate(
        self, coeffs: dict[Mono, Reg], groups: Sequence[Group], g: int, rank0: bool
    ) -> Reg:
        """Register of :func:`evaluate`'s result."""
        acc: Reg | None = None
        for u, c in coeffs.items():
            if not u:
                if rank0:
                    acc = self.plus(acc, c)
                continue
            key, shift = share_key(groups, g, u)
            acc = self.plus(acc, self.times(self.b.shift(self.b.placeholder(key), shift), c))
        return self.b.input(_ZERO) if acc is None else acc


def share_key(groups: Sequence[Group], g: int, mono: Mono) -> tuple[tuple[str, str, int], int]:
    """``(("corr", component, row), shift)``: this party's share of ``s_U`` is ``shifted(
    component[row], shift)`` (row -1: the whole component; arithmetic groups: one lane)."""
    group = groups[g]
    if group.form == MONO_BINARY and len(mono) == 1:
        ((kind, src, pos),) = tuple(mono)
        if kind != REF_BIT:
            raise ProtocolError("binary monomials take bit references only")
        return ("corr", "r_bin" if src == 0 else f"s{src}", -1), pos
    if group.form == MONO_ARITH and group.stride != 64:
        raise ProtocolError("fused evaluation takes single-lane arithmetic groups")
    q = group.monos.index(mono)
    if group.form == MONO_BINARY:
        return ("corr", f"m{g}", q // group.stride), q % group.stride
    return ("corr", f"m{g}", q), 0


def gate_words(
    builder: ProgramBuilder,
    term_lists: Sequence[Sequence[Term]],
    groups: Sequence[Group],
    g: int,
    rank0: bool,
) -> list[Sym]:
    """Record ``evaluate(expand(terms))`` for every list of terms into ``builder``: one
    word per list (party 0 adds the constants when ``rank0``)."""
    compiler = _TermCompiler(builder, groups[g].form != MONO_ARITH)
    return [
        Sym(builder, compiler.evaluate(compiler.coefficients(ts), groups, g, rank0))
        for ts in term_lists
    ]


def correlation_resolver(
    corr: Correlation, public: dict[str, U64]
) -> Callable[[object], U64]:
    """Placeholder values of a compiled level: ``public[name]`` or a correlation row."""

    def resolve(key: object) -> U64:
        if isinstance(key, str):
            return public[key]
        if not (isinstance(key, tuple) and len(key) == 3 and key[0] == "corr"):
            raise ProtocolError(f"unknown program input {key!r}")
        component: U64 = corr[key[1]]
        return component if key[2] < 0 else component[key[2]].reshape(-1)

    return resolve


def evaluate_fused(
    ctx: ProtocolContext, term_lists: Sequence[Sequence[Term]], mono: Monomials, g: int
) -> list[U64]:
    """``evaluate(ctx, expand(terms), mono, g)`` for every list of terms, as one fused word
    program (:mod:`crypten_lite.ring.program`): the same shares as the two-step path, with
    the elementwise work done in one cached pass per element block. Arithmetic groups must
    have one lane (stride 64); results are flat ``(n,)`` arrays. Cost: local."""
    builder = ProgramBuilder()
    words = gate_words(builder, term_lists, mono.groups, g, ctx.rank == 0)
    compiled = Compiled.of(builder, [w.reg for w in words])
    n = mono.corr[f"m{g}"].shape[1]
    result = compiled.run(correlation_resolver(mono.corr, {}), n)
    return [result[i] for i in range(len(words))]
