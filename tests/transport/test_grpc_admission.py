"""Admission control and bounded buffering of a rank's server (loopback only, bounded load):
callers are checked before a stream is read, idle callers cannot starve the party's own
calls, one live stream per peer rank, consecutive tags and a per-peer byte budget, edge
uploads checked against the job before their vector is copied."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from crypten_lite._proto import edge_pb2, health_pb2, party_pb2
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, UpdateShare
from crypten_lite.errors import MessageRejectedError
from crypten_lite.transport.grpc import GrpcCommunicator, GrpcOptions, load_identity
from crypten_lite.transport.grpc.channels import channel_credentials, open_link
from crypten_lite.transport.grpc.edge_stub import EdgeStub
from crypten_lite.transport.grpc.gateway import EdgeGateway
from crypten_lite.transport.grpc.options import EDGE_SERVICE, PARTY_SERVICE
from crypten_lite.transport.grpc.tls import write_client_certs, write_job_certs
from crypten_lite.transport.grpc.wire import Header, encode_frames
from tests.transport.test_gateway import NONCE, Recorder
from tests.transport.test_grpc_support import run_threads

_CHECK = health_pb2.HealthCheckRequest(service=PARTY_SERVICE)


@pytest.fixture
def job(tmp_path):
    """Certificates of a 2-party job (+ dealer) and 4 edge clients."""
    ranks = write_job_certs(tmp_path, 2)
    ca = ((tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca.key").read_bytes())
    clients = write_client_certs(tmp_path, 4, ca=ca)
    return {r: load_identity(p) for r, p in ranks.items()}, {
        c: load_identity(p) for c, p in clients.items()
    }


class _Idle:
    """Open calls that send nothing until released (or cancelled)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[grpc.Future] = []
        self.channels: list[grpc.Channel] = []

    def requests(self) -> Iterator[bytes]:
        self.release.wait(30)
        return
        yield b""  # pragma: no cover - a generator that yields nothing

    def open(self, address: str, tls, method: str, count: int, target: str = "party-0") -> None:
        channel = grpc.secure_channel(
            address,
            channel_credentials(tls),
            options=[("grpc.ssl_target_name_override", target)],
        )
        self.channels.append(channel)
        call = channel.stream_unary(method, response_deserializer=lambda b: b)
        self.calls += [call.future(self.requests(), timeout=30) for _ in range(count)]

    def close(self) -> None:
        self.release.set()
        for call in self.calls:
            call.cancel()
        for channel in self.channels:
            channel.close()


def _timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def test_idle_client_streams_do_not_starve_health_hello_or_party_streams(job):
    ranks, clients = job
    options = GrpcOptions(edge_request_timeout_s=1.5, request_timeout_s=1.5)
    comms = [
        GrpcCommunicator(r, 2, session_id="S", tls=ranks[r], timeout_s=5, options=options)
        for r in (0, 1)
    ]
    idle = _Idle()
    try:
        address = f"127.0.0.1:{comms[0].port}"
        comms[0].set_edge_handler(Recorder())
        # 40 idle streams with client certificates, across the methods a client can reach
        for index, (method, count) in enumerate(
            (
                (f"/{PARTY_SERVICE}/Transfer", 16),
                (f"/{EDGE_SERVICE}/Submit", 12),
                (f"/{PARTY_SERVICE}/Hello", 6),
                ("/grpc.health.v1.Health/Check", 6),
            )
        ):
            idle.open(address, clients[f"client-{index}"], method, count)
        time.sleep(0.5)
        # Transfer and Hello from a non-party certificate: refused at once, nothing read
        refused = [c.exception(timeout=2) for c in idle.calls[:16]]
        assert {e.code() for e in refused} == {grpc.StatusCode.PERMISSION_DENIED}
        assert "is not a peer rank" in refused[0].details()
        # edge: 2 slots per client are held, the others refused at once as busy (retryable)
        busy = [c for c in idle.calls[16:28] if c.done()]
        assert len(busy) == 10
        assert {c.exception().code() for c in busy} == {grpc.StatusCode.UNAVAILABLE}
        # the party's own calls still get threads, at once
        link = open_link(0, 2, address, ranks[1], options)
        hello = party_pb2.HelloRequest(session_id="S", source=1, world_size=2)
        assert _timed(lambda: link.health.Check(_CHECK, timeout=2)) < 2
        assert _timed(lambda: link.party.Hello(hello, timeout=2)) < 2
        link.close()
        run_threads(
            {
                c.rank: (lambda c=c: c.connect({1 - c.rank: f"127.0.0.1:{comms[1 - c.rank].port}"}))
                for c in comms
            }
        )
        comms[1].send(0, np.arange(3, dtype=np.uint64))
        np.testing.assert_array_equal(comms[0].recv(1), np.arange(3, dtype=np.uint64))
        # the held edge slots are cancelled after edge_request_timeout_s; clients get in again
        time.sleep(1.5)
        stub = EdgeStub(address, tls=clients["client-1"], server_identity="party-0")
        assert stub.round_info(5.0).round == 3
        stub.close()
        assert comms[0]._gateway.limiter.used == 0
    finally:
        idle.close()
        for comm in comms:
            comm.abort("teardown")


def _frames(source: int, tag: int, array: np.ndarray, session: str = "S") -> list[bytes]:
    _, frames = encode_frames(Header(session, source, 0, tag), array, 1 << 18)
    return list(frames)


def _pair(tmp_path, options: GrpcOptions | None = None):
    certs = write_job_certs(tmp_path, 1)
    tls = [load_identity(certs[r]) for r in (0, 1)]
    comms = [
        GrpcCommunicator(r, 1, session_id="S", tls=tls[r], timeout_s=5, options=options)
        for r in (0, 1)
    ]
    return tls, comms


def _connect(comms) -> None:
    run_threads(
        {
            c.rank: (lambda c=c: c.connect({1 - c.rank: f"127.0.0.1:{comms[1 - c.rank].port}"}))
            for c in comms
        }
    )


def test_a_second_transfer_stream_from_the_same_rank_is_refused(tmp_path):
    tls, comms = _pair(tmp_path)
    try:
        _connect(comms)  # rank 1 now holds its stream to rank 0
        link = open_link(0, 1, f"127.0.0.1:{comms[0].port}", tls[1], GrpcOptions())
        with pytest.raises(grpc.RpcError) as info:
            link.transfer(iter(_frames(1, 0, np.ones(2))), timeout=5)
        link.close()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "already has a live Transfer stream" in info.value.details()
        comms[1].send(0, np.arange(4, dtype=np.uint64))  # the first stream still works
        np.testing.assert_array_equal(comms[0].recv(1), np.arange(4, dtype=np.uint64))
    finally:
        for comm in comms:
            comm.abort("teardown")


def test_a_peer_skipping_ahead_in_tags_is_refused_and_marked_faulty(tmp_path):
    tls, comms = _pair(tmp_path)
    try:
        link = open_link(0, 1, f"127.0.0.1:{comms[0].port}", tls[1], GrpcOptions())
        frames = _frames(1, 0, np.ones(2)) + _frames(1, 10**9, np.ones(2))
        with pytest.raises(grpc.RpcError) as info:
            link.transfer(iter(frames), timeout=5)
        link.close()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "message 1000000000 from dealer (rank 1)" in info.value.details()
        _connect(comms)
        np.testing.assert_array_equal(comms[0].recv(1), np.ones(2))  # message 0 was fine
        start = time.monotonic()
        with pytest.raises(MessageRejectedError, match="consecutive tags and the next one is 1"):
            comms[0].recv(1)
        assert time.monotonic() - start < 1
    finally:
        for comm in comms:
            comm.abort("teardown")


def test_a_peer_running_ahead_is_held_to_the_byte_budget_and_loses_nothing(tmp_path):
    budget = 1 << 20
    _, comms = _pair(tmp_path, GrpcOptions(max_buffered_bytes=budget, chunk_bytes=1 << 18))
    try:
        _connect(comms)
        message = 256 << 10
        for k in range(40):  # 10 MiB the receiver has not asked for yet
            comms[1].send(0, np.full(message // 8, k, dtype=np.uint64))
        time.sleep(1.0)
        held = comms[0]._mailbox.buffered(1)
        assert 0 < held <= budget + message
        for k in range(40):
            got = comms[0].recv(1)
            assert got.shape == (message // 8,) and int(got[0]) == int(got[-1]) == k
        assert comms[0]._mailbox.buffered(1) == 0
    finally:
        for comm in comms:
            comm.abort("teardown")


class _Context:
    """Enough of a ServicerContext to call the gateway directly."""

    def __init__(self, identity: bytes = b"client-1") -> None:
        self.identity = identity
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def auth_context(self):
        return {"x509_common_name": [self.identity]}

    def invocation_metadata(self):
        return ()

    def peer(self) -> str:
        return "test"

    def cancel(self) -> None:
        pass

    def abort(self, code, details):
        self.code, self.details = code, details
        raise RuntimeError("aborted")


def test_a_wrong_length_upload_is_refused_before_its_vector_is_copied():
    gateway = EdgeGateway(tls=True, max_message_bytes=64 << 20)
    gateway.set_handler(Recorder(num_elements=5, ring_bits=32))
    n = (60 << 20) // 8  # a 60 MiB vector, well-formed but not this job's length
    request = edge_pb2.SubmitRequest(
        round=3, nonce=NONCE, num_elements=n, ring_bits=64, vector=bytes(8 * n)
    ).SerializeToString()
    tracemalloc.start()
    try:
        context = _Context()
        with pytest.raises(RuntimeError, match="aborted"):
            gateway.Submit(iter([request]), context)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "this job takes 5 in a 32-bit ring" in context.details
    assert peak < (4 << 20)  # nothing near the 60 MiB vector was allocated
    assert gateway.limiter.used == 0


def test_a_good_upload_is_copied_once_and_stored(tmp_path):
    handler = Recorder(num_elements=1000, ring_bits=64)
    gateway = EdgeGateway(tls=True)
    gateway.set_handler(handler)
    vector = np.arange(1000, dtype=np.uint64)
    request = edge_pb2.SubmitRequest(
        round=3, nonce=NONCE, num_elements=1000, ring_bits=64, vector=vector.tobytes()
    ).SerializeToString()
    gateway.Submit(iter([request]), _Context())
    client, share = handler.submits[0]
    assert client == "client-1" and isinstance(share, UpdateShare)
    np.testing.assert_array_equal(share.vector, vector)
    assert share.vector.flags.writeable


def test_an_edge_client_over_its_concurrency_limit_is_told_to_retry(job):
    ranks, clients = job
    comm = GrpcCommunicator(0, 2, session_id="S", tls=ranks[0], timeout_s=5)
    idle = _Idle()
    try:
        comm.set_edge_handler(Recorder())
        address = f"127.0.0.1:{comm.port}"
        idle.open(address, clients["client-2"], f"/{EDGE_SERVICE}/RoundInfo", 2)
        time.sleep(0.3)
        stub = EdgeStub(address, tls=clients["client-2"], server_identity="party-0")
        with pytest.raises(EdgeRequestError, match="server busy") as info:
            stub.round_info(5.0)
        assert info.value.refusal is EdgeRefusal.UNAVAILABLE
        other = EdgeStub(address, tls=clients["client-3"], server_identity="party-0")
        assert other.round_info(5.0).round == 3  # another client is not affected
        stub.close()
        other.close()
    finally:
        idle.close()
        comm.abort("teardown")


def test_mailbox_admits_consecutive_tags_within_the_byte_budget():
    from crypten_lite.transport.grpc.mailbox import Mailbox

    box = Mailbox(0, 2, "s", max_buffered_bytes=100)
    assert box.admit(1, 0, 80)
    box.put(1, 0, np.zeros(10, np.uint64), admitted=True)
    admitted = threading.Event()

    def second() -> None:
        box.admit(1, 1, 80)  # 80 + 80 > 100: waits until message 0 is taken
        admitted.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not admitted.wait(0.3)
    box.take(1, 0, 1.0)
    assert admitted.wait(2.0)
    thread.join()
    assert box.buffered(1) == 80
    with pytest.raises(MessageRejectedError, match=r"message 5 from party 1: .* next one is 2"):
        box.admit(1, 5, 8)
    with pytest.raises(MessageRejectedError, match="next one is 2"):
        box.take(1, 1, 0.1)  # nothing stored for 1: the fault is raised


def test_watchdog_cancel_is_cheap_and_the_heap_stays_small():
    """Every edge call schedules a read deadline and cancels it; cancelled entries used to
    stay in the heap for the whole timeout and each cancel scanned them all, so a call cost
    grew with the calls of the last minute (0.43 ms of gateway CPU per call at ~2000 calls).
    Now the heap is compacted and live callbacks still fire."""
    from crypten_lite.transport.grpc.admission import Watchdog

    dog = Watchdog("test-watchdog")
    start = time.perf_counter()
    for _ in range(20_000):
        dog.cancel(dog.schedule(60.0, lambda: None))
    assert dog.pending <= 130
    assert time.perf_counter() - start < 2.0
    fired = threading.Event()
    dog.schedule(0.05, fired.set)
    cancelled = threading.Event()
    dog.cancel(dog.schedule(0.05, cancelled.set))
    assert fired.wait(2.0) and not cancelled.wait(0.2)
