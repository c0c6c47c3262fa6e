"""Binary (XOR) sharings: gates against numpy, AND costs, the "monomials" correlation."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.errors import ProtocolError, RingDTypeError, RingShapeError
from crypten_lite.protocols import binary
from crypten_lite.providers.engine import layout_of
from crypten_lite.providers.kinds import (
    MONO_ARITH,
    MONO_BINARY,
    REF_A,
    REF_BIT,
    REF_SIGN,
    encode_ref,
)
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import BINARY, reveal, share_from
from tests.helpers import random_u64

PROVIDERS = ["TrustedDealer", "InsecureLocalDealer"]
WORLD_SIZES = [2, 3]


def _share(session, value, kind=BINARY):
    mine = value if session.rank == 0 else None
    return share_from(session.comm, session.zeros, mine, 0, value.shape, kind)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_gates_match_numpy(world_size, provider):
    rng = np.random.default_rng(1)
    x, y = random_u64(rng, (40, 50)), random_u64(rng, (40, 50))
    row, c = random_u64(rng, 50), random_u64(rng, (40, 50))

    def job(session):
        bx, by, brow = _share(session, x), _share(session, y), _share(session, row)
        ands = binary.and_many(session, [(bx, by), (bx, brow), (by[:3], bx[:3])])
        got = {
            "and": binary.and_(session, bx, by),
            "and_bcast": ands[1],
            "and_many0": ands[0],
            "and_many2": ands[2],
            "or": binary.or_(session, bx, by),
            "xor": binary.xor(bx, by),
            "not": binary.not_(session, bx),
            "xor_public": binary.xor_public(session, bx, c),
            "and_public": binary.and_public(bx, c),
            "or_public": binary.or_public(session, bx, c),
            "lshift": binary.lshift(bx, 13),
            "rshift": binary.rshift(bx, 63),
        }
        return {k: reveal(session.comm, v, kind=BINARY) for k, v in got.items()}

    want = {
        "and": x & y,
        "and_bcast": x & row,
        "and_many0": x & y,
        "and_many2": y[:3] & x[:3],
        "or": x | y,
        "xor": x ^ y,
        "not": ~x,
        "xor_public": x ^ c,
        "and_public": x & c,
        "or_public": x | c,
        "lshift": x << np.uint64(13),
        "rshift": x >> np.uint64(63),
    }
    for result in run_parties(job, world_size, provider=provider):
        for name, value in want.items():
            np.testing.assert_array_equal(result[name], value, err_msg=name)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_and_costs_one_round(world_size, provider):
    n = 1000
    x = random_u64(np.random.default_rng(2), n)

    def job(session):
        bx = _share(session, x)
        session.stats.reset()
        binary.and_(session, bx, bx)
        one = session.stats.snapshot()
        session.stats.reset()
        binary.and_many(session, [(bx, bx), (bx[:300], bx[:300])])
        many = session.stats.snapshot()
        session.stats.reset()
        binary.xor(bx, bx), binary.not_(session, bx), binary.lshift(bx, 3)
        return one, many, session.stats.snapshot()

    results = run_parties(job, world_size, provider=provider)
    for one, many, local in results:
        assert (one.rounds, many.rounds, local.rounds, local.bytes_sent) == (1, 1, 0, 0)
    one, many, _ = results[0]
    assert one.bytes_sent == (world_size - 1) * 2 * 8 * n
    assert many.bytes_sent == (world_size - 1) * 2 * 8 * (n + 300)


def test_open_bits_sends_only_the_named_bits():
    x = random_u64(np.random.default_rng(3), 1001)
    positions = [0, 5, 17, 63, 40]

    def job(session):
        share = _share(session, x)
        session.stats.reset()
        out = binary.open_bits(session, share, positions)
        return out, session.stats.snapshot()

    mask = np.uint64(sum(1 << p for p in positions))
    for out, stats in run_parties(job, 3, provider="InsecureLocalDealer"):
        np.testing.assert_array_equal(out, x & mask)
        assert stats.rounds == 1 and stats.bytes_sent == 2 * -(-1001 * 5 // 8)


def _monomial_params(n):
    bits = [(REF_BIT, 0, 0), (REF_BIT, 0, 1)], [(REF_BIT, 1, 2), (REF_BIT, 0, -1)]
    arith = [
        [(REF_BIT, 1, 63)],
        [(REF_SIGN, 0, 5), (REF_BIT, 2, 7)],
        [(REF_A, 0, 0), (REF_BIT, 0, 40), (REF_SIGN, 1, 62)],
    ]
    groups = [(MONO_BINARY, 4, bits), (MONO_ARITH, 32, arith)]
    params = [(n,), (1, 2, 1), (len(groups),)]
    for form, stride, monos in groups:
        params.append((form, stride, len(monos)))
        params.extend(tuple(encode_ref(*ref) for ref in m) for m in monos)
    return tuple(params)


def _bit(word, pos):
    if pos < 0:
        return (word << np.uint64(-pos)) & np.uint64(1)
    return (word >> np.uint64(pos)) & np.uint64(1)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_monomials_correlation(world_size, provider):
    n = 500
    params = _monomial_params(n)

    def job(session):
        corr = session.provider.get("monomials", params)
        arith = ["r", "a", "m1"]
        out = {k: reveal(session.comm, corr[k]) for k in arith}
        out.update(
            {k: reveal(session.comm, corr[k], kind=BINARY) for k in ["r_bin", "s1", "s2", "m0"]}
        )
        return out

    v = run_parties(job, world_size, provider=provider)[0]
    r, s1, s2, a = v["r"], v["s1"], v["s2"], v["a"]
    np.testing.assert_array_equal(v["r_bin"], r)
    lanes4 = binary.lane_mask(4)
    np.testing.assert_array_equal(v["m0"][0] & lanes4, r & (r >> np.uint64(1)) & lanes4)
    np.testing.assert_array_equal(
        (v["m0"][0] >> np.uint64(1)) & lanes4, (s1 >> np.uint64(2)) & (r << np.uint64(1)) & lanes4
    )
    assert v["m1"].shape == (3, n, 2)
    for lane in range(2):
        base = 32 * lane
        top = _bit(s1, 63) if lane == 0 else np.zeros(n, np.uint64)  # bit 95 reads as 0
        np.testing.assert_array_equal(v["m1"][0, :, lane], top)
        sign = np.uint64(1) - np.uint64(2) * _bit(r, base + 5)
        np.testing.assert_array_equal(v["m1"][1, :, lane], sign * _bit(s2, base + 7))
        sign = np.uint64(1) - np.uint64(2) * _bit(s1, base + 62) if lane == 0 else np.uint64(1)
        np.testing.assert_array_equal(v["m1"][2, :, lane], a * _bit(r, base + 40) * sign)


def _bad(params, index, value):
    out = list(params)
    out[index] = value
    return tuple(out)


@pytest.mark.parametrize(
    "params",
    [
        _bad(_monomial_params(4), 1, (1, 9, 1)),  # too many masks
        _bad(_monomial_params(4), 3, (MONO_BINARY, 3, 2)),  # stride not a power of two
        _bad(_monomial_params(4), 3, (MONO_BINARY, 4, 3)),  # group longer than the params
        _bad(_monomial_params(4), 4, (encode_ref(REF_SIGN, 0, 1),)),  # sign in a binary group
        _bad(_monomial_params(4), 4, (encode_ref(REF_BIT, 3, 1),)),  # no such mask
        _bad(_monomial_params(4), 4, (encode_ref(REF_BIT, 0, 64),)),  # offset out of range
        _bad(_monomial_params(4), 4, ()),  # empty monomial
        _bad(_monomial_params(4), 0, (2, 2)),  # shape must be 1-D
        (*_monomial_params(4), (1,)),  # trailing parameters
    ],
)
def test_malformed_monomial_requests_are_refused(params):
    with pytest.raises(ProtocolError):
        layout_of("monomials", params)


def test_invalid_arguments_name_the_problem():
    def job(session):
        x = np.zeros(4, dtype=np.uint64)
        with pytest.raises(RingDTypeError, match="x must be"):
            binary.and_(session, np.zeros(4), x)
        with pytest.raises(RingShapeError, match="do not broadcast"):
            binary.and_(session, x, np.zeros(3, dtype=np.uint64))
        with pytest.raises(RingShapeError, match="shift bits"):
            binary.lshift(x, 64)
        empty = binary.and_(session, x[:0], x[:0])
        return empty.shape, session.stats.rounds

    assert run_parties(job, 2) == [((0,), 0)] * 2
    with pytest.raises(PartyFailure, match="RingDTypeError"):
        run_parties(lambda s: binary.xor(np.zeros(2, np.int64), np.zeros(2, np.uint64)), 2)


class _Rank:
    def __init__(self, rank: int) -> None:
        self.rank = rank


@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("with_a", [False, True])
def test_fused_evaluation_gives_the_two_step_shares(rank, with_a):
    """The fused word program and expand-then-evaluate give the same share words."""
    from crypten_lite.protocols import comparison as cmp

    rng = np.random.default_rng(5 + rank)
    n = 300
    groups = cmp._groups(True, with_a)
    words = lambda *shape: rng.integers(0, 2**64, size=shape, dtype=np.uint64)  # noqa: E731
    corr = {"r_bin": words(n), "s1": words(n), "s2": words(n), "a": words(n)}
    for g, group in enumerate(groups):
        count = len(group.monos)
        if group.form == MONO_BINARY:
            corr[f"m{g}"] = words(-(-count // group.stride), n)
        else:
            corr[f"m{g}"] = words(count, n, 64 // group.stride)
    mono = binary.Monomials(corr, groups)  # type: ignore[arg-type]
    ctx = _Rank(rank)
    c, m2, m3 = words(n), words(n), words(n)
    cases = [
        (0, list(cmp._window_terms(c, cmp._LOW_BITS_ONLY))),
        (1, cmp._tree_terms(m2, 1, 4, True, False)),
        (2, [cmp._final_terms(m3, c, with_a)]),
    ]
    for g, term_lists in cases:
        fused = binary.evaluate_fused(ctx, term_lists, mono, g)  # type: ignore[arg-type]
        for ts, got in zip(term_lists, fused, strict=True):
            want = binary.evaluate(ctx, binary.expand(ts, g < 2), mono, g)  # type: ignore[arg-type]
            np.testing.assert_array_equal(got, want.reshape(-1))
