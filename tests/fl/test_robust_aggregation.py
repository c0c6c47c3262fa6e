"""Robust aggregation (default): each client's reconstructed update is range-checked in MPC
before it enters the sum; failing clients are rejected and named on every server."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from crypten_lite.client import pack_weighted_update
from crypten_lite.edge.encode import encode_update, quant_params
from crypten_lite.edge.messages import QuantSpec, UpdateShare
from crypten_lite.edge.shares import split_update
from crypten_lite.fl import AggregationConfig, TooFewClientsError, fedavg_update
from crypten_lite.fl.aggregate import range_check
from crypten_lite.runtime.testing import run_parties

from .uploads import run_round

M = 48
QUANT = QuantSpec("int16", 1.0)


def config(**kw) -> AggregationConfig:
    base = dict(job_id="robust", num_elements=M, first_round_timeout_s=5.0, quant=QUANT)
    base.update(kw)
    return AggregationConfig(**base)


def ring_shares(q: np.ndarray, k: int, ring_bits: int, nonce: bytes | None = None):
    """UpdateShares of the raw ring vector ``q`` (anything a malicious client may send)."""
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    seeds, masked = split_update(np.asarray(q).astype(dtype), k, ring_bits)
    common = dict(round=1, nonce=nonce or secrets.token_bytes(16), num_elements=q.size,
                  ring_bits=ring_bits)
    return [UpdateShare(seed=s, **common) for s in seeds] + [UpdateShare(vector=masked, **common)]


def honest(n: int, seed: int = 0, scale: float = 0.8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-scale, scale, M) for _ in range(n)]


def deliver_all(uploads: dict[str, list[UpdateShare]]):
    def deliver(services):
        for cid, shares in uploads.items():
            for s, share in enumerate(shares):
                services[s].submit(cid, share)
    return deliver


def exact_sum(xs, ring_bits, quant=QUANT) -> np.ndarray:
    """The decoded ring sum of the quantized updates (what the servers must open, exactly)."""
    from crypten_lite.edge.encode import decode_aggregate

    dtype = np.uint32 if ring_bits == 32 else np.uint64
    total = np.zeros(M, dtype)
    for x in xs:
        total += encode_update(x, quant, ring_bits)
    return decode_aggregate(total, quant, ring_bits)


def encoded(x, ring_bits):
    return encode_update(x, QUANT, ring_bits)


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("ring_bits", [32, 64])
def test_inconsistent_shares_are_rejected_and_the_sum_is_exact(world_size, ring_bits):
    xs = honest(4, seed=1)
    uploads = {f"client-{i}": ring_shares(encoded(x, ring_bits), world_size, ring_bits)
               for i, x in enumerate(xs) if i != 2}
    # client-2: the seed(s) of one update to servers 0..k-2, the masked vector of another
    a = ring_shares(encoded(xs[2], ring_bits), world_size, ring_bits, nonce=b"\x02" * 16)
    b = ring_shares(encoded(-xs[2], ring_bits), world_size, ring_bits, nonce=b"\x02" * 16)
    uploads["client-2"] = a[:-1] + b[-1:]
    results, _ = run_round(world_size, config(ring_bits=ring_bits, expected_clients=4),
                           deliver_all(uploads))
    expected = exact_sum([x for i, x in enumerate(xs) if i != 2], ring_bits)
    for res in results:
        assert not isinstance(res, Exception), res
        assert res.rejected == ("client-2",)
        assert res.clients == ("client-0", "client-1", "client-3")
        assert np.array_equal(res.aggregate, expected)  # exact


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("ring_bits", [32, 64])
def test_values_outside_the_clip_range_are_rejected(world_size, ring_bits):
    _, qmax = quant_params(QUANT)
    xs = honest(5, seed=2)
    uploads = {f"client-{i}": ring_shares(encoded(x, ring_bits), world_size, ring_bits)
               for i, x in enumerate(xs)}
    signed = np.int32 if ring_bits == 32 else np.int64
    big = encoded(xs[1], ring_bits).view(signed).copy()
    big[7] = -(2**30)  # wraps a 32-bit sum of honest values: off by ~6.5e4 in float
    uploads["client-1"] = ring_shares(big, world_size, ring_bits)
    just_over = encoded(xs[3], ring_bits).view(signed).copy()
    just_over[0] = qmax + 1  # one unit outside the clip range
    uploads["client-3"] = ring_shares(just_over, world_size, ring_bits)
    results, _ = run_round(world_size, config(ring_bits=ring_bits, expected_clients=5),
                           deliver_all(uploads))
    expected = exact_sum([x for i, x in enumerate(xs) if i not in (1, 3)], ring_bits)
    for res in results:
        assert not isinstance(res, Exception), res
        assert res.rejected == ("client-1", "client-3")
        assert res.clients == ("client-0", "client-2", "client-4")
        assert np.array_equal(res.aggregate, expected)


@pytest.mark.parametrize("world_size", [2, 3])
def test_a_negative_weight_is_rejected_and_fedavg_completes(world_size):
    quant = QuantSpec("int16", 2.0)
    deltas = honest(3, seed=3, scale=0.3)
    weights = [0.5, -1.0, 1.0]  # client-1 claims a negative weight (in the clip range)
    uploads = {
        f"client-{i}": ring_shares(encode_update(pack_weighted_update(d[:-1], w)
                                                 if w >= 0 else np.append(d[:-1], w), quant, 32),
                                   world_size, 32)
        for i, (d, w) in enumerate(zip(deltas, weights, strict=True))
    }
    cfg = config(quant=quant, weight_max=1.0, expected_clients=3)
    results, _ = run_round(world_size, cfg, deliver_all(uploads))
    model = np.zeros(M - 1)
    for res in results:
        assert not isinstance(res, Exception), res
        assert res.rejected == ("client-1",)
        assert res.clients == ("client-0", "client-2")
        step = fedavg_update(model, res.aggregate, num_clients=len(res.clients))  # no crash
        assert step.total_weight == pytest.approx(1.5, abs=1e-4)


@pytest.mark.parametrize("world_size", [2, 3])
def test_all_honest_clients_are_accepted_and_the_sum_is_unchanged(world_size):
    _, qmax = quant_params(QUANT)
    xs = honest(4, seed=4)
    xs[0][:3] = [1.0, -1.0, 5.0]  # at and beyond the clip: encoded to exactly +-qmax
    uploads = {f"client-{i}": ring_shares(encoded(x, 32), world_size, 32)
               for i, x in enumerate(xs)}
    assert encoded(xs[0], 32).view(np.int32)[:3].tolist() == [qmax, -qmax, qmax]
    results, _ = run_round(world_size, config(expected_clients=4), deliver_all(uploads))
    expected = exact_sum(xs, 32)
    for res in results:
        assert not isinstance(res, Exception), res
        assert res.rejected == () and len(res.clients) == 4
        assert np.array_equal(res.aggregate, expected)
        assert res.check_s > 0


@pytest.mark.parametrize("world_size", [2, 3])
def test_too_few_clients_after_the_check_fails_the_round_everywhere(world_size):
    xs = honest(3, seed=5)
    uploads = {f"client-{i}": ring_shares(encoded(x, 32), world_size, 32)
               for i, x in enumerate(xs)}
    bad = encoded(xs[0], 32).view(np.int32).copy()
    bad[:] = 2**31 - 1
    uploads["client-0"] = ring_shares(bad, world_size, 32)
    results, _ = run_round(world_size, config(min_clients=3, expected_clients=3),
                           deliver_all(uploads))
    for res in results:
        assert isinstance(res, TooFewClientsError), res
        assert res.agreed == 2 and res.min_clients == 3
        assert "range check" in str(res) and "client-0" in str(res)


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_range_check_is_exact_on_the_ring_edges(ring_bits):
    """One element per client: every edge value of the ring against [-5, 7]."""
    top = 1 << ring_bits
    values = [0, 1, -1, 7, -5, 8, -6, 2**(ring_bits - 1) - 1, -(2**(ring_bits - 1)),
              2**(ring_bits - 1) - 5, -(2**(ring_bits - 1)) + 7, 1 << 32 if ring_bits == 64 else 3]
    want = [-5 <= v <= 7 for v in values]
    rng = np.random.default_rng(0)
    shares = []
    for v in values:
        r = int(rng.integers(0, top, dtype=np.uint64)) if ring_bits == 64 else int(
            rng.integers(0, top))
        shares.append([r, (v - r) % top])

    def job(session):
        rows = np.array([[s[session.rank]] for s in shares], dtype=np.uint64)
        return range_check(session, rows, np.array([-5]), np.array([7]), ring_bits, chunk=6)

    for got in run_parties(job, 2):
        assert got.tolist() == want


def test_the_check_can_be_turned_off_and_validates_its_range():
    from crypten_lite.errors import ConfigError

    cfg = config(range_check=False)
    assert cfg.value_bounds is None
    with pytest.raises(ConfigError, match="weight_max"):
        config(weight_max=-1.0)
    with pytest.raises(ConfigError, match="range_check"):
        config(quant=QuantSpec("fixed16", 40000.0))
    lo, hi = config(weight_max=0.5).value_bounds
    assert (lo[-1], hi[-1]) == (0, 16384) and (lo[0], hi[0]) == (-32767, 32767)
