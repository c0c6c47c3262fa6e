"""Long polls of the SecAgg state: a request waits for the stage to change instead of
polling, holds no edge-call slot while it waits (so waiting clients cannot starve uploads),
and is answered at once beyond the waiting budget."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from crypten_lite.client.links import DirectServerLink
from crypten_lite.client.secagg_client import SecAggClient
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError
from crypten_lite.edge.secagg_crypto import RoundKeys
from crypten_lite.edge.secagg_messages import KeyAdvert, SecAggStage
from crypten_lite.fl.secagg import SecAggConfig, SecAggService
from crypten_lite.transport.grpc import (
    GrpcCommunicator,
    GrpcOptions,
    load_identity,
    write_client_certs,
    write_job_certs,
)
from crypten_lite.transport.grpc.edge_stub import EdgeStub


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs")
    ranks = write_job_certs(out, 1)
    ca = ((out / "ca.pem").read_bytes(), (out / "ca.key").read_bytes())
    return ranks, write_client_certs(out, 4, ca=ca)


def _server(certs, **limits):
    ranks, _ = certs
    options = GrpcOptions(**limits)
    comm = GrpcCommunicator(0, 1, session_id="lp", tls=load_identity(ranks[0]), timeout_s=5,
                            options=options)
    service = SecAggService(SecAggConfig("lp", 8, min_clients=3))
    comm.set_edge_handler(service)
    service.open_round(np.zeros(0))
    return comm, service


def _stub(comm, certs, i: int) -> EdgeStub:
    _, clients = certs
    return EdgeStub(f"127.0.0.1:{comm.port}", tls=load_identity(clients[f"client-{i}"]),
                    server_identity="party-0")


def _advert() -> KeyAdvert:
    keys = RoundKeys()
    return KeyAdvert(1, keys.cipher_public, keys.mask_public)


def _long_poll(stub: EdgeStub, out: dict, wait_s: float = 5.0) -> threading.Thread:
    def run() -> None:
        start = time.monotonic()
        out["state"] = stub.secagg_state(1, 5.0, SecAggStage.ADVERTISE, wait_s)
        out["took"] = time.monotonic() - start

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiting_state_request_holds_no_call_slot_and_returns_on_the_change(certs):
    comm, service = _server(certs, edge_max_concurrent_calls=1, edge_max_calls_per_client=1,
                            edge_max_waiting_calls=4)
    try:
        stubs = [_stub(comm, certs, i) for i in range(3)]
        for stub in stubs:
            stub.advertise(_advert(), 5.0)
        out: dict = {}
        thread = _long_poll(stubs[0], out)
        time.sleep(0.5)
        assert thread.is_alive()  # waiting for the stage to change
        # the only call slot is free: another client's call is served, not "server busy"
        assert stubs[1].round_info(5.0).round == 1
        service.close_stage()  # ADVERTISE -> SHARE_KEYS
        thread.join(5.0)
        assert out["state"].stage is SecAggStage.SHARE_KEYS and out["state"].index >= 1
        assert out["took"] < 3.0
    finally:
        comm.abort("test over")


def test_beyond_the_waiting_budget_a_state_request_is_answered_at_once(certs):
    comm, service = _server(certs, edge_max_waiting_calls=1)
    try:
        stubs = [_stub(comm, certs, i) for i in range(2)]
        first: dict = {}
        thread = _long_poll(stubs[0], first)
        time.sleep(0.5)
        start = time.monotonic()
        state = stubs[1].secagg_state(1, 5.0, SecAggStage.ADVERTISE, 5.0)
        assert state.stage is SecAggStage.ADVERTISE and time.monotonic() - start < 2.0
        service.close_stage()  # fewer than 3 advertised: FAILED, which also ends the wait
        thread.join(5.0)
        assert first["state"].stage is SecAggStage.FAILED
    finally:
        comm.abort("test over")


def test_without_a_waiting_budget_a_long_poll_is_answered_at_once(certs):
    """``edge_max_waiting_calls=0``: a long poll would hold the only call slot while it
    waits, so it is answered at once instead (the client then polls with backoff)."""
    comm, _ = _server(certs, edge_max_concurrent_calls=1, edge_max_calls_per_client=1,
                      edge_max_waiting_calls=0)
    try:
        stubs = [_stub(comm, certs, i) for i in range(2)]
        start = time.monotonic()
        stubs[0].secagg_state(1, 5.0, SecAggStage.ADVERTISE, 3.0)
        assert time.monotonic() - start < 2.0  # no waiting without a budget
    finally:
        comm.abort("test over")


def test_state_for_waits_only_while_the_stage_is_the_known_one():
    service = SecAggService(SecAggConfig("lp", 8, min_clients=3))
    service.open_round(np.zeros(0))
    start = time.monotonic()
    state = service.secagg_state("client-0", 1, SecAggStage.SHARE_KEYS, 5.0)
    assert state.stage is SecAggStage.ADVERTISE and time.monotonic() - start < 1.0
    start = time.monotonic()
    state = service.secagg_state("client-0", 1, SecAggStage.ADVERTISE, 0.3)
    assert state.stage is SecAggStage.ADVERTISE and 0.25 < time.monotonic() - start < 2.0


def test_a_threaded_round_needs_about_one_state_request_per_stage():
    n, m = 5, 64
    service = SecAggService(SecAggConfig("lp", m, min_clients=3, expected_clients=n,
                                         collect_timeout_s=10))
    clients = [SecAggClient(DirectServerLink(service, f"client-{i}")) for i in range(n)]
    updates = np.random.default_rng(0).uniform(-0.5, 0.5, (n, m))
    reports: list = [None] * n

    def client(i: int) -> None:
        info = clients[i].wait_for_round(after=0, timeout=10)
        reports[i] = clients[i].run_round(updates[i], info, timeout=20)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    result = service.run_round(np.zeros(0))
    for t in threads:
        t.join(20)
    assert len(result.clients) == n
    # 4 stages, each one long poll that returns on the change (a stage reached while the
    # client was still working is answered at once); polling at 50 ms doubling took ~17
    assert all(r.polls <= 6 for r in reports), [r.polls for r in reports]


def test_a_malformed_long_poll_is_refused():
    from crypten_lite._proto import edge_pb2
    from crypten_lite.transport.grpc.secagg_wire import decode_state_request

    bad = edge_pb2.SecAggStateRequest(round=1, known_stage="later").SerializeToString()
    with pytest.raises(EdgeRequestError) as info:
        decode_state_request(bad)
    assert info.value.refusal is EdgeRefusal.INVALID and "unknown stage" in str(info.value)
    too_long = edge_pb2.SecAggStateRequest(round=1, wait_ms=10**9).SerializeToString()
    with pytest.raises(EdgeRequestError, match="wait_ms"):
        decode_state_request(too_long)
