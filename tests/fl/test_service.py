"""AggregationService across 2 and 3 servers (threads): agreement, min_clients, the norm bound
in MPC, exact aggregates, and a load test through the client SDK's in-process links."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from crypten_lite.client.edge_client import EdgeClient
from crypten_lite.client.links import DirectServerLink
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, QuantSpec, RoundState
from crypten_lite.fl import AggregationConfig, TooFewClientsError, agree_on_clients
from crypten_lite.runtime.testing import run_parties

from .uploads import make_shares, quantized, run_round

M = 64


def config(**kw) -> AggregationConfig:
    base = dict(job_id="test", num_elements=M, first_round_timeout_s=0.5)
    base.update(kw)
    return AggregationConfig(**base)


def updates(n: int, scale: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-scale, scale, M) for _ in range(n)]


def test_agreement_intersects_and_is_identical_everywhere():
    views = {0: ["client-1", "client-2", "client-3"], 1: ["client-3", "client-2"],
             2: ["client-2", "client-3", "client-4"]}
    out = run_parties(lambda s: agree_on_clients(s.comm, views[s.rank], 1), 3)
    assert [a.clients for a in out] == [("client-2", "client-3")] * 3
    assert out[0].excluded == ("client-1",) and out[1].excluded == ()
    assert out[2].excluded == ("client-4",)
    errs = run_parties(lambda s: _too_few(s, views[s.rank]), 3)
    assert errs == [(2, 3)] * 3


def _too_few(session, ids):
    try:
        agree_on_clients(session.comm, ids, 3)
    except TooFewClientsError as err:
        return (err.agreed, err.min_clients)
    return None


@pytest.mark.parametrize("world_size", [2, 3])
def test_client_reaching_some_servers_is_excluded_everywhere(world_size):
    xs = updates(4)

    def deliver(services):
        for i, x in enumerate(xs):
            shares = make_shares(x, world_size, 1)
            reach = range(world_size) if i != 2 else range(world_size - 1)  # client-2 drops
            for s in reach:
                services[s].submit(f"client-{i}", shares[s])

    results, _ = run_round(world_size, config(expected_clients=4), deliver)
    expected = sum(quantized(x) for i, x in enumerate(xs) if i != 2)
    for rank, res in enumerate(results):
        assert res.clients == ("client-0", "client-1", "client-3")
        np.testing.assert_allclose(res.aggregate, expected, rtol=0, atol=1e-12)
        assert res.excluded == (("client-2",) if rank < world_size - 1 else ())
    # the last server never saw client-2; the others did and dropped it: their sums agree


def test_min_clients_fails_the_round_on_every_server():
    xs = updates(2)

    def deliver(services):
        for i, x in enumerate(xs):
            for s, share in enumerate(make_shares(x, 2, 1)):
                services[s].submit(f"client-{i}", share)

    results, services = run_round(2, config(min_clients=3, expected_clients=2), deliver)
    assert all(isinstance(r, TooFewClientsError) for r in results)
    assert all(svc.state is RoundState.CLOSED for svc in services.values())


def test_malformed_update_gets_a_clear_error_and_others_are_aggregated():
    xs = updates(3)
    errors = []

    def deliver(services):
        sharings = [make_shares(x, 2, 1) for x in xs]
        for i, shares in enumerate(sharings):
            services[0].submit(f"client-{i}", shares[0])
        bad = make_shares(np.zeros(M + 1), 2, 1)[1]  # wrong length for server 1
        try:
            services[1].submit("client-1", bad)
        except EdgeRequestError as err:
            errors.append(err)
        for i, shares in enumerate(sharings):
            if i != 1:
                services[1].submit(f"client-{i}", shares[1])

    results, _ = run_round(2, config(expected_clients=3), deliver)
    assert errors and errors[0].refusal is EdgeRefusal.INVALID
    assert "num_elements" in str(errors[0])
    # client-1's server-0 share came from another sharing: it must not be aggregated
    for res in results:
        assert res.clients == ("client-0", "client-2")


def test_norm_bound_rejects_a_poisoned_update_and_keeps_honest_ones():
    quant = QuantSpec("int16", 1.0)
    xs = updates(4, scale=0.1, seed=3)
    xs[1] = np.clip(xs[1] * 20, -1, 1)  # boosted update: norm far above the bound
    assert max(np.linalg.norm(x) for i, x in enumerate(xs) if i != 1) < 1.0
    assert np.linalg.norm(xs[1]) > 3.0

    def deliver(services):
        for i, x in enumerate(xs):
            for s, share in enumerate(make_shares(x, 2, 1, ring_bits=64, quant=quant)):
                services[s].submit(f"client-{i}", share)

    cfg = config(ring_bits=64, quant=quant, norm_bound=1.5, expected_clients=4)
    results, _ = run_round(2, cfg, deliver)
    expected = sum(quantized(x, 64, quant) for i, x in enumerate(xs) if i != 1)
    for res in results:
        assert res.rejected == ("client-1",)
        assert res.clients == ("client-0", "client-2", "client-3")
        np.testing.assert_allclose(res.aggregate, expected, rtol=0, atol=1e-12)


def test_norm_bound_catches_a_ring_element_that_squares_to_zero():
    """q_j = 2^32 squares to 0 mod 2^64: the elementwise check must reject it."""
    from crypten_lite.edge.messages import UpdateShare
    from crypten_lite.edge.shares import split_update

    def deliver(services):
        for i in range(2):
            q = np.zeros(M, np.uint64)
            if i == 1:
                q[5] = np.uint64(1 << 32)
            seeds, masked = split_update(q, 2, 64)
            common = dict(round=1, nonce=bytes([i]) * 16, num_elements=M, ring_bits=64)
            services[0].submit(f"client-{i}", UpdateShare(seed=seeds[0], **common))
            services[1].submit(f"client-{i}", UpdateShare(vector=masked, **common))

    results, _ = run_round(2, config(ring_bits=64, norm_bound=1.0, expected_clients=2), deliver)
    assert [r.rejected for r in results] == [("client-1",)] * 2


def test_norm_bound_needs_a_64_bit_ring():
    from crypten_lite.errors import ConfigError

    with pytest.raises(ConfigError, match="ring_bits=64"):
        config(norm_bound=1.0)


def test_load_many_concurrent_clients_through_the_sdk():
    """200 clients in threads through DirectServerLink/EdgeClient: none lost, sum exact."""
    n = 200
    xs = updates(n, seed=7)
    reports = {}

    def deliver(services):
        def client(i):
            cid = f"client-{i}"
            edge = EdgeClient([DirectServerLink(services[s], cid) for s in range(2)], poll_s=0.01)
            info = edge.wait_for_round(after=0, timeout=10)
            reports[i] = edge.submit_update(xs[i], info)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    results, services = run_round(2, config(expected_clients=n, first_round_timeout_s=60), deliver)
    assert len(reports) == n
    expected = sum(quantized(x) for x in xs)
    for res in results:
        assert len(res.clients) == n and res.excluded == ()
        np.testing.assert_allclose(res.aggregate, expected, rtol=0, atol=1e-9)
    info = services[0].round_info("client-0")
    assert info.state is RoundState.CLOSED and info.round == 1
    services[0].finish()
    assert services[0].round_info("client-0").state is RoundState.FINISHED


def test_config_validation_names_the_argument():
    from crypten_lite.errors import ConfigError

    for bad, word in [(dict(num_elements=0), "num_elements"), (dict(min_clients=0), "min_clients"),
                      (dict(ring_bits=16), "ring_bits"), (dict(collect_timeout_s=0), "collect"),
                      (dict(ring_bits=64, norm_bound=1e9), "norm_bound")]:
        with pytest.raises(ConfigError, match=word):
            config(**bad)


def test_round_info_and_lifecycle_on_one_server():
    def job(session):
        from crypten_lite.edge.messages import as_inference
        from crypten_lite.fl import AggregationService

        svc = AggregationService(session, config())
        before = svc.round_info("client-0")
        number = svc.open_round(np.arange(3.0))
        opened = svc.round_info("client-0")
        with pytest.raises(EdgeRequestError) as err:  # what the gateway answers an Infer call
            as_inference(svc)
        svc.finish()
        return before, number, opened, svc.round_info("client-0"), err.value.refusal

    before, number, opened, finished, refusal = run_parties(job, 2)[0]
    assert (before.round, before.state) == (0, RoundState.CLOSED)
    assert number == 1 and opened.state is RoundState.OPEN
    assert np.array_equal(opened.model, np.arange(3, dtype=np.float32))
    assert opened.num_servers == 2 and opened.server_index == 0 and opened.num_elements == M
    assert finished.state is RoundState.FINISHED
    assert refusal is EdgeRefusal.INVALID


def test_a_round_nobody_delivered_to_fails_cleanly_then_the_next_round_works():
    x = updates(1)[0]

    def deliver(services):
        return None  # nobody shows up before the deadline

    results, _ = run_round(2, config(expected_clients=1, first_round_timeout_s=0.2), deliver)
    assert all(isinstance(r, TooFewClientsError) and r.agreed == 0 for r in results)

    shares = make_shares(x, 2, 2)  # one sharing, each server takes its part

    def two_rounds(session):
        from crypten_lite.fl import AggregationService

        svc = AggregationService(session, config(expected_clients=1, collect_timeout_s=0.2,
                                                 first_round_timeout_s=0.2))
        svc.open_round(np.zeros(M))
        try:
            svc.close_and_aggregate()
        except TooFewClientsError:
            pass
        svc.open_round(np.zeros(M))
        svc.submit("client-0", shares[session.rank])
        return svc.close_and_aggregate()

    for res in run_parties(two_rounds, 2):
        assert res.round == 2 and res.clients == ("client-0",)
        np.testing.assert_allclose(res.aggregate, quantized(x), rtol=0, atol=1e-12)
