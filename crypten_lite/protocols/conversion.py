"""Conversions between arithmetic sharings ``[x]`` (sum mod 2^64) and binary sharings ``<x>``
(XOR of uint64 words, bit ``k`` of the word = bit ``k`` of ``x``).

``a2b`` and ``b2a`` are a symmetric pair: ``b2a(a2b([x])) = [x]`` for every ring element.
Every function works elementwise on arrays of any shape; empty arrays cost nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.protocols.binary import (
    ONES,
    Group,
    Lit,
    Monomials,
    Term,
    and_,
    and_many,
    carry_terms,
    check_u64,
    evaluate,
    expand,
    monomials_of,
    open_bits,
    request_params,
)
from crypten_lite.protocols.context import ProtocolContext, open_arith, open_binary
from crypten_lite.providers.kinds import MONO_ARITH, MONO_BINARY, REF_BIT

__all__ = ["a2b", "b2a", "b2a_bit", "b2a_bits"]

U64 = npt.NDArray[np.uint64]
_WINDOW = 4  # carries of 4-bit windows come from dealer monomials, without a round
_LEVELS = (4, 8, 16)  # Kogge-Stone spans with both generate and propagate; then span 32


def _window_terms(c: U64) -> tuple[list[Term], list[Term]]:
    """Generate/propagate of the window ``[i-3, i]`` at every bit ``i`` of ``c + ~r + 1``.

    Bit ``l`` of ``~r`` gives ``g_l = c_l & ~r_l = c_l r_l ^ c_l`` and
    ``p_l = c_l ^ ~r_l = r_l ^ ~c_l``; the carry-in 1 turns ``g_0`` into
    ``g_0 | p_0 = ~c_0 r_0 ^ 1``. Bit ``i - d`` of ``r`` is variable ``(BIT, 0, -d)``, so the
    public coefficient words are shifted left by ``d`` (zeros below bit 0: no such bit).
    """
    gen_scale, gen_offset, prop_offset = c ^ np.uint64(1), c | np.uint64(1), ~c
    gen, prop = [], []
    for d in range(_WINDOW):
        var = (REF_BIT, 0, -d)
        shift = np.uint64(d)
        gen.append(Lit(var, gen_scale << shift, gen_offset << shift))
        prop.append(Lit(var, np.asarray(ONES << shift), prop_offset << shift))
    return carry_terms(gen, prop)


def _a2b_group() -> Group:
    gen, prop = _window_terms(np.zeros(1, dtype=np.uint64))
    return Group(MONO_BINARY, 1, tuple(monomials_of(gen + prop, 2)))


def a2b(ctx: ProtocolContext, x: U64) -> U64:
    """``<x>`` from ``[x]``: mask, open, and subtract the mask in binary.

    1. The dealer gives ``[r]``, ``<r>`` (uniform) and ``<r_U>``, the ANDs of every subset
       ``U`` of 4 consecutive bits of ``r`` (``"monomials"``, 11 words).
    2. Open ``c = x + r``; then ``x = c - r = c + ~r + 1``: a binary adder of the public
       ``c`` and the shared ``~<r>`` with carry-in 1.
    3. Generate/propagate of every 4-bit window ``[i-3, i]`` are polynomials in the bits of
       ``r`` with public coefficients: local, from ``<r_U>`` (Kogge-Stone spans 1 and 2).
    4. Kogge-Stone spans 4, 8, 16: ``<G> ^= <P> & (<G> << k)``, ``<P> &= <P> << k``
       (both ANDs in one round); span 32: ``<G> ^= <P> & (<G> << 32)``.
    5. ``<x> = <p> ^ (<G> << 1) ^ 1`` with ``p = c ^ ~r`` (party 0 adds the constants).

    Cost: 5 rounds; ``15 (N-1) n`` ring elements sent per party (1 + 3 * 4 + 2 per
    element); one ``"monomials"`` request (party N-1 receives 12 words per element) and four
    AND triples (7 words per element). Reference: Kogge & Stone 1973 (the plain adder with
    AND triples takes 1 + 6 rounds).
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    flat = x.reshape(-1)
    group = _a2b_group()
    corr = ctx.provider.get("monomials", request_params(flat.size, [group], True, 0))
    mono = Monomials(corr, [group])
    (c,) = open_arith(ctx, flat + corr["r"])
    gen_terms, prop_terms = _window_terms(c)
    gen = evaluate(ctx, expand(gen_terms, True), mono, 0)
    prop = evaluate(ctx, expand(prop_terms, True), mono, 0)
    for k in _LEVELS:
        shift = np.uint64(k)
        via, prop = and_many(ctx, [(prop, gen << shift), (prop, prop << shift)])
        gen = gen ^ via
    gen = gen ^ and_(ctx, prop, gen << np.uint64(32))
    out = corr["r_bin"] ^ (gen << np.uint64(1))
    if ctx.rank == 0:
        out = out ^ ~c ^ np.uint64(1)
    return out.reshape(x.shape)


def b2a_bit(ctx: ProtocolContext, x: U64) -> U64:
    """``[x_0]`` (0 or 1) from ``<x>``: converts bit 0 of every word, ignores the others.

    1. The dealer gives a random bit ``s`` as ``[s]`` and ``<s>`` (``"bit"`` kind).
    2. Open ``m = x_0 ^ s`` (only bit 0 travels, 8 elements to a byte).
    3. ``[x_0] = m + (1 - 2m) [s]`` (party 0 adds ``m``).

    Cost: 1 round; ``(N-1) ceil(n / 8)`` bytes sent per party; one ``"bit"`` correlation
    (party N-1 receives 2 words per element).
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    flat = x.reshape(-1)
    bit = ctx.provider.get("bit", ((flat.size,),))
    m = open_bits(ctx, (flat ^ bit["s_bin"]) & np.uint64(1), [0])
    out = (np.uint64(1) - (m << np.uint64(1))) * bit["s_arith"]
    if ctx.rank == 0:
        out = out + m
    return out.reshape(x.shape)


def _bits(ctx: ProtocolContext, flat: U64) -> U64:
    group = Group(MONO_ARITH, 64, tuple(frozenset({(REF_BIT, 1, k)}) for k in range(64)))
    corr = ctx.provider.get("monomials", request_params(flat.size, [group], False, 1))
    (m,) = open_binary(ctx, flat ^ corr["s1"])
    m_bits = (m[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    out: U64 = (np.uint64(1) - (m_bits << np.uint64(1))) * corr["m0"][:, :, 0].T
    if ctx.rank == 0:
        out = out + m_bits
    return out


def b2a_bits(ctx: ProtocolContext, x: U64) -> U64:
    """Bit decomposition: ``[x_k]`` (0 or 1) for all 64 bits, shape ``x.shape + (64,)``.

    1. The dealer gives a uniform ``<s>`` and ``[s_k]`` for every bit ``k`` of ``s``
       (``"monomials"``, 64 arithmetic values per element).
    2. Open ``m = x ^ s``.
    3. ``[x_k] = m_k + (1 - 2 m_k) [s_k]`` (party 0 adds ``m_k``).

    Cost: 1 round; ``(N-1) n`` ring elements sent per party; party N-1 receives 64 words
    per element from the dealer.
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros((*x.shape, 64), dtype=np.uint64)
    return _bits(ctx, x.reshape(-1)).reshape(*x.shape, 64)


def b2a(ctx: ProtocolContext, x: U64) -> U64:
    """``[x]`` from ``<x>`` (all 64 bits): ``[x] = sum_k 2^k [x_k]`` with the ``[x_k]`` of
    :func:`b2a_bits` (steps 1-3 there), i.e. ``m + sum_k 2^k (1 - 2 m_k) [s_k]``.

    Cost: 1 round; ``(N-1) n`` ring elements sent per party; party N-1 receives 64 words
    per element from the dealer. Inverse of :func:`a2b`.
    """
    x = check_u64("x", x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    bits = _bits(ctx, x.reshape(-1)) << np.arange(64, dtype=np.uint64)
    total: U64 = bits.sum(axis=1, dtype=np.uint64)
    return total.reshape(x.shape)
