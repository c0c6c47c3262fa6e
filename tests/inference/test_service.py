"""InferenceService across 2 and 3 servers (threads, trusted dealer): outputs through the client
SDK match the plaintext model, refusals (shape, model, frac_bits, duplicates), a query that
reached only some servers (or with different metadata) fails everywhere while the next one is
served, and an in-band stop from any server ends every serving loop."""

from __future__ import annotations

import io
import secrets
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from crypten_lite import nn
from crypten_lite.client.edge_client import EdgeClient
from crypten_lite.client.links import DirectServerLink
from crypten_lite.edge.messages import (
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    UpdateShare,
)
from crypten_lite.edge.shares import split_update
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import ConfigError
from crypten_lite.inference import InferenceService
from crypten_lite.runtime import LaunchOptions, launch
from crypten_lite.runtime.testing import run_parties

SHAPES = {"mlp": (4,), "mlp2": (4,)}


def build(seed: int) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(seed)), nn.ReLU())


def client_for(services: list[InferenceService], cid="client-0"):
    return EdgeClient([DirectServerLink(s, cid) for s in services])


def split_query(x, world_size, *, model="mlp", shape=None, frac_bits=16, query_id=None):
    x = np.asarray(x, dtype=np.float64)
    seeds, masked = split_update(FixedPointEncoder(frac_bits).encode(x).reshape(-1), world_size, 64)
    qid = query_id or secrets.token_bytes(16)
    shape = tuple(x.shape if shape is None else shape)
    out = [InferenceQuery(qid, model, shape, frac_bits, seed=s) for s in seeds]
    return [*out, InferenceQuery(qid, model, shape, frac_bits, vector=masked)]


def call_all(services, queries, cid="client-0"):
    """Send queries[i] to services[i] concurrently; each result or the refusal raised."""
    with ThreadPoolExecutor(len(queries)) as pool:
        futures = [pool.submit(s.infer, cid, q) for s, q in zip(services, queries, strict=True)]
        return [f.exception() or f.result() for f in futures]


def serve(world_size: int, client: Callable[[list[InferenceService]], Any], *, stopper=0, **kw):
    """Every rank encrypts the same models and serves until ``client`` is done, then
    ``services[stopper].stop()`` ends every loop. Returns (client result, served per rank)."""
    services: dict[int, InferenceService] = {}
    ready = threading.Event()
    lock = threading.Lock()
    outcome: dict[str, Any] = {}
    kw = {"query_timeout_s": 3.0, "match_timeout_s": 0.4, **kw}

    def party(session):
        models = {"mlp": build(1).encrypt(src=0), "mlp2": build(2).encrypt(src=0)}
        service = InferenceService(session, models, input_shapes=SHAPES, **kw)
        with lock:
            services[session.rank] = service
            if len(services) == world_size:
                ready.set()
        return service.serve()

    def drive():
        try:
            assert ready.wait(30)
            ordered = [services[r] for r in range(world_size)]
            outcome["value"] = client(ordered)
        except BaseException as err:  # re-raised by the test
            outcome["error"] = err
        finally:
            if ready.is_set():
                services[stopper].stop()

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    served = run_parties(party, world_size, timeout_s=60)
    thread.join(10)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], served


@pytest.mark.parametrize("world_size", [2, 3])
def test_outputs_match_the_plaintext_model(world_size):
    rng = np.random.default_rng(7)
    xs = [rng.uniform(-2, 2, (1, 4)), rng.uniform(-2, 2, (5, 4))]

    def client(services):
        edge = client_for(services)
        outs = [edge.infer("mlp", x) for x in xs]
        outs.append(edge.infer("mlp2", xs[0]))
        return outs

    outs, served = serve(world_size, client, stopper=world_size - 1)  # a follower stops
    expected = [build(1)(xs[0]), build(1)(xs[1]), build(2)(xs[0])]
    for got, want in zip(outs, expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-3)
    assert served == [3] * world_size


def test_bad_queries_are_refused_and_duplicates_too():
    x = np.full((2, 4), 0.5)

    def client(services):
        refusals = {}
        edge = client_for(services)
        for name, call in {
            "shape": lambda: edge.infer("mlp", np.zeros((2, 5))),
            "no batch": lambda: edge.infer("mlp", np.zeros(4)),
            "model": lambda: edge.infer("cnn", x),
            "frac_bits": lambda: edge.infer("mlp", x, frac_bits=12),
        }.items():
            with pytest.raises(EdgeRequestError) as err:
                call()
            refusals[name] = (err.value.refusal, err.value.detail)
        good = split_query(x, 2)
        first = call_all(services, good)
        again = call_all(services, good)
        swapped = call_all(services, split_query(x, 2)[::-1])  # seed to the vector server
        link = DirectServerLink(services[0], "client-0")  # what the gateway does too
        for what in ("round_info", "submit"):
            with pytest.raises(EdgeRequestError) as err:
                if what == "round_info":
                    link.round_info()
                else:
                    link.submit(UpdateShare(1, b"n" * 16, 4, 32, b"s" * 32))
            refusals[what] = (err.value.refusal, err.value.detail)
        return refusals, first, again, swapped

    (refusals, first, again, swapped), served = serve(2, client)
    assert {k: r for k, (r, _) in refusals.items()} == dict.fromkeys(refusals, EdgeRefusal.INVALID)
    assert "(batch, *(4,))" in refusals["shape"][1] and "(2, 5)" in refusals["shape"][1]
    assert "unknown model 'cnn'" in refusals["model"][1]
    assert "frac_bits must be 16" in refusals["frac_bits"][1]
    assert "runs private inference" in refusals["round_info"][1]
    total = sum(s.share for s in first)
    np.testing.assert_allclose(FixedPointEncoder(16).decode(total), build(1)(x), atol=1e-3)
    assert all(isinstance(e, EdgeRequestError) for e in again)
    assert {e.refusal for e in again} == {EdgeRefusal.DUPLICATE}
    assert all(e.refusal is EdgeRefusal.INVALID for e in swapped)
    assert served == [1, 1]


@pytest.mark.parametrize("world_size", [2, 3])
def test_a_query_missing_on_a_server_fails_everywhere_and_the_next_is_served(world_size):
    x = np.full((1, 4), -0.25)

    def client(services):
        # reached the leader only: announced, then failed on every server that had it
        partial = split_query(x, world_size)[:1]
        only_leader = call_all(services[:1], partial)
        # different metadata (model) on the last server: digests differ, caught the same way
        mixed = split_query(x, world_size)
        last = mixed[-1]
        mixed[-1] = InferenceQuery(last.query_id, "mlp2", last.shape, 16, vector=last.vector)
        mismatched = call_all(services, mixed)
        good = client_for(services).infer("mlp", x)
        return only_leader, mismatched, good

    (only_leader, mismatched, good), served = serve(world_size, client, query_timeout_s=1.5)
    (err,) = only_leader
    assert isinstance(err, EdgeRequestError) and err.refusal is EdgeRefusal.STALE
    assert "not every server received this query" in err.detail
    assert all(isinstance(e, EdgeRequestError) for e in mismatched)
    assert "not every server received this query" in mismatched[0].detail
    assert "no output within 1.5s" in mismatched[-1].detail  # its copy was never announced
    np.testing.assert_allclose(good, build(1)(x), atol=1e-3)
    assert served == [1] * world_size


def test_max_queries_returns_and_a_stopped_service_refuses():
    x = np.full((1, 4), 0.75)
    after: dict[str, Any] = {}

    def party(session):
        service = InferenceService(
            session,
            {"mlp": build(1).encrypt(src=0)},
            input_shapes={"mlp": (4,)},
            query_timeout_s=3.0,
        )
        holder[session.rank] = service
        if len(holder) == 2:
            ready.set()
        first = service.serve(max_queries=1)
        second = service.serve(idle_timeout_s=0.3)  # closes after 0.3 s without queries
        return first, second

    holder: dict[int, InferenceService] = {}
    ready = threading.Event()

    def drive():
        assert ready.wait(30)
        after["first"] = call_all([holder[0], holder[1]], split_query(x, 2))

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    served = run_parties(party, 2, timeout_s=60)
    thread.join(10)
    assert served == [(1, 0), (1, 0)]
    assert all(isinstance(s, InferenceShare) for s in after["first"])
    late = call_all([holder[0], holder[1]], split_query(x, 2))
    assert {e.refusal for e in late} == {EdgeRefusal.UNAVAILABLE}


def test_constructor_checks_models_and_shapes():
    def party(session):
        errors = []
        plain = build(1)
        enc = build(1).encrypt(src=0)
        for models, shapes, kw in [
            ({"mlp": plain}, {"mlp": (4,)}, {}),
            ({"mlp": enc}, {}, {}),
            ({"mlp": enc}, {"mlp": [4]}, {}),
            ({"mlp": enc}, {"mlp": (4,)}, {"match_timeout_s": 1e3}),
        ]:
            with pytest.raises(ConfigError) as err:
                InferenceService(session, models, input_shapes=shapes, **kw)
            errors.append(str(err.value))
        return errors

    errors = run_parties(party, 2)[0]
    assert "must be an encrypted" in errors[0]
    assert "no entry for model 'mlp'" in errors[1]
    assert "tuple of positive ints" in errors[2]
    assert "match_timeout_s" in errors[3]


GRPC_SCRIPT = """
import numpy as np
from crypten_lite import nn
from crypten_lite.client import ClientConfig, EdgeClient

def build():
    return nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(1)), nn.ReLU())

config = ClientConfig.from_environment()
if config is None:  # a server
    import crypten_lite as cl
    from crypten_lite.inference import InferenceService

    session = cl.current_session()
    service = InferenceService(session, {"mlp": build().encrypt(src=0)},
                               input_shapes={"mlp": (4,)}, query_timeout_s=15.0)
    session.comm.set_edge_handler(service)
    print("rank", session.rank, "served", service.serve(max_queries=2), flush=True)
else:
    client = EdgeClient.connect(config)
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    for rows in (x[:1], x):
        err = np.abs(client.infer("mlp", rows) - build()(rows)).max()
        print(config.client_id, "error below 1e-3:", bool(err < 1e-3), flush=True)
    client.close()
"""


def test_grpc_end_to_end_with_a_client_process(tmp_path):
    script = tmp_path / "infer_job.py"
    script.write_text(textwrap.dedent(GRPC_SCRIPT))
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        script, [], LaunchOptions(world_size=2, clients=1, timeout_s=20), stdout=out, stderr=err
    )
    lines = out.getvalue().splitlines()
    assert code == 0, out.getvalue() + err.getvalue()
    assert lines.count("[c0] client-0 error below 1e-3: True") == 2, lines
    assert "[0] rank 0 served 2" in lines and "[1] rank 1 served 2" in lines


@pytest.mark.parametrize("world_size", [2, 3])
def test_concurrent_queries_run_as_one_batch_and_stay_separate(world_size):
    """12 clients query at once: the servers answer them in a few model evaluations (one
    per batch, each model batched on its own), every client gets exactly its own output.
    The first evaluation waits until every query is queued on every server, so what
    follows does not depend on how fast the clients' calls arrive."""
    rng = np.random.default_rng(3)
    xs = {f"client-{i}": rng.uniform(-2, 2, (1 + i % 3, 4)) for i in range(12)}
    models = {cid: ("mlp" if i % 4 else "mlp2") for i, cid in enumerate(xs)}

    def client(services):
        calls = {"n": 0}

        def all_queued():
            return all(s.pending >= len(xs) for s in services)

        for s in services:
            for name, model in s.models.items():
                s.models[name] = _Counting(model, calls, all_queued)
        with ThreadPoolExecutor(len(xs)) as pool:
            futures = {
                cid: pool.submit(client_for(services, cid).infer, models[cid], x)
                for cid, x in xs.items()
            }
            outs = {cid: f.result() for cid, f in futures.items()}
        return outs, calls["n"] // world_size

    (outs, evaluations), served = serve(world_size, client, batch_window_s=0.05)
    for cid, x in xs.items():
        want = build(1 if models[cid] == "mlp" else 2)(x)
        assert outs[cid].shape == want.shape
        np.testing.assert_allclose(outs[cid], want, atol=2e-3)
    assert served == [len(xs)] * world_size
    assert evaluations <= 3  # the first batch, then one per model for everything queued


class _Counting:
    """Wraps a model: counts its evaluations (the counter is shared by all servers) and
    holds the first one until ``ready()``."""

    def __init__(self, model, calls, ready):
        self.model, self.calls, self.ready = model, calls, ready

    def __call__(self, x):
        if not self.calls.get("released"):
            deadline = time.monotonic() + 10
            while not self.ready() and time.monotonic() < deadline:
                time.sleep(0.01)
            self.calls["released"] = True
        self.calls["n"] += 1
        return self.model(x)


def test_a_burst_beyond_the_queue_limit_is_told_to_retry():
    """With max_pending=2 a third query gets UNAVAILABLE ("busy, retry") at once, never a
    hang, while two wait (one in a stalled model run, one queued); both are answered."""

    def client(services):
        gate = threading.Event()

        class Slow:
            def __init__(self, model):
                self.model = model

            def __call__(self, x):
                gate.wait(5)
                return self.model(x)

        for s in services:
            s.models["mlp"] = Slow(s.models["mlp"])
        queries = [split_query(np.ones((1, 4)) * k, 2) for k in range(3)]
        with ThreadPoolExecutor(8) as pool:
            first = []
            for k, q in enumerate(queries[:2]):  # one after the other: the same order everywhere
                first.append(pool.submit(call_all, services, q, f"client-{k}"))
                time.sleep(0.3)
            start = time.monotonic()
            busy = call_all(services, queries[2], "client-9")
            waited = time.monotonic() - start
            gate.set()
            answered = [f.result() for f in first]
        return busy, waited, answered

    (busy, waited, answered), _ = serve(2, client, max_pending=2, batch_window_s=0.0)
    assert all(isinstance(b, EdgeRequestError) for b in busy)
    assert {b.refusal for b in busy} == {EdgeRefusal.UNAVAILABLE}
    assert "server busy" in busy[0].detail and waited < 1.0
    assert all(isinstance(r, InferenceShare) for rs in answered for r in rs)
