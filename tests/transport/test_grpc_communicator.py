"""GrpcCommunicator over real sockets on 127.0.0.1 (ranks as threads of this process):
matching, chunking, collectives, start-up barrier, goodbyes and aborts, and rejection of
malformed, unknown or oversized messages without a hang or a dead server thread."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.errors import (
    ConfigError,
    MessageRejectedError,
    PeerLostError,
    PeerTimeoutError,
)
from crypten_lite.transport.grpc import GrpcCommunicator, GrpcOptions, load_identity
from crypten_lite.transport.grpc.channels import open_link
from crypten_lite.transport.grpc.executor import DaemonExecutor
from crypten_lite.transport.grpc.options import PARTY_SERVICE
from crypten_lite.transport.grpc.tls import write_job_certs
from crypten_lite.transport.grpc.wire import Header, encode_frames
from tests.transport.test_grpc_support import make_comms, run_threads


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def comms3(tmp_path):
    comms = make_comms(3, tmp_path / "certs", options=GrpcOptions(chunk_bytes=1 << 18))
    yield comms
    for comm in comms:
        comm.abort("teardown")


def test_collectives_match_inprocess_semantics(comms3):
    def party(comm):
        got = comm.all_gather(np.full(5, comm.rank, dtype=np.uint64))
        return [int(g[0]) for g in got], comm.stats.snapshot()

    results = run_threads({c.rank: (lambda c=c: party(c)) for c in comms3[:3]})
    for rank in range(3):
        values, stats = results[rank]
        assert values == [0, 1, 2]
        assert (stats.rounds, stats.messages) == (1, 2)
        assert stats.bytes_sent == stats.bytes_received == 2 * 5 * 8


def test_large_messages_stream_in_chunks_and_arrive_intact(comms3, rng):
    big = rng.integers(0, 2**64, size=(700, 1000), dtype=np.uint64)  # 5.6 MB, 22 chunks
    small = [np.array([k], dtype=np.int64) for k in range(6)]

    def sender():
        comms3[0].send(1, big)
        for message in small:
            comms3[0].send(1, message)

    def receiver():
        time.sleep(0.2)  # everything is queued before the first receive
        return comms3[1].recv(0), [int(comms3[1].recv(0)[0]) for _ in small]

    out = run_threads({0: sender, 1: receiver})[1]
    np.testing.assert_array_equal(out[0], big)
    assert out[1] == list(range(6))


def test_reading_past_a_finished_peer_fails_at_once(comms3):
    def first():
        comms3[0].send(1, np.arange(3, dtype=np.uint64))
        comms3[0].close()

    def second():
        comms3[1].recv(0)
        start = time.monotonic()
        with pytest.raises(PeerLostError, match="party 0, which finished after sending 1"):
            comms3[1].recv(0)
        return time.monotonic() - start

    assert run_threads({0: first, 1: second})[1] < 5


def test_an_aborting_rank_stops_every_waiting_receive(comms3):
    def failing():
        time.sleep(0.3)
        comms3[1].abort("ValueError")

    def waiting():
        with pytest.raises(PeerLostError, match=r"lost party 1: it aborted \(ValueError\)"):
            comms3[0].recv(2)  # waits on another rank; the job is over anyway

    run_threads({0: waiting, 1: failing})


def test_barrier_times_out_naming_every_missing_peer(tmp_path):
    (comm,) = make_comms(2, tmp_path / "certs", dealer=False, connect=False)[:1]
    port = _free_port()
    start = time.monotonic()
    with comm, pytest.raises(PeerTimeoutError, match=f"party 1 at 127.0.0.1:{port}"):
        comm.connect({1: f"127.0.0.1:{port}"}, timeout_s=1.0)
    assert time.monotonic() - start < 5


def test_barrier_refuses_a_peer_from_another_session(tmp_path):
    certs = write_job_certs(tmp_path, 1)
    a = GrpcCommunicator(0, 1, session_id="job-a", tls=load_identity(certs[0]))
    b = GrpcCommunicator(1, 1, session_id="job-b", tls=load_identity(certs[1]))
    with a, b, pytest.raises(ConfigError, match="unknown session id 'job-a'"):
        a.connect({1: f"127.0.0.1:{b.port}"}, timeout_s=5)


def test_plaintext_needs_the_explicit_insecure_option():
    with pytest.raises(ConfigError, match="insecure_plaintext"):
        GrpcCommunicator(0, 1, session_id="s")


def test_an_oversized_message_is_refused_and_the_sender_told(tmp_path):
    certs = write_job_certs(tmp_path, 1)
    small = GrpcOptions(max_message_bytes=1000)
    receiver = GrpcCommunicator(0, 1, session_id="s", tls=load_identity(certs[0]), options=small)
    sender = GrpcCommunicator(1, 1, session_id="s", tls=load_identity(certs[1]), timeout_s=5)
    try:
        run_threads(
            {
                0: lambda: receiver.connect({1: f"127.0.0.1:{sender.port}"}),
                1: lambda: sender.connect({0: f"127.0.0.1:{receiver.port}"}),
            }
        )
        sender.send(0, np.zeros(1000, dtype=np.uint64))
        with pytest.raises(MessageRejectedError, match=r"party 0 refused .* exceeds the limit"):
            sender.recv(0)
        with pytest.raises(MessageRejectedError):  # closing reports it too, then aborts
            sender.close()
    finally:
        receiver.abort("teardown")
        sender.abort("teardown")


def _raw_stream(comm: GrpcCommunicator, frames: list[bytes], tls, source: int = 1):
    big = GrpcOptions(chunk_bytes=16 << 20)  # this client would send frames up to 16 MiB
    link = open_link(comm.rank, comm.world_size, f"127.0.0.1:{comm.port}", tls, big)
    try:
        return link.transfer(iter(frames), timeout=5)
    finally:
        link.close()


def _frame(session="S", source=1, destination=0, tag=0, array=None, **fields) -> bytes:
    if array is not None:
        _, frames = encode_frames(Header(session, source, destination, tag), array, 1 << 20)
        return next(frames)
    fields.setdefault("chunk_count", 1)
    env = party_pb2.Envelope(
        session_id=session, source=source, destination=destination, tag=tag, **fields
    )
    return env.SerializeToString()


@pytest.mark.parametrize(
    ("frames", "code", "text"),
    [
        ([b"\xff\xff\xff"], grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        (
            [_frame(session="other", array=np.ones(2))],
            grpc.StatusCode.FAILED_PRECONDITION,
            "unknown session id 'other'",
        ),
        (
            [_frame(source=9, array=np.ones(2))],
            grpc.StatusCode.PERMISSION_DENIED,
            "unknown sender rank 9",
        ),
        (
            [_frame(destination=1, array=np.ones(2))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "delivered to rank 0",
        ),
        (
            [_frame(dtype="|O", shape=[1], payload=b"\x00" * 8)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "dtype '|O' is not allowed",
        ),
        (
            [_frame(dtype="<u8", shape=[1 << 40], payload=b"")],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "exceeds the limit",
        ),
        (
            [_frame(dtype="<u8", shape=[0, 1 << 63], payload=b"")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "dimension 9223372036854775808 of the empty shape",
        ),
        (
            [_frame(dtype="<u8", shape=[3], payload=b"\x00" * 16)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "declare 24",
        ),
        (
            [_frame(dtype="<u8", shape=[3], chunk_count=2, payload=b"\x00" * 16)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "ended inside message 0",
        ),
        (
            [b"\x4a" + b"\x80\x80\x80\x08" + b"\x00" * (8 << 20)],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "larger than max",
        ),
        (
            [
                _frame(dtype="<u8", shape=[2], chunk_count=2, payload=b"\x00" * 8),
                _frame(chunk_count=0),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "an opening frame (chunk_count 0) must come first",
        ),
        (
            [_frame(chunk_count=0, payload=b"\x01")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "and carry no data",
        ),
    ],
    ids=[
        "garbage",
        "session",
        "sender",
        "destination",
        "dtype",
        "oversized",
        "empty-overflow",
        "shape",
        "truncated",
        "frame-limit",
        "late-opening-frame",
        "opening-frame-with-data",
    ],
)
def test_bad_streams_are_refused_and_the_server_keeps_serving(tmp_path, frames, code, text):
    certs = write_job_certs(tmp_path, 1)
    tls = [load_identity(certs[r]) for r in (0, 1)]
    comms = [GrpcCommunicator(r, 1, session_id="S", tls=tls[r], timeout_s=5) for r in (0, 1)]
    try:
        # before the real stream opens: a peer rank may hold one live stream at a time
        with pytest.raises(grpc.RpcError) as info:
            _raw_stream(comms[0], frames, tls[1])
        assert info.value.code() == code
        assert text in info.value.details()
        run_threads(
            {
                c.rank: (lambda c=c: c.connect({1 - c.rank: f"127.0.0.1:{comms[1 - c.rank].port}"}))
                for c in comms
            }
        )
        comms[1].send(0, np.arange(4, dtype=np.uint64))  # the real stream still works
        np.testing.assert_array_equal(comms[0].recv(1), np.arange(4, dtype=np.uint64))
    finally:
        for comm in comms:
            comm.abort("teardown")


def test_a_process_that_never_closes_its_communicators_still_exits():
    code = (
        "import numpy as np\n"
        "from tests.transport.test_grpc_support import make_comms\n"
        "comms = make_comms(1, None)\n"
        "comms[0].send(1, np.ones(3))\n"
        "print(int(comms[1].recv(0).sum()))\n"  # exits with both servers holding a stream
    )
    root = Path(__file__).resolve().parents[2]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"
    assert time.monotonic() - start < 15


def test_the_server_pool_never_parks_a_task_while_a_thread_is_idle():
    pool = DaemonExecutor(3, "test")
    release = threading.Event()
    blockers = [pool.submit(release.wait, 10) for _ in range(2)]  # two long-lived streams
    assert pool.submit(lambda: 42).result(timeout=5) == 42
    assert pool.submit(lambda: 43).result(timeout=5) == 43  # the third thread is reused
    backlog = [pool.submit(lambda k=k: k) for k in range(5)]
    assert [f.result(timeout=5) for f in backlog] == list(range(5))
    release.set()
    assert all(f.result(timeout=5) for f in blockers)
    pool.shutdown()


def test_the_standard_health_service_reports_serving_then_a_clean_goodbye(tmp_path):
    certs = write_job_certs(tmp_path, 1)
    comm = GrpcCommunicator(0, 1, session_id="S", tls=load_identity(certs[0]))
    link = open_link(0, 1, f"127.0.0.1:{comm.port}", load_identity(certs[1]), GrpcOptions())
    try:
        request = health_pb2.HealthCheckRequest(service=PARTY_SERVICE)
        assert (
            link.health.Check(request, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        )
        with pytest.raises(grpc.RpcError) as unknown:
            link.health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        watch = link.health.Watch(request, timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        comm.close()
        assert [u.status for u in watch] == [health_pb2.HealthCheckResponse.NOT_SERVING]
    finally:
        link.close()
        comm.abort("teardown")


def test_both_ends_accept_large_http2_frames():
    # One streamed chunk crosses in a few frames instead of 16 KiB ones; the value must be a
    # valid SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 4.2), or gRPC would clamp it silently.
    options = GrpcOptions()
    for listed in (options.channel_options("party-1"), options.server_options()):
        sizes = [value for key, value in listed if key == "grpc.http2.max_frame_size"]
        assert len(sizes) == 1
        assert isinstance(sizes[0], int) and options.chunk_bytes <= sizes[0] <= 2**24 - 1


def test_a_plaintext_stream_with_nothing_to_send_survives_the_first_frame_deadline():
    # Without TLS a server knows a stream's sender only from its first frame and cancels a
    # stream whose first frame does not come within request_timeout_s. Party 0 never asks
    # the dealer for anything (its triples are seeded): its stream to the dealer opens with an
    # announcing frame, so the job lives on after the deadline (before: "lost dealer").
    options = GrpcOptions(request_timeout_s=1.0)
    comms = make_comms(2, None, options=options)
    try:
        time.sleep(2.5)  # idle past the deadline on every stream
        run_threads(
            {
                0: lambda: comms[0].exchange({1: np.arange(3, dtype=np.uint64)}, [1]),
                1: lambda: comms[1].exchange({0: np.arange(3, dtype=np.uint64)}, [0]),
                2: lambda: comms[2].send(0, np.ones(2, dtype=np.uint64)),
            }
        )
        np.testing.assert_array_equal(comms[0].recv(2), np.ones(2, dtype=np.uint64))
        for c in comms:
            c.close()
    finally:
        for c in comms:
            c.abort("teardown")
