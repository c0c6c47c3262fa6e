"""The SecAgg stages over real gRPC on 127.0.0.1 with mutual TLS: each RPC reaches a
SecAggHandler with the certificate's client id and the decoded message, refusals come back
as sent, a masked vector that disagrees with the job is refused before the handler sees
it, the wrong kind of call is refused INVALID; and the links (gRPC and in-process) count
the same bytes and retry uploads on UNAVAILABLE only."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from crypten_lite.client.links import DirectServerLink, GrpcServerLink
from crypten_lite.edge.messages import (
    EdgeRefusal,
    EdgeRequestError,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.edge.secagg_crypto import KEY_SIZE, SEALED_SIZE
from crypten_lite.edge.secagg_messages import (
    EncryptedShare,
    KeyAdvert,
    MaskedUpload,
    NeighbourKey,
    SecAggStage,
    SecAggState,
    ShareKeysUpload,
    UnmaskUpload,
)
from crypten_lite.edge.shamir import SHARE_SIZE
from crypten_lite.errors import CommunicationError, PeerTimeoutError
from crypten_lite.transport.grpc import load_identity
from crypten_lite.transport.grpc.edge_stub import EdgeStub
from crypten_lite.transport.grpc.secagg_wire import (
    encode_advertise,
    encode_masked_upload,
    encode_share_keys,
    encode_state_reply,
    encode_unmask,
)

KEY_A, KEY_B = bytes(range(KEY_SIZE)), bytes(range(1, KEY_SIZE + 1))
SEALED = bytes(SEALED_SIZE)
SHARE = bytes(range(SHARE_SIZE))
ADVERT = KeyAdvert(5, KEY_A, KEY_B)
SHARES = ShareKeysUpload(5, bytes(32), (EncryptedShare(2, 1, SEALED), EncryptedShare(2, 3, SEALED)))
UNMASK = UnmaskUpload(5, seed_shares=((1, SHARE),), key_shares=((3, SHARE),))


def _masked(n: int = 6, ring_bits: int = 64) -> MaskedUpload:
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    return MaskedUpload(5, n, ring_bits, np.arange(n, dtype=dtype) * 3, complaints=(3,))


def _state(round_number: int) -> SecAggState:
    return SecAggState(
        round=round_number,
        stage=SecAggStage.MASKED_INPUT,
        index=2,
        threshold=2,
        neighbours=(NeighbourKey(1, KEY_A, KEY_B), NeighbourKey(3, KEY_B, KEY_A)),
        shared=(1, 3),
        inbox=(EncryptedShare(1, 2, SEALED), EncryptedShare(3, 2, SEALED)),
    )


class FakeSecAgg:
    """A thread-safe SecAggHandler that records (method, client id, message)."""

    def __init__(self, fail: Exception | None = None, num_elements: int = 6,
                 ring_bits: int = 64) -> None:
        self.job = (num_elements, ring_bits)
        self.fail = fail
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, object]] = []

    def _record(self, method: str, client_id: str, message: object) -> None:
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.calls.append((method, client_id, message))

    def round_info(self, client_id: str) -> RoundInfo:
        return RoundInfo(
            job_id="job",
            round=5,
            state=RoundState.OPEN,
            num_elements=self.job[0],
            ring_bits=self.job[1],
            quant=QuantSpec("int16", 1.0),
            num_servers=1,
            server_index=0,
            min_clients=3,
        )

    def secagg_state(
        self, client_id: str, round_number: int, known=None, wait_s: float = 0.0
    ) -> SecAggState:
        self._record("secagg_state", client_id, round_number)
        return _state(round_number)

    def advertise(self, client_id: str, advert: KeyAdvert) -> None:
        self._record("advertise", client_id, advert)

    def share_keys(self, client_id: str, upload: ShareKeysUpload) -> None:
        self._record("share_keys", client_id, upload)

    def submit_masked(self, client_id: str, upload: MaskedUpload) -> None:
        self._record("submit_masked", client_id, upload)

    def unmask(self, client_id: str, upload: UnmaskUpload) -> None:
        self._record("unmask", client_id, upload)


class Aggregation:
    """A multi-server AggregationHandler (serves no SecAgg stage)."""

    def round_info(self, client_id: str) -> RoundInfo:
        return FakeSecAgg().round_info(client_id)

    def submit(self, client_id: str, share: UpdateShare) -> None:
        raise AssertionError("not reached")




def _stub(comm, paths) -> EdgeStub:
    return EdgeStub(f"127.0.0.1:{comm.port}", tls=load_identity(paths), server_identity="party-0")


def _every_call(stub: EdgeStub):
    """Each SecAgg call of ``stub`` with its name, as a zero-argument function."""
    return {
        "secagg_state": lambda: stub.secagg_state(5, 5.0),
        "advertise": lambda: stub.advertise(ADVERT, 5.0),
        "share_keys": lambda: stub.share_keys(SHARES, 5.0),
        "submit_masked": lambda: stub.submit_masked(_masked(), 5.0),
        "unmask": lambda: stub.unmask(UNMASK, 5.0),
    }


def test_each_stage_reaches_the_handler_as_the_authenticated_client(server, certs):
    handler = FakeSecAgg()
    server.set_edge_handler(handler)
    link = GrpcServerLink(_stub(server, certs[1]["client-2"]), timeout_s=10.0)
    info = link.round_info()  # RoundInfo is served by a SecAggHandler too
    assert (info.round, info.num_servers, info.num_elements) == (5, 1, 6)
    assert link.secagg_state(5) == _state(5)
    assert link.received_bytes == len(encode_state_reply(_state(5))) > 0
    link.secagg_state(6)
    assert link.received_bytes == len(encode_state_reply(_state(5))) * 2
    assert link.advertise(ADVERT) == len(encode_advertise(ADVERT))
    assert link.share_keys(SHARES) == len(encode_share_keys(SHARES))
    masked = _masked()
    assert link.submit_masked(masked) == len(encode_masked_upload(masked)) > 6 * 8
    assert link.unmask(UNMASK) == len(encode_unmask(UNMASK))
    link.close()
    methods = [m for m, _, _ in handler.calls]
    assert methods == ["secagg_state", "secagg_state", "advertise", "share_keys",
                       "submit_masked", "unmask"]
    assert {c for _, c, _ in handler.calls} == {"client-2"}  # from the certificate
    received = {m: msg for m, _, msg in handler.calls}
    assert received["secagg_state"] == 6
    assert (received["advertise"], received["share_keys"], received["unmask"]) == (
        ADVERT, SHARES, UNMASK
    )
    got = received["submit_masked"]
    assert isinstance(got, MaskedUpload)
    assert (got.round, got.num_elements, got.ring_bits, got.complaints) == (5, 6, 64, (3,))
    assert got.vector.dtype == np.uint64 and got.vector.flags.writeable
    np.testing.assert_array_equal(got.vector, masked.vector)


def test_handler_refusals_arrive_as_sent(server, certs):
    stub = _stub(server, certs[1]["client-0"])
    for refusal in EdgeRefusal:
        server.set_edge_handler(FakeSecAgg(EdgeRequestError(refusal, f"no: {refusal.value}")))
        for name, call in _every_call(stub).items():
            with pytest.raises(EdgeRequestError, match=f"no: {refusal.value}") as info:
                call()
            assert info.value.refusal is refusal, name
            assert info.value.detail == f"no: {refusal.value}"
    server.set_edge_handler(FakeSecAgg(KeyError("secret 12345")))
    with pytest.raises(CommunicationError, match="INTERNAL: internal error") as err:
        stub.advertise(ADVERT, 5.0)
    assert "12345" not in str(err.value) and not isinstance(err.value, EdgeRequestError)
    stub.close()


def test_a_masked_vector_that_disagrees_with_the_job_is_refused_before_the_handler(
    server, certs
):
    handler = FakeSecAgg(num_elements=6, ring_bits=64)
    server.set_edge_handler(handler)
    stub = _stub(server, certs[1]["client-0"])
    for upload, match in (
        (_masked(7, 64), "declares 7 elements in a 64-bit ring; this job takes 6"),
        (_masked(6, 32), "declares 6 elements in a 32-bit ring; this job takes 6 in a 64-bit"),
    ):
        with pytest.raises(EdgeRequestError, match=match) as info:
            stub.submit_masked(upload, 5.0)
        assert info.value.refusal is EdgeRefusal.INVALID
    assert handler.calls == []
    assert stub.submit_masked(_masked(6, 64), 5.0) > 0
    assert [m for m, _, _ in handler.calls] == ["submit_masked"]
    stub.close()


def test_malformed_requests_are_refused_before_the_handler(server, certs):
    handler = FakeSecAgg()
    server.set_edge_handler(handler)
    stub = _stub(server, certs[1]["client-0"])
    bad_advert = encode_advertise(ADVERT).replace(KEY_B, KEY_B[:31])  # length prefix now lies
    cases = (
        ("Advertise", b"\x12\x1f" + KEY_A[:31], "cipher_public must be 32 bytes, got 31"),
        ("Advertise", bad_advert, "not a valid protobuf message"),
        ("ShareKeys", b"\xff\xff\xff", "not a valid protobuf message"),
        ("SubmitMasked", b"\x18\x10", "ring_bits must be one of"),
        ("Unmask", b"\x12\x02\x08\x00", "an index in seed_shares must be"),
    )
    for method, request, match in cases:
        with pytest.raises(EdgeRequestError, match=match) as info:
            stub.secagg_upload_encoded(method, request, 5.0)
        assert info.value.refusal is EdgeRefusal.INVALID, method
    assert handler.calls == []
    stub.close()


def test_calls_of_the_wrong_kind_are_refused_clearly(server, certs):
    stub = _stub(server, certs[1]["client-0"])
    server.set_edge_handler(FakeSecAgg())
    share = UpdateShare(5, bytes(16), 6, 64, seed=bytes(32))
    with pytest.raises(EdgeRequestError, match=r"shared uploads \(Submit\) are not served") as info:
        stub.submit(share, 5.0)
    assert info.value.refusal is EdgeRefusal.INVALID
    server.set_edge_handler(Aggregation())
    assert stub.round_info(5.0).round == 5
    for name, call in _every_call(stub).items():
        with pytest.raises(EdgeRequestError, match="SecAgg stages are not served") as info:
            call()
        assert info.value.refusal is EdgeRefusal.INVALID, name
    stub.close()


def test_a_malformed_handler_state_is_an_internal_error(server, certs):
    class Broken(FakeSecAgg):
        def secagg_state(
            self, client_id: str, round_number: int, known=None, wait_s: float = 0.0
        ) -> SecAggState:
            return SecAggState(round_number, SecAggStage.UNMASK, dropped=(0,))

    server.set_edge_handler(Broken())
    stub = _stub(server, certs[1]["client-0"])
    with pytest.raises(CommunicationError, match="INTERNAL: internal error") as info:
        stub.secagg_state(5, 5.0)
    assert not isinstance(info.value, EdgeRequestError)
    stub.close()


# -- links ---------------------------------------------------------------------------------------


def test_the_direct_link_validates_and_counts_like_the_wire():
    handler = FakeSecAgg()
    link = DirectServerLink(handler, "client-1")
    assert link.round_info().round == 5
    assert link.secagg_state(5) == _state(5)
    assert link.received_bytes == len(encode_state_reply(_state(5)))
    assert link.advertise(ADVERT) == len(encode_advertise(ADVERT))
    assert link.share_keys(SHARES) == len(encode_share_keys(SHARES))
    assert link.submit_masked(_masked()) == len(encode_masked_upload(_masked()))
    assert link.unmask(UNMASK) == len(encode_unmask(UNMASK))
    assert [(m, c) for m, c, _ in handler.calls] == [
        ("secagg_state", "client-1"),
        ("advertise", "client-1"),
        ("share_keys", "client-1"),
        ("submit_masked", "client-1"),
        ("unmask", "client-1"),
    ]
    with pytest.raises(EdgeRequestError, match="mask_public must be 32 bytes"):
        link.advertise(KeyAdvert(5, KEY_A, b"short"))
    with pytest.raises(EdgeRequestError, match="SecAgg stages are not served"):
        DirectServerLink(Aggregation(), "client-1").secagg_state(5)
    assert len(handler.calls) == 5  # the refused advert never reached the handler


class _FlakyStub:
    """A stub whose SecAgg calls first fail with ``error`` ``failures`` times."""

    address = "fake:0"

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures, self.calls = error, failures, 0

    def _attempt(self, result):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return result

    def secagg_state_sized(self, round_number, timeout, known=None, wait_s=0.0):
        return self._attempt((_state(round_number), 123))

    def advertise(self, advert, timeout):
        return self._attempt(77)

    def share_keys(self, upload, timeout):
        return self._attempt(77)

    def submit_masked(self, upload, timeout):
        return self._attempt(77)

    def unmask(self, upload, timeout):
        return self._attempt(77)


def _link_calls(link: GrpcServerLink):
    return {
        "secagg_state": lambda: link.secagg_state(5),
        "advertise": lambda: link.advertise(ADVERT),
        "share_keys": lambda: link.share_keys(SHARES),
        "submit_masked": lambda: link.submit_masked(_masked()),
        "unmask": lambda: link.unmask(UNMASK),
    }


def test_the_grpc_link_retries_unavailable_but_not_timeouts_or_other_refusals():
    busy = EdgeRequestError(EdgeRefusal.UNAVAILABLE, "server busy")
    for name in _link_calls(GrpcServerLink(_FlakyStub(busy, 0))):
        stub = _FlakyStub(busy, 2)
        link = GrpcServerLink(stub, connect_timeout_s=5.0, sleep=lambda s: None)
        result = _link_calls(link)[name]()
        assert stub.calls == 3, name
        if name == "secagg_state":
            assert result == _state(5) and link.received_bytes == 123
        else:
            assert result == 77
        for error in (PeerTimeoutError("reply lost"), EdgeRequestError(EdgeRefusal.STALE, "late")):
            stub = _FlakyStub(error, 1)
            link = GrpcServerLink(stub, connect_timeout_s=5.0, sleep=lambda s: None)
            with pytest.raises(type(error)):
                _link_calls(link)[name]()
            assert stub.calls == 1, (name, error)
            assert link.received_bytes == 0
