"""Single-server secure aggregation rounds in process: exact aggregates (all pairs and a
k-regular graph, 32/64-bit rings, every encoding), a threaded run through the round loop,
dropouts at every stage, rounds that fail below the threshold, and SecAggConfig checks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from crypten_lite.client.secagg_client import (
    SecAggClient,
    SecAggProtocolError,
    SecAggRoundFailed,
)
from crypten_lite.edge.messages import QuantSpec, RoundState
from crypten_lite.edge.secagg_messages import SecAggStage
from crypten_lite.edge.secagg_params import SecAggParams
from crypten_lite.errors import ConfigError, EncodingRangeError
from crypten_lite.fl.secagg import SecAggAbortedError, SecAggConfig, SecAggService

from .secagg_helpers import Harness, RecordingLink, expected_aggregate

SCHEMES = [QuantSpec("int8", 1.0), QuantSpec("int16", 0.5), QuantSpec("fixed16", 2.0)]
GRAPHS = [(5, "all"), (12, 4)]


# -- exact aggregates ------------------------------------------------------------------------
@pytest.mark.parametrize("quant", SCHEMES, ids=lambda q: q.scheme)
@pytest.mark.parametrize("ring_bits", [32, 64])
@pytest.mark.parametrize(("n", "k"), GRAPHS, ids=["n5-all", "n12-k4"])
def test_exact_aggregate(n, k, ring_bits, quant):
    h = Harness(n, 48, ring_bits=ring_bits, quant=quant, neighbours=k)
    result = h.run()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.ids))
    assert result.clients == tuple(sorted(h.ids))
    assert result.dropped == {"share_keys": (), "masked_input": (), "unmask": ()}
    assert result.excluded == () and result.complaints == () and result.clipped == 0
    assert result.payload_bytes == {cid: 48 * ring_bits // 8 for cid in h.ids}
    degree = n - 1 if k == "all" else k
    t = SecAggParams(k).threshold_for(degree)
    assert h.rnd.threshold == t
    for cid in h.ids:
        state = h.state(cid)
        assert state.stage is SecAggStage.DONE
        assert len(state.neighbours) == degree and len(state.shared) == degree
        assert state.threshold == t
        report = h.clients[cid].report(state.stage)
        assert report.neighbours == degree and report.complaints == ()
        assert report.masked_bytes >= 48 * ring_bits // 8


def test_aggregate_is_not_just_a_sum_of_one_client():
    # sanity of the oracle itself: different updates give different sums
    h = Harness(5, 16)
    result = h.run()
    assert not np.array_equal(result.aggregate, h.expected(h.ids[:-1]))
    assert np.abs(result.aggregate).max() > 0


def test_threaded_round_through_the_round_loop():
    n, m = 6, 40
    quant = QuantSpec("int16", 1.0)
    config = SecAggConfig(
        job_id="threaded", num_elements=m, quant=quant, params=SecAggParams("all"),
        min_clients=3, expected_clients=n, collect_timeout_s=5.0, first_round_timeout_s=5.0,
    )
    service = SecAggService(config)
    rng = np.random.default_rng(7)
    xs = {f"client-{i}": rng.uniform(-1, 1, m) for i in range(n)}
    out: dict[str, object] = {}

    def server():
        try:
            out["server"] = service.run_round(np.zeros(m, np.float32))
        except BaseException as err:
            out["server"] = err

    def client(cid):
        try:
            sdk = SecAggClient(RecordingLink(service, cid), poll_s=0.01)
            deadline = time.monotonic() + 5
            info = sdk.link.round_info()
            while not (info.round == 1 and info.state is RoundState.OPEN):
                assert time.monotonic() < deadline, "round 1 never opened"
                time.sleep(0.005)
                info = sdk.link.round_info()
            out[cid] = sdk.run_round(xs[cid], info, timeout=10.0)
        except BaseException as err:
            out[cid] = err

    threads = [threading.Thread(target=server)]
    threads += [threading.Thread(target=client, args=(cid,)) for cid in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    result = out["server"]
    assert not isinstance(result, BaseException), result
    np.testing.assert_array_equal(result.aggregate, expected_aggregate(xs.values(), quant, 32))
    assert result.clients == tuple(sorted(xs))
    for cid in xs:
        report = out[cid]
        assert not isinstance(report, BaseException), (cid, report)
        assert report.stage is SecAggStage.DONE and report.round == 1
        assert report.download_bytes > 0 and report.upload_bytes > report.masked_bytes
    assert service.round_info("client-0").state is RoundState.CLOSED


# -- dropouts --------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "k"), GRAPHS, ids=["n5-all", "n12-k4"])
def test_dropout_after_advertising(n, k):
    h = Harness(n, 24, neighbours=k)
    gone = h.ids[1]
    h.advertise()
    h.drop(gone)
    assert h.share_keys() is SecAggStage.MASKED_INPUT
    assert h.masked() is SecAggStage.UNMASK
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.active()))
    assert result.dropped["share_keys"] == (gone,)
    assert result.dropped["masked_input"] == () and result.dropped["unmask"] == ()
    assert gone not in result.clients and len(result.clients) == n - 1
    # nobody masked with the client that never shared
    for cid in h.active():
        assert h.index(gone) not in h.state(cid).shared
    # the dropped client is told it is out of the round
    with pytest.raises(SecAggRoundFailed, match="out of round"):
        h.clients[gone].wait_for_stage(1, SecAggStage.MASKED_INPUT, 1.0)


@pytest.mark.parametrize(("n", "k"), GRAPHS, ids=["n5-all", "n12-k4"])
def test_dropout_after_sharing_keys(n, k):
    h = Harness(n, 24, neighbours=k)
    gone = h.ids[2]
    h.advertise()
    h.share_keys()
    h.drop(gone)
    assert h.masked() is SecAggStage.UNMASK
    # its neighbours are asked for its mask-key share, the others for self-mask shares
    v = h.index(gone)
    for cid in h.active():
        state = h.state(cid)
        if v in state.shared:
            assert v in state.dropped and v not in state.survivors
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.active()))
    assert result.dropped["masked_input"] == (gone,)
    assert result.dropped["share_keys"] == () and result.dropped["unmask"] == ()
    assert gone not in result.clients


@pytest.mark.parametrize(("n", "k"), GRAPHS, ids=["n5-all", "n12-k4"])
def test_dropout_after_masked_upload(n, k):
    h = Harness(n, 24, neighbours=k)
    gone = h.ids[0]
    h.advertise()
    h.share_keys()
    h.masked()
    h.drop(gone)
    h.unmask()
    result = h.finish()
    # its masked input is in the sum: its update counts
    np.testing.assert_array_equal(result.aggregate, h.expected(h.ids))
    assert result.dropped["unmask"] == (gone,)
    assert result.dropped["share_keys"] == () and result.dropped["masked_input"] == ()
    assert gone in result.clients


def test_dropouts_at_every_stage_in_one_round():
    # all pairs of 8, d = 7, t = 4: after the three drops every secret has >= 4 holders
    h = Harness(8, 24, threshold=0.51)
    a, b, c = h.ids[3], h.ids[5], h.ids[6]
    h.advertise()
    h.drop(a)
    h.share_keys()
    h.drop(b)
    h.masked()
    h.drop(c)
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(set(h.ids) - {a, b}))
    assert result.dropped == {"share_keys": (a,), "masked_input": (b,), "unmask": (c,)}


def test_a_client_that_never_advertised_is_not_in_the_round():
    h = Harness(6, 8)
    late = h.ids[5]
    h.drop(late)
    h.advertise()
    state = h.state(late)
    assert state.index == 0 and state.neighbours == ()
    with pytest.raises(SecAggProtocolError, match="no keys were advertised"):
        h.clients[late].share_keys(state)
    h.share_keys()
    h.masked()
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.active()))
    assert late not in result.clients
    assert all(late not in stage for stage in result.dropped.values())


# -- below the threshold ---------------------------------------------------------------------
def _all_fail_with(h, reason_part, clients):
    """Every listed client's next state is FAILED with the same reason, and its SDK raises."""
    reasons = set()
    for cid in clients:
        state = h.state(cid)
        assert state.stage is SecAggStage.FAILED, (cid, state.stage)
        reasons.add(state.failure)
        with pytest.raises(SecAggRoundFailed) as err:
            h.clients[cid].wait_for_stage(1, SecAggStage.DONE, 1.0)
        assert str(err.value) == state.failure
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason_part in reason
    return reason


def _server_aborts(h):
    with pytest.raises(SecAggAbortedError) as err:
        h.service.close_and_aggregate(wait=False)
    assert h.rnd.stage is SecAggStage.FAILED
    assert err.value.reason == h.rnd.failure
    assert h.rnd.failure in str(err.value)
    return err.value


def test_too_few_advertise():
    h = Harness(5, 8)
    h.drop(*h.ids[2:])
    h.advertise(close=False)
    err = _server_aborts(h)
    assert "only 2 client(s) advertised keys" in err.reason
    _all_fail_with(h, "only 2 client(s) advertised keys", h.active())
    # a client still holding the SHARE_KEYS call refuses to go on
    with pytest.raises(SecAggRoundFailed, match="advertised keys"):
        h.clients[h.ids[0]].share_keys(h.state(h.ids[0]))


def test_too_few_share_keys_min_clients():
    h = Harness(6, 8, min_clients=5)  # d = 5, t = 3
    h.advertise()
    h.drop(h.ids[0], h.ids[1])
    h.share_keys(close=False)
    err = _server_aborts(h)
    assert "only 4 client(s) shared keys" in err.reason
    _all_fail_with(h, "only 4 client(s) shared keys", h.active())


def test_too_few_share_keys_below_threshold_prunes_everyone():
    h = Harness(5, 8)  # d = 4, t = 3: with 2 gone, the others keep 2 < 3 live neighbours
    h.advertise()
    h.drop(h.ids[3], h.ids[4])
    h.share_keys(close=False)
    err = _server_aborts(h)
    assert "only 0 client(s) shared keys with enough neighbours" in err.reason
    assert set(h.rnd.pruned) == set(h.active())
    _all_fail_with(h, "shared keys with enough neighbours", h.active())


def _expected_pruning(rnd, alive, t):
    """The fixpoint the server must reach: drop clients with fewer than t live neighbours."""
    alive = set(alive)
    while True:
        weak = {u for u in alive if sum(v in alive for v in rnd.by_index[u].neighbours) < t}
        if not weak:
            return alive
        alive -= weak


@pytest.mark.parametrize("seed", range(4))
def test_clients_with_too_few_live_neighbours_are_pruned(seed):
    # k = 4, t = 3 on 12 clients: two neighbours of one client drop after advertising; the
    # server drops (repeatedly) every client left with fewer than t live neighbours. (On a
    # Harary graph with t > d/2 this cascades through the whole ring: the round fails.)
    h = Harness(12, 8, neighbours=4, seed=seed)
    h.advertise()
    victim = h.ids[seed]
    near = [h.id_of(v) for v in h.rnd.by_id[victim].neighbours]
    h.drop(*near[:2])
    alive = _expected_pruning(h.rnd, [h.index(c) for c in h.active()], h.rnd.threshold)
    kept = sorted(h.id_of(v) for v in alive)
    h.share_keys(close=False)
    stage = h.close()
    pruned = sorted(set(h.active()) - set(kept))
    assert victim in pruned
    assert list(h.rnd.pruned) == pruned
    if len(kept) < 3:
        assert stage is SecAggStage.FAILED
        _all_fail_with(h, "shared keys with enough neighbours", h.active())
        return
    assert stage is SecAggStage.MASKED_INPUT
    for cid in pruned:
        with pytest.raises(SecAggRoundFailed, match="out of round"):
            h.clients[cid].masked_input(h.state(cid), h.updates[cid])
    h.drop(*pruned)
    h.masked()
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(kept))
    assert result.excluded == tuple(pruned)
    assert result.clients == tuple(kept)


def test_too_few_masked_inputs():
    h = Harness(5, 8, min_clients=4)
    h.advertise()
    h.share_keys()
    h.drop(h.ids[1], h.ids[2])
    h.masked(close=False)
    err = _server_aborts(h)
    assert "only 3 client(s) sent a masked input" in err.reason
    _all_fail_with(h, "only 3 client(s) sent a masked input", h.ids)


def test_too_few_unmask_answers():
    h = Harness(5, 8)  # d = 4, t = 3
    h.advertise()
    h.share_keys()
    h.masked()
    h.drop(h.ids[0], h.ids[1])
    h.unmask()
    with pytest.raises(SecAggAbortedError) as err:
        h.finish()
    assert "shares needed arrived" in err.value.reason
    assert "2 of the 3" in err.value.reason
    # a finish_round failure is what every client sees, too
    reason = _all_fail_with(h, "shares needed arrived", h.ids)
    assert reason == err.value.reason
    with pytest.raises(ConfigError, match="not unmasked"):
        h.finish()


def test_close_and_aggregate_raises_the_unmask_failure():
    h = Harness(5, 8)
    h.advertise()
    h.share_keys()
    h.masked()
    h.drop(*h.ids[:3])
    h.unmask(close=False)
    err = _server_aborts(h)
    assert "shares needed arrived" in err.reason


def test_rebuild_needs_threshold_shares_from_live_neighbours_not_all():
    # d = 4, t = 3: exactly one neighbour missing at unmasking still works for everybody
    h = Harness(5, 8)
    h.advertise()
    h.share_keys()
    h.masked()
    h.drop(h.ids[4])
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.ids))


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("min_clients", [2, 1, 0, -1])
def test_config_min_clients_at_least_3(min_clients):
    with pytest.raises(ConfigError, match="min_clients must be >= 3"):
        SecAggConfig(job_id="j", num_elements=4, min_clients=min_clients)


def test_config_min_clients_type():
    with pytest.raises(ConfigError, match="min_clients must be an int"):
        SecAggConfig(job_id="j", num_elements=4, min_clients=3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["drop", "", None, "CLIP"])
def test_config_out_of_range(mode):
    with pytest.raises(ConfigError, match="out_of_range must be 'clip' or 'fail'"):
        SecAggConfig(job_id="j", num_elements=4, out_of_range=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quant", "limit"),
    [(QuantSpec("int16", 1.0), (2**31 - 1) // 32767), (QuantSpec("fixed16", 1.0), 32767),
     (QuantSpec("fixed16", 4.0), (2**31 - 1) // (4 * 65536))],
    ids=["int16", "fixed16", "fixed16-clip4"],
)
def test_config_capacity_overflow(quant, limit):
    SecAggConfig(job_id="j", num_elements=4, quant=quant, expected_clients=limit)
    with pytest.raises(EncodingRangeError, match="32-bit ring holds the sum of at most"):
        SecAggConfig(job_id="j", num_elements=4, quant=quant, expected_clients=limit + 1)
    with pytest.raises(EncodingRangeError):
        SecAggConfig(job_id="j", num_elements=4, quant=quant, min_clients=limit + 1)
    # a 64-bit ring holds them
    SecAggConfig(job_id="j", num_elements=4, ring_bits=64, quant=quant, expected_clients=limit + 1)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"job_id": ""}, "job_id"),
        ({"num_elements": 0}, "num_elements"),
        ({"num_elements": True}, "num_elements"),
        ({"ring_bits": 16}, "ring_bits"),
        ({"quant": QuantSpec("int4", 1.0)}, "quant.scheme"),
        ({"params": "all"}, "SecAggParams"),
        ({"expected_clients": 3, "min_clients": 4}, "expected_clients"),
        ({"collect_timeout_s": 0}, "collect_timeout_s"),
        ({"first_round_timeout_s": -1.0}, "first_round_timeout_s"),
        ({"weight_max": 0.0}, "weight_max"),
        ({"weight_max": float("inf")}, "weight_max"),
    ],
)
def test_config_other_fields(kw, match):
    base = {"job_id": "j", "num_elements": 4}
    base.update(kw)
    with pytest.raises(ConfigError, match=match):
        SecAggConfig(**base)  # type: ignore[arg-type]
