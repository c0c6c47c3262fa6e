"""Correlated randomness from the trusted dealer and the insecure local dealer."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite import ring
from crypten_lite.errors import ProtocolError
from crypten_lite.providers.engine import layout_of
from crypten_lite.providers.kinds import decode_request, encode_request
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import reveal

PROVIDERS = ["TrustedDealer", "InsecureLocalDealer"]
CONV_PARAMS = ((2, 4, 6, 5), (6, 2, 3, 3), (1, 2), (1, 0), (1, 1), (2,))


def _reveal_all(session, correlation, names, kind="arithmetic"):
    return {n: reveal(session.comm, correlation[n], kind=kind) for n in names}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", [2, 3])
def test_bilinear_triples_are_correct(provider, world_size):
    def job(session):
        out = []
        for kind, params, op in [
            ("mul", ((3, 4), (4,)), ring.mul),
            ("matmul", ((3, 5), (5, 2)), ring.matmul),
            ("conv", CONV_PARAMS, lambda a, b: ring.conv2d(a, b, (1, 2), (1, 0), 1, 2)),
        ]:
            v = _reveal_all(session, session.provider.get(kind, params), "abc")
            out.append(bool(np.array_equal(op(v["a"], v["b"]), v["c"])))
        return out

    assert run_parties(job, world_size, provider=provider) == [[True] * 3] * world_size


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", [2, 3])
def test_binary_truncation_bit_and_mask_correlations(provider, world_size):
    def job(session):
        p = session.provider
        t = _reveal_all(session, p.get("and", ((50,),)), "abc", kind="binary")
        tr = _reveal_all(session, p.get("trunc", ((50,), (16,))), ["r", "r_shifted", "r_msb"])
        bit = p.get("bit", ((200,),))
        s_a = reveal(session.comm, bit["s_arith"])
        s_b = reveal(session.comm, bit["s_bin"], kind="binary")
        mask = p.get("mask", ((50,),))
        r = reveal(session.comm, mask["r"])
        r_b = reveal(session.comm, mask["r_bin"], kind="binary")
        return (
            bool(np.array_equal(t["a"] & t["b"], t["c"])),
            bool(np.array_equal(tr["r"] >> np.uint64(16), tr["r_shifted"])),
            bool(np.array_equal(tr["r"] >> np.uint64(63), tr["r_msb"])),
            bool(np.array_equal(s_a, s_b) and set(np.unique(s_a)) <= {0, 1}),
            0 < int(s_a.sum()) < 200,
            bool(np.array_equal(r, r_b)),
        )

    for result in run_parties(job, world_size, provider=provider):
        assert result == (True,) * 6


def test_only_the_last_party_talks_to_the_dealer_and_it_overlaps():
    def job(session):
        session.stats.reset()
        corr = session.provider.get("mul", ((1000,), (1000,)))
        _ = corr["c"]
        return session.stats.snapshot()

    stats = run_parties(job, 3, provider="TrustedDealer")
    assert stats[0].bytes_sent == stats[1].bytes_sent == 0
    assert stats[2].bytes_received == 1000 * 8  # the correction of c only
    assert all(s.rounds == 0 for s in stats)


def test_shares_differ_between_parties_and_look_uniform():
    def job(session):
        return session.provider.get("mul", ((20000,), (20000,)))["c"]

    shares = run_parties(job, 2)
    assert not np.array_equal(shares[0], shares[1])
    for share in shares:
        top_bits = (share >> np.uint64(63)).mean()
        assert 0.48 < top_bits < 0.52


def test_request_encoding_roundtrip_and_malformed_requests():
    params = ((2, 3), (3, 4))
    assert decode_request(encode_request("matmul", params)) == ("matmul", params)
    for bad in [
        np.array([], dtype=np.int64),
        np.array([999], dtype=np.int64),
        np.array([1, 5, 1], dtype=np.int64),
        np.array([1.0]),
        np.array([1, 1, -4], dtype=np.int64),
    ]:
        with pytest.raises(ProtocolError, match="malformed"):
            decode_request(bad)
    with pytest.raises(ProtocolError):
        layout_of("mul", ((2,),))
    with pytest.raises(ProtocolError, match="exceeds"):
        layout_of("mul", ((1 << 20, 1 << 10), (1,)))


def test_a_malformed_request_fails_the_job_with_a_clear_error():
    def job(session):
        if session.rank == session.world_size - 1:
            session.comm.send(session.comm.dealer_rank, np.array([999], dtype=np.int64))
            session.comm.recv(session.comm.dealer_rank)
        return None

    with pytest.raises(PartyFailure, match="unknown kind code"):
        run_parties(job, 2, timeout_s=10)


@pytest.mark.parametrize("n", [257, 50_000])
@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("fn", ["ltz", "select", "mul_ltz", "eqz", "ltz4"])
def test_fused_monomial_reply_equals_derive_then_complete(monkeypatch, parties, fn, n):
    """The one-pass reply of a "monomials" request (derived rows completed against the
    other parties' draws in one program, part by part for a large reply) is the reply of
    derive-then-subtract, word for word."""
    import dataclasses

    from crypten_lite.protocols import comparison
    from crypten_lite.providers import kinds
    from crypten_lite.providers.engine import DealerEngine
    from crypten_lite.ring.prg import AesCtrPrg

    params = ((n,), *comparison._params_tail(fn))

    def engine() -> DealerEngine:
        streams = [AesCtrPrg.from_seed(bytes([k]) * 32) for k in range(parties)]
        return DealerEngine(streams, AesCtrPrg.from_seed(b"p" * 32))

    fused = engine().corrections_flat("monomials", params)
    spec = dataclasses.replace(kinds.KINDS["monomials"], corrections=None)
    monkeypatch.setitem(kinds.KINDS, "monomials", spec)
    np.testing.assert_array_equal(fused, engine().corrections_flat("monomials", params))


@pytest.mark.parametrize("provider", ["TrustedDealer", "InsecureLocalDealer"])
def test_replies_in_parts_settle_out_of_order_reads(provider):
    """A large reply arrives in several messages; reading a later request's first component
    settles every older request whole, and each request's components still match its own
    free draws (r_bin is r)."""
    from crypten_lite.protocols import comparison
    from crypten_lite.providers.engine import REPLY_PART_WORDS, reply_parts

    n = 3 * REPLY_PART_WORDS // 4
    params = ((n,), *comparison._params_tail("ltz"))
    assert len(reply_parts("monomials", params)) == 3

    def job(session):
        first = session.provider.get("monomials", params)
        second = session.provider.get("monomials", params)
        order = [second["r_bin"], first["m2"], first["r_bin"], second["m2"]]
        del order
        out = []
        for corr in (first, second):
            r = reveal(session.comm, corr["r"])
            r_bin = reveal(session.comm, corr["r_bin"], kind="binary")
            out.append(bool(np.array_equal(r, r_bin)))
        return out

    assert run_parties(job, 2, provider=provider) == [[True, True]] * 2
