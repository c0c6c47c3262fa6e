"""Comparisons of arithmetic sharings with zero in 3 or 4 rounds (CrypTen: 8 for lt, 9 for
relu), for every ring element.

Results are arithmetic sharings of the integers 0/1 (NOT fixed-point encoded): multiply a
fixed-point sharing by them without truncation. The tensor layer builds on these:
``lt(x, y) = ltz(x - y)``, ``gt(x, y) = ltz(y - x)``, ``ge = 1 - lt``, ``eq(x, y) =
eqz(x - y)``, ``relu(x) = x [x > 0]`` and its mask from one :func:`select_ltz` (4 rounds;
the fused :func:`mul_ltz` takes 3 at 6x the dealer traffic), ``max(x, y) = y + relu(x - y)``.

Idea (every function): open ``c = x + r`` for a dealer mask ``r`` whose bits the dealer also
knows, and compare ``r`` with the public ``c`` by a tree of 4-input gates:
- level 1 (4-bit windows, 16 per element) is local: the window's generate ``G`` ("r greater")
  and equal ``E`` are polynomials in ``r``'s bits with public coefficients, and the dealer
  provides the ANDs of every subset of a window's bits;
- level 2 (4 windows -> 4 groups) and level 3 (4 groups -> 1) each open their inputs masked
  by fresh dealer bits and evaluate the gate as a polynomial in those bits (``binary``
  module); in :func:`ltz`, :func:`eqz` and :func:`mul_ltz` level 3 uses arithmetic
  monomials, so the result comes out arithmetic in 3 rounds; :func:`select_ltz` (and
  ``ltz`` with ``rounds=4``) evaluates it in binary (one dealer word instead of 24) and
  injects the bit with one more 1-bit opening.
Each level between two openings is one word program (``ring.program``), recorded once per
function, level and party role from the same term builders run on symbolic words
(:func:`_level_program`), and bit-sliced within an element's word (16 window lanes at
level 1, 4 group lanes at level 2). All openings are of uniformly masked values; each call
uses fresh correlations.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import numpy.typing as npt

from crypten_lite.config import ComparisonRounds
from crypten_lite.errors import ProtocolError, RingShapeError
from crypten_lite.protocols.binary import (
    Group,
    Lit,
    Term,
    Var,
    Word,
    carry_terms,
    check_u64,
    correlation_resolver,
    gate_words,
    lane_mask,
    monomials_of,
    open_bits,
    request_params,
)
from crypten_lite.protocols.context import ProtocolContext, open_arith
from crypten_lite.providers.kinds import (
    MONO_ARITH,
    MONO_BINARY,
    REF_A,
    REF_BIT,
    REF_SIGN,
    Params,
)
from crypten_lite.ring.program import Compiled, ProgramBuilder, Sym

__all__ = ["eqz", "ltz", "mul_ltz", "relu", "relu_bit", "select_ltz"]

U64 = npt.NDArray[np.uint64]
_TOP = 63
_NO_BITS = np.uint64(0)
_LOW_BITS_ONLY = np.uint64(1 << _TOP)  # ltz ignores bit 63 of the comparison
_LANES = (lane_mask(4), lane_mask(16))
_L2_GT = tuple(p for j in range(16) for p in (4 * j, 4 * j + 1))
_L3_GT = tuple(p for k in range(4) for p in (16 * k, 16 * k + 1) if p != 1)  # E_0 unused
_L2_EQ = tuple(4 * j for j in range(16))
_L3_EQ = tuple(16 * k for k in range(4))
_U: Var = (REF_BIT, 0, _TOP)  # u = bit 63 of r
_W: Var = (REF_SIGN, 0, _TOP)  # w = 1 - 2u
_A: Var = (REF_A, 0, 0)  # the mask of y in mul_ltz
_T: Var = (REF_BIT, 3, 0)  # the mask of the result bit in select_ltz


def _window_terms(t: Word, ignore: np.uint64) -> tuple[list[Term], list[Term]]:
    """Level 1, lanes at bits 4j: ``G = [r_w > t_w]`` and ``E = [r_w == t_w]`` of each 4-bit
    window, from the most significant bit down. Bit ``l`` of the window is variable
    ``(BIT, 0, l)``; ``g_l = r_l & ~t_l`` and ``e_l = r_l ^ ~t_l``; bits set in ``ignore``
    count as equal (``g = 0``, ``e = 1``)."""
    gen, eq = [], []
    for bit in range(3, -1, -1):
        shift = np.uint64(bit)
        t_l, z_l = t >> shift, np.asarray(ignore >> shift)
        gen.append(Lit((REF_BIT, 0, bit), ~t_l & ~z_l, None))
        eq.append(Lit((REF_BIT, 0, bit), ~z_l, ~t_l | z_l))
    return carry_terms(gen, eq)


def _opened_lit(var: Var, m: Word, arith: bool) -> Lit:
    """``y = m ^ s`` for opened ``m``: binary ``s ^ m``; arithmetic ``m + (1 - 2m) s``
    (per lane values of shape ``(n, 1)``)."""
    bit = m >> np.uint64(var[2])
    if not arith:
        return Lit(var, None, bit)
    b = (bit & np.uint64(1))[:, None]
    return Lit(var, np.uint64(1) - (b << np.uint64(1)), b)


def _tree_terms(m: Word, src: int, spacing: int, gt: bool, arith: bool) -> list[list[Term]]:
    """A 4-input level over lanes holding 4 groups at ``spacing`` bits: generate at offset 0
    and equal at offset 1 of each group (``gt``), or equal only, at offset 0. Returns
    ``[G terms, E terms]`` or ``[E terms]``."""
    offsets = range(3 * spacing, -1, -spacing)
    if not gt:
        eq = [_opened_lit((REF_BIT, src, o), m, arith) for o in offsets]
        return [[Term(tuple(eq))]]
    gen = [_opened_lit((REF_BIT, src, o), m, arith) for o in offsets]
    eq = [_opened_lit((REF_BIT, src, o + 1), m, arith) for o in offsets]
    return list(carry_terms(gen, eq))


def _final_terms(m: Word, c: Word, with_a: bool) -> list[Term]:
    """``ltz = c63 + (1 - 2 c63)(u + w B)`` with ``B = [r mod 2^63 > c mod 2^63]`` from the
    level-3 inputs; times ``a`` as well when ``with_a``."""
    c63 = (c >> np.uint64(_TOP))[:, None]
    k = np.uint64(1) - (c63 << np.uint64(1))
    gen_terms = _tree_terms(m, 2, 16, True, True)[0]
    terms = [Term((), c63), Term((Lit(_U),), k)]
    terms += [Term((Lit(_W), *t.lits), k) for t in gen_terms]
    if with_a:
        terms += [Term((Lit(_A), *t.lits), t.coef) for t in terms]
    return terms


def _groups(gt: bool, with_a: bool) -> list[Group]:
    """The dealer monomials each function needs (static: from the terms' structure)."""
    word, col = np.zeros(1, dtype=np.uint64), np.zeros(1, dtype=np.uint64)
    level1 = _window_terms(word, _LOW_BITS_ONLY if gt else _NO_BITS)
    level2 = _tree_terms(word, 1, 4, gt, False)
    if gt:
        level3 = _final_terms(col, col, with_a)
    else:
        level3 = _tree_terms(col, 2, 16, False, True)[0]
    return [
        Group(MONO_BINARY, 4, tuple(monomials_of(level1[0] + level1[1], 2))),
        Group(MONO_BINARY, 16, tuple(monomials_of([t for ts in level2 for t in ts], 2))),
        Group(MONO_ARITH, 64, tuple(monomials_of(level3, 1))),
    ]


def _select_groups(with_a: bool) -> list[Group]:
    """ltz's first two levels, the last gate in binary, and ``[t]`` (and ``[a t]``)."""
    col = np.zeros(1, dtype=np.uint64)
    last = _tree_terms(col, 2, 16, True, False)[0]
    injected = (frozenset({_T}), frozenset({_A, _T})) if with_a else (frozenset({_T}),)
    return [
        *_groups(True, False)[:2],
        Group(MONO_BINARY, 64, tuple(monomials_of(last, 2))),
        Group(MONO_ARITH, 64, injected),
    ]


Fn = Literal["ltz", "eqz", "mul_ltz", "select", "ltz4"]
_OPENED = {1: "m2", 2: "m3", 3: "d"}


@functools.cache
def _groups_for(fn: Fn) -> tuple[Group, ...]:
    if fn in ("select", "ltz4"):
        return tuple(_select_groups(fn == "select"))
    return tuple(_groups(fn != "eqz", fn == "mul_ltz"))


@functools.cache
def _params_tail(fn: Fn) -> Params:
    with_a = fn in ("mul_ltz", "select")
    masks = 3 if fn in ("select", "ltz4") else 2
    return request_params(0, _groups_for(fn), True, masks, with_a)[1:]


def _packed(
    b: ProgramBuilder, terms: list[list[Term]], groups: tuple[Group, ...], g: int, rank0: bool
) -> Sym:
    """A binary level's outputs at the lane bases: ``G``, and ``E`` one bit up (or ``E``
    alone)."""
    outs = [w & _LANES[g] for w in gate_words(b, terms, groups, g, rank0)]
    return outs[0] if len(outs) == 1 else outs[0] | (outs[1] << np.uint64(1))


class _Inputs:
    """Placeholders created on first use: public words by name, or whole correlation
    components (``("corr", name, -1)``)."""

    def __init__(self, builder: ProgramBuilder, source: str | None) -> None:
        self._b = builder
        self._source = source

    def __getitem__(self, name: str) -> Sym:
        key = name if self._source is None else (self._source, name, -1)
        return Sym(self._b, self._b.placeholder(key))


@functools.cache
def _level_program(fn: Fn, level: int, rank0: bool) -> Compiled:
    """The local work between two openings of ``fn``, recorded once per function, level
    and party role (party 0 adds the public constants): level 1 from ``c``, level 2 from
    ``m2`` (each ending with the next opening's mask), level 3 from ``m3``, and for
    ``select`` level 4 from ``d``."""
    b = ProgramBuilder()
    groups, gt = _groups_for(fn), fn != "eqz"
    word, corr = _Inputs(b, None), _Inputs(b, "corr")
    if level == 1:
        first = _window_terms(word["c"], _LOW_BITS_ONLY if gt else _NO_BITS)
        outs = [_packed(b, list(first) if gt else [first[1]], groups, 0, rank0) ^ corr["s1"]]
    elif level == 2:
        second = _tree_terms(word["m2"], 1, 4, gt, False)
        outs = [_packed(b, second, groups, 1, rank0) ^ corr["s2"]]
    elif level == 3:
        outs = _last_gate(b, fn, word, corr, rank0)
    else:
        t = Sym(b, b.placeholder(("corr", "m3", 0)))
        d = word["d"]
        flip = np.uint64(1) - (d << np.uint64(1))  # 1 - 2d
        bit = flip * t
        outs = [(bit + d) if rank0 else bit]
        if fn == "select":
            at = Sym(b, b.placeholder(("corr", "m3", 1)))
            outs.insert(0, flip * (word["e"] * t + at) + d * word["y"])
    return Compiled.of(b, [w.reg for w in outs])


def _last_gate(b: ProgramBuilder, fn: Fn, word: _Inputs, corr: _Inputs, rank0: bool) -> list[Sym]:
    """Level 3: the last 4-input gate (arithmetic result, or for ``select`` the binary bit
    masked for its opening)."""
    groups, m, c = _groups_for(fn), word["m3"], word["c"]
    if fn == "eqz":
        return gate_words(b, [_tree_terms(m, 2, 16, False, True)[0]], groups, 2, rank0)
    if fn == "ltz":
        return gate_words(b, [_final_terms(m, c, False)], groups, 2, rank0)
    if fn == "mul_ltz":
        terms = _final_terms(m, c, True)
        half = len(terms) // 2
        f, af = gate_words(b, [terms[:half], terms[half:]], groups, 2, rank0)
        return [word["e"] * f + af]
    (borrow,) = gate_words(b, [_tree_terms(m, 2, 16, True, False)[0]], groups, 2, rank0)
    bit = borrow ^ (corr["r_bin"] >> np.uint64(_TOP))  # <B ^ u>
    if rank0:
        bit = bit ^ (c >> np.uint64(_TOP))
    return [(bit ^ corr["s3"]) & np.uint64(1)]


def _positions(fn: Fn, level: int) -> tuple[int, ...]:
    if level == 3:
        return (0,)
    if fn == "eqz":
        return _L2_EQ if level == 1 else _L3_EQ
    return _L2_GT if level == 1 else _L3_GT


def _compare(ctx: ProtocolContext, fn: Fn, x: U64, y: U64 | None) -> list[U64]:
    """Shared body of every function here on flat arrays: one ``"monomials"`` request, the
    opening of ``c`` (and ``e``), then each level's compiled program and opening."""
    n = x.size
    corr = ctx.provider.get("monomials", ((n,), *_params_tail(fn)))
    public: dict[str, U64] = {}
    if y is None:
        (public["c"],) = open_arith(ctx, x + corr["r"])
    else:
        public["c"], public["e"] = open_arith(ctx, x + corr["r"], y - corr["a"])
        public["y"] = y
    resolve = correlation_resolver(corr, public)
    rank0 = ctx.rank == 0
    levels = 4 if fn in ("select", "ltz4") else 3
    for level in range(1, levels + 1):
        out = _level_program(fn, level, rank0).run(resolve, n)
        if level == levels:
            return list(out)
        public[_OPENED[level]] = open_bits(ctx, out[0], _positions(fn, level))
    raise ProtocolError("unreachable")  # pragma: no cover


def select_ltz(ctx: ProtocolContext, x: U64, y: U64) -> tuple[U64, U64]:
    """``([y (x < 0)], [x < 0])`` (the bit an integer 0/1 sharing) in 4 rounds, for every
    ring element ``x``: relu, max, pooling and their gradients' routing bits.

    1. The dealer gives ltz's masks and window/level-2 monomials, the last gate's
       monomials in BINARY (one word), a uniform ``[a]``, a bit ``<t>`` (``s3``) and
       ``[t]``, ``[a t]`` (``"monomials"`` kind).
    2. Round 1: open ``c = x + r`` and ``e = y - a``. Rounds 2-3: as :func:`ltz`.
    3. The last gate gives ``<b> = <c63 ^ u ^ B>`` (binary, local). Round 4: open the bit
       ``d = b ^ t``; then ``b = d + (1 - 2d) t`` and ``y b = d [y] + (1 - 2d)(e [t] + [a t])``.

    What each party sees: ``c``, ``e`` (masked by uniform ring elements), the level bits and
    ``d`` (each XOR-masked by a fresh uniform dealer bit): nothing about ``x`` or ``y``.
    Cost: 4 rounds; ``(N-1)(16n + 4n + ceil(7n / 8) + ceil(n / 8))`` bytes sent per party
    (about 21 per element); party N-1 receives 9 words per element (r_bin, 3 + 2 + 1
    binary, [t], [a t]) where ltz then a Beaver product take 31. CrypTen: relu 9 rounds.
    """
    x, y = check_u64("x", x), check_u64("y", y)
    if x.shape != y.shape:
        raise RingShapeError(f"select_ltz needs x and y of one shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64), np.zeros(x.shape, dtype=np.uint64)
    yb, b = _compare(ctx, "select", x.reshape(-1), y.reshape(-1))
    return yb.reshape(x.shape), b.reshape(x.shape)


def _ltz4(ctx: ProtocolContext, x: U64) -> U64:
    """:func:`ltz` in 4 rounds with 8 dealer words per element: the levels of
    :func:`select_ltz` without its product (``SessionConfig(comparison_rounds=4)``)."""
    return _compare(ctx, "ltz4", x, None)[0]


def ltz(ctx: ProtocolContext, x: U64, rounds: ComparisonRounds | None = None) -> U64:
    """``[x < 0]`` (0/1 integer) for the signed view of ``x``: EVERY ring element, no range
    restriction (``-2^63 <= x < 2^63``).

    1. The dealer gives ``[r]``, ``<r>``, the window ANDs ``<r_U>`` (``U`` within a 4-bit
       window), masks ``<s1>``, ``<s2>`` and their monomials (``"monomials"`` kind).
    2. Open ``c = x + r``. ``msb(x) = c63 ^ u ^ B`` with ``u = r63`` and
       ``B = [r mod 2^63 > c mod 2^63]`` (the borrow into bit 63 of ``c - r``).
    3. Level 1, local: ``<G_j>, <E_j>`` of the 16 windows of ``r`` against ``c``.
    4. Open ``m2 = (G, E) ^ s1`` (32 bits); 4-input gates give ``<G'_k>, <E'_k>`` of the 4
       groups of 16 bits: ``G' = G3 + E3 G2 + E3 E2 G1 + E3 E2 E1 G0``, ``E' = E3 E2 E1 E0``.
    5. Open ``m3 = (G', E') ^ s2`` (7 bits); the last gate in Z_2^64 gives
       ``[ltz] = c63 + (1 - 2 c63)([u] + [w B])`` with ``w = 1 - 2u``, expanded over
       arithmetic monomials of ``s2``'s bits and ``w``.

    Cost: 3 rounds; ``(N-1) (8n + 4n + ceil(7n / 8))`` bytes sent per party (about 1.6 ring
    elements per element); one ``"monomials"`` request: party N-1 receives 30 words per
    element (1 + 3 + 2 binary, 24 arithmetic). CrypTen: 8 rounds.
    With ``rounds=4`` (default: ``SessionConfig.comparison_rounds``): the last gate in
    binary and the bit injected as in :func:`select_ltz`: 4 rounds,
    ``(N-1)(12n + ceil(7n/8) + ceil(n/8))`` bytes, 8 dealer words per element.
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    if (ctx.config.comparison_rounds if rounds is None else rounds) == 4:
        return _ltz4(ctx, x.reshape(-1)).reshape(x.shape)
    return _compare(ctx, "ltz", x.reshape(-1), None)[0].reshape(x.shape)


def mul_ltz(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """``[y * (x < 0)]`` in the rounds of :func:`ltz` alone (fused Beaver product).

    1. As :func:`ltz`, plus a uniform ``[a]`` and ``[a s_U]`` for every final monomial.
    2. Open ``e = y - a`` together with ``c = x + r`` (same round).
    3. Steps 3-5 of :func:`ltz` give ``[f]``, ``f = ltz(x)``, and ``[a f]`` from the same
       public coefficients; ``[y f] = e [f] + [a f]``.

    Cost: 3 rounds; ``(N-1) (16n + 4n + ceil(7n / 8))`` bytes sent per party; party N-1
    receives 55 words per element. ``x`` and ``y`` must have the same shape.
    """
    x, y = check_u64("x", x), check_u64("y", y)
    if x.shape != y.shape:
        raise RingShapeError(f"mul_ltz needs x and y of one shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    return _compare(ctx, "mul_ltz", x.reshape(-1), y.reshape(-1))[0].reshape(x.shape)


def relu_bit(ctx: ProtocolContext, x: U64) -> U64:
    """``[x >= 0] = 1 - [x < 0]`` (:func:`ltz`; party 0 adds the 1), the derivative of relu.
    Cost: as :func:`ltz` (3 rounds)."""
    out = -ltz(ctx, x)
    if ctx.rank == 0:
        out = out + np.uint64(1)
    return out


def relu(ctx: ProtocolContext, x: U64) -> U64:
    """``[max(x, 0)]`` for the signed view = ``[x] - [x (x < 0)]`` (:func:`mul_ltz`).
    Works on any encoding (no truncation). Cost: as :func:`mul_ltz` (3 rounds)."""
    x = check_u64("x", x)
    return x - mul_ltz(ctx, x, x)


def eqz(ctx: ProtocolContext, x: U64) -> U64:
    """``[x == 0]`` (0/1 integer), for every ring element.

    1. The dealer gives ``[r]``, ``<r>``, window ANDs of ``r``, masks ``<s1>``, ``<s2>``
       and their monomials.
    2. Open ``c = x + r``; ``x == 0`` iff ``r == c``.
    3. Level 1, local: ``<E_j> = [r_w == c_w]`` for the 16 windows (products of
       ``r_l ^ ~c_l``).
    4. Open ``m2 = E ^ s1`` (16 bits); ``<E'_k> = E3 E2 E1 E0`` per group of 4 windows.
    5. Open ``m3 = E' ^ s2`` (4 bits); ``[E] = [E'3 E'2 E'1 E'0]`` over arithmetic monomials.

    Cost: 3 rounds; ``(N-1) (8n + 2n + ceil(n / 2))`` bytes sent per party; party N-1
    receives 20 words per element (1 + 3 + 1 binary, 15 arithmetic).
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    return _compare(ctx, "eqz", x.reshape(-1), None)[0].reshape(x.shape)
