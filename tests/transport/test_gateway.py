"""The edge gateway over real gRPC on 127.0.0.1: mutual TLS with client certificates from the
job CA, refusals (anonymous, rank certificates, malformed requests, not ready), status-code
mapping, message limits, tokens, and the party service refusing client identities."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from crypten_lite._proto import edge_pb2, party_pb2
from crypten_lite.client import GrpcServerLink, expand_seed
from crypten_lite.edge.messages import (
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.errors import CommunicationError, ConfigError
from crypten_lite.transport.grpc import (
    GrpcCommunicator,
    GrpcOptions,
    client_identity,
    client_of_identity,
    issue_token,
    load_identity,
)
from crypten_lite.transport.grpc.channels import open_link
from crypten_lite.transport.grpc.edge_stub import EdgeStub
from crypten_lite.transport.grpc.edge_wire import encode_submit_request
from crypten_lite.transport.grpc.gateway import verify_token

NONCE = bytes(range(16))


class Recorder:
    """A thread-safe handler that records what it was given."""

    def __init__(
        self, fail: Exception | None = None, num_elements: int = 5, ring_bits: int = 32
    ) -> None:
        self.job = (num_elements, ring_bits)  # what round_info announces (checked on upload)
        self.lock = threading.Lock()
        self.submits: list[tuple[str, UpdateShare]] = []
        self.fail = fail

    def round_info(self, client_id: str) -> RoundInfo:
        if self.fail is not None:
            raise self.fail
        return RoundInfo(
            job_id="job",
            round=3,
            state=RoundState.OPEN,
            num_elements=self.job[0],
            ring_bits=self.job[1],
            quant=QuantSpec("int16", 0.5),
            num_servers=2,
            server_index=0,
            min_clients=2,
            model=np.arange(4, dtype=np.float32),
        )

    def submit(self, client_id: str, share: UpdateShare) -> None:
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.submits.append((client_id, share))

    def infer(self, client_id: str, query: InferenceQuery) -> InferenceShare:
        # the identity model: the output share is the input share
        if query.seed is not None:
            share = expand_seed(query.seed, int(np.prod(query.shape)), 64)
        else:
            share = query.vector
        return InferenceShare(query.query_id, query.shape, query.frac_bits, share)


def _stub(comm, paths, identity="party-0") -> EdgeStub:
    tls = load_identity(paths)
    return EdgeStub(f"127.0.0.1:{comm.port}", tls=tls, server_identity=identity)


def _share(n=5, ring_bits=32, seed=None, vector=None, round_=3):
    return UpdateShare(round_, NONCE, n, ring_bits, seed=seed, vector=vector)


def test_identity_names():
    assert client_identity(3) == "client-3"
    assert client_of_identity("client-3") == "client-3"
    for name in ("party-0", "dealer", "client-", "", "client-a b", "client-" + "x" * 80):
        assert client_of_identity(name) is None


def test_requests_before_a_handler_is_set_are_unavailable(server, certs):
    stub = _stub(server, certs[1]["client-0"])
    with pytest.raises(EdgeRequestError, match="service not ready") as info:
        stub.round_info(5.0)
    assert info.value.refusal is EdgeRefusal.UNAVAILABLE
    # the link retries UNAVAILABLE until its connect deadline, then says so
    link = GrpcServerLink(stub, timeout_s=2.0, connect_timeout_s=0.3)
    with pytest.raises(EdgeRequestError, match="still unavailable"):
        link.round_info()
    # ... and succeeds once the handler arrives while it retries
    link = GrpcServerLink(stub, timeout_s=2.0, connect_timeout_s=10.0)
    timer = threading.Timer(0.3, server.set_edge_handler, args=(Recorder(),))
    timer.start()
    assert link.round_info().round == 3
    timer.join()
    stub.close()


def test_a_good_client_round_trips_every_message(server, certs):
    handler = Recorder()
    server.set_edge_handler(handler)
    link = GrpcServerLink(_stub(server, certs[1]["client-1"]), timeout_s=20.0)
    info = link.round_info()
    handler.job = (10**6, 64)
    assert (info.job_id, info.round, info.state, info.quant) == (
        "job",
        3,
        RoundState.OPEN,
        QuantSpec("int16", 0.5),
    )
    np.testing.assert_array_equal(info.model, np.arange(4, dtype=np.float32))
    big = np.random.default_rng(0).integers(0, 2**64, 10**6, dtype=np.uint64)  # 8 MB
    size = link.submit(_share(10**6, 64, vector=big))
    assert size == len(encode_submit_request(_share(10**6, 64, vector=big))) > 8 * 10**6
    handler.job = (5, 32)
    seed = bytes(range(32))
    # round 2 + nonce 18 + num_elements 2 + ring_bits 2 + seed 34 bytes
    assert link.submit(_share(seed=seed)) == 58
    (c1, s1), (c2, s2) = handler.submits
    assert c1 == c2 == "client-1"  # from the certificate, never from the request
    np.testing.assert_array_equal(s1.vector, big)
    assert s1.vector.dtype == np.uint64 and s1.vector.flags.writeable
    assert (s2.seed, s2.vector, s2.nonce, s2.round) == (seed, None, NONCE, 3)
    x = np.random.default_rng(1).integers(0, 2**64, (2, 3), dtype=np.uint64)
    out = link.infer(InferenceQuery(b"q1", "identity", (2, 3), 16, vector=x))
    assert (out.query_id, out.shape, out.frac_bits) == (b"q1", (2, 3), 16)
    np.testing.assert_array_equal(out.share.reshape(2, 3), x)
    link.close()


def test_concurrent_clients_lose_nothing(server, certs):
    handler = Recorder(num_elements=10_000)
    server.set_edge_handler(handler)
    errors = []

    def client(index: int) -> None:
        try:
            # the link retries UNAVAILABLE (e.g. a slow TLS handshake on a busy machine)
            link = GrpcServerLink(_stub(server, certs[1][f"client-{index}"]), timeout_s=20.0)
            for k in range(5):
                vector = np.full(10_000, 100 * index + k, dtype=np.uint32)
                link.submit(_share(10_000, 32, vector=vector, round_=k))
            link.close()
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    got = sorted((c, s.round, int(s.vector[0]), int(s.vector[-1])) for c, s in handler.submits)
    assert got == sorted(
        (f"client-{i}", k, 100 * i + k, 100 * i + k) for i in range(8) for k in range(5)
    )


def test_malformed_requests_are_refused_clearly_and_others_go_on(server, certs):
    handler = Recorder()
    server.set_edge_handler(handler)
    bad = _stub(server, certs[1]["client-0"])
    good = _stub(server, certs[1]["client-1"])
    cases = {
        "vector has 12 bytes": edge_pb2.SubmitRequest(
            round=3, nonce=NONCE, num_elements=5, ring_bits=32, vector=bytes(12)
        ),
        "ring_bits must be one of": edge_pb2.SubmitRequest(
            round=3, nonce=NONCE, num_elements=5, ring_bits=16, vector=bytes(10)
        ),
        "nonce must be 16 bytes": edge_pb2.SubmitRequest(
            round=3, nonce=b"x", num_elements=5, ring_bits=32, seed=bytes(32)
        ),
        "seed must be 32 bytes": edge_pb2.SubmitRequest(
            round=3, nonce=NONCE, num_elements=5, ring_bits=32, seed=bytes(31)
        ),
        "neither a seed nor a vector": edge_pb2.SubmitRequest(
            round=3, nonce=NONCE, num_elements=5, ring_bits=32
        ),
        "num_elements must lie in": edge_pb2.SubmitRequest(
            round=3, nonce=NONCE, num_elements=2**40, ring_bits=64, seed=bytes(32)
        ),
    }
    for message, request in cases.items():
        with pytest.raises(EdgeRequestError, match=message) as info:
            bad.submit_encoded(request.SerializeToString(), 5.0)
        assert info.value.refusal is EdgeRefusal.INVALID
        assert good.submit(_share(vector=np.arange(5, dtype=np.uint32)), 5.0) > 0
    with pytest.raises(EdgeRequestError, match="not a valid protobuf") as info:
        bad.submit_encoded(b"\xff\xff\xff", 5.0)
    assert info.value.refusal is EdgeRefusal.INVALID
    with pytest.raises(EdgeRequestError, match="shape"):
        request = edge_pb2.InferRequest(
            query_id=b"q", model="m", shape=[2**40, 2**40], frac_bits=16, seed=bytes(32)
        )
        bad._call(bad._infer, request.SerializeToString(), 5.0)
    assert [c for c, _ in handler.submits] == ["client-1"] * len(cases)
    bad.close()
    good.close()


def test_handler_refusals_map_to_codes_and_other_errors_do_not_leak(server, certs):
    stub = _stub(server, certs[1]["client-0"])
    for refusal in EdgeRefusal:
        if refusal is EdgeRefusal.UNAVAILABLE:
            continue
        server.set_edge_handler(Recorder(EdgeRequestError(refusal, f"because {refusal.value}")))
        with pytest.raises(EdgeRequestError, match=f"because {refusal.value}") as info:
            stub.round_info(5.0)
        assert info.value.refusal is refusal
    server.set_edge_handler(Recorder(KeyError("secret 12345")))
    with pytest.raises(CommunicationError, match="INTERNAL: internal error") as info:
        stub.submit(_share(vector=np.arange(5, dtype=np.uint32)), 5.0)
    assert "12345" not in str(info.value)
    assert not isinstance(info.value, EdgeRequestError)
    stub.close()


def test_rank_certificates_and_anonymous_callers_are_refused(server, certs):
    ranks, clients = certs
    server.set_edge_handler(Recorder())
    for rank in (1, 2):  # party-1 and the dealer
        stub = _stub(server, ranks[rank])
        with pytest.raises(EdgeRequestError, match="not an edge client") as info:
            stub.round_info(5.0)
        assert info.value.refusal is EdgeRefusal.UNAUTHENTICATED
        stub.close()
    # no client certificate at all: the TLS handshake itself fails
    ca = load_identity(clients["client-0"]).ca_pem
    channel = grpc.secure_channel(
        f"127.0.0.1:{server.port}",
        grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.ssl_target_name_override", "party-0")],
    )
    call = channel.unary_unary(
        "/crypten_lite.v1.Edge/RoundInfo",
        request_serializer=edge_pb2.RoundInfoRequest.SerializeToString,
        response_deserializer=edge_pb2.RoundInfoReply.FromString,
    )
    with pytest.raises(grpc.RpcError) as info:
        call(edge_pb2.RoundInfoRequest(), timeout=5.0)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_the_party_service_refuses_client_identities(server, certs):
    _, clients = certs
    link = open_link(
        0, 2, f"127.0.0.1:{server.port}", load_identity(clients["client-0"]), GrpcOptions()
    )
    with pytest.raises(grpc.RpcError) as info:
        link.party.Hello(
            party_pb2.HelloRequest(session_id="gw", source=1, world_size=2), timeout=5.0
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "client-0" in info.value.details()
    link.close()


def test_messages_above_the_edge_limit_are_refused(certs):
    ranks, clients = certs
    comm = GrpcCommunicator(
        0,
        2,
        session_id="gw",
        tls=load_identity(ranks[0]),
        options=GrpcOptions(edge_max_message_bytes=1 << 20),
    )
    try:
        comm.set_edge_handler(Recorder(num_elements=1000, ring_bits=64))
        stub = _stub(comm, clients["client-0"])
        with pytest.raises(EdgeRequestError) as info:
            stub.submit(_share(300_000, 64, vector=np.zeros(300_000, np.uint64)), 5.0)
        assert info.value.refusal is EdgeRefusal.INVALID
        assert stub.submit(_share(1000, 64, vector=np.zeros(1000, np.uint64)), 5.0) > 8000
        stub.close()
    finally:
        comm.abort("test over")


def test_tokens_authenticate_plaintext_clients():
    key = bytes(range(32))
    later = time.time() + 3600
    token = issue_token(key, "client-7", "job", later)
    assert verify_token(key, "client-7", token, "job")
    assert not verify_token(key, "client-8", token, "job")
    assert not verify_token(bytes(32), "client-7", token, "job")
    comm = GrpcCommunicator(0, 2, session_id="gw", insecure_plaintext=True)
    try:
        address = f"127.0.0.1:{comm.port}"
        handler = Recorder()
        with pytest.raises(ConfigError, match="token_job_id"):
            comm.set_edge_handler(handler, token_key=key)  # a token must be bound to a job
        comm.set_edge_handler(handler, token_key=key, token_job_id="job")
        good = EdgeStub(address, tls=None, token=("client-7", token))
        assert good.submit(_share(seed=bytes(32)), 5.0) == 58
        assert handler.submits[0][0] == "client-7"
        for token_pair in (("client-8", token), ("client-7", "00" * 32), None):
            stub = EdgeStub(address, tls=None, token=token_pair)
            with pytest.raises(EdgeRequestError) as info:
                stub.round_info(5.0)
            assert info.value.refusal is EdgeRefusal.UNAUTHENTICATED
            stub.close()
        good.close()
    finally:
        comm.abort("test over")


def test_tokens_are_bound_to_their_job_and_expire():
    key = bytes(range(32))
    now = time.time()
    token = issue_token(key, "client-7", "job-a", now + 60)
    assert verify_token(key, "client-7", token, "job-a")
    assert not verify_token(key, "client-7", token, "job-b")  # another job
    assert not verify_token(key, "client-7", token, "job-a", now=now + 61)  # expired
    # the expiry is authenticated: moving it forward breaks the MAC
    forged = token.replace(str(int(now + 60)), str(int(now + 10**6)))
    assert forged != token and not verify_token(key, "client-7", forged, "job-a")
    expired = issue_token(key, "client-7", "job-a", now - 1)
    other_job = issue_token(key, "client-7", "job-b", now + 60)
    comm = GrpcCommunicator(0, 2, session_id="gw", insecure_plaintext=True)
    try:
        address = f"127.0.0.1:{comm.port}"
        comm.set_edge_handler(Recorder(), token_key=key, token_job_id="job-a")
        for bad in (expired, other_job, forged):
            stub = EdgeStub(address, tls=None, token=("client-7", bad))
            with pytest.raises(EdgeRequestError, match="invalid client token") as info:
                stub.round_info(5.0)
            assert info.value.refusal is EdgeRefusal.UNAUTHENTICATED
            stub.close()
        good = EdgeStub(address, tls=None, token=("client-7", token))
        assert good.round_info(5.0).round == 3
        good.close()
    finally:
        comm.abort("test over")


def test_a_stub_to_nowhere_fails_within_its_deadline():
    stub = EdgeStub("127.0.0.1:1", tls=None, token=("client-0", "00"))
    link = GrpcServerLink(stub, timeout_s=0.5, connect_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(EdgeRequestError, match="still unavailable"):
        link.round_info()
    assert time.monotonic() - started < 5.0
    stub.close()
