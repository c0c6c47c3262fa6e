"""How an edge client reaches ONE server: the :class:`ServerLink` protocol, over gRPC with
mutual TLS (:class:`GrpcServerLink`) or in-process for tests and benchmarks
(:class:`DirectServerLink`).

Every call has a deadline. ``GrpcServerLink`` retries ``UNAVAILABLE`` (server not up yet,
service not ready, connection broke) with exponential backoff (0.05 s doubling to 1 s) until
``connect_timeout_s`` has passed, then raises the last refusal; other refusals
(:class:`EdgeRequestError`) are raised at once. A submit that is retried after its first
attempt may already have been stored: a later ``DUPLICATE`` counts as delivered only when the
server says it holds this very upload (:func:`is_own_duplicate`: same client, round and
nonce); a ``DUPLICATE`` for another reason (a different upload of this client, or a nonce
another client already used) is raised.

SecAgg (one server, :mod:`crypten_lite.edge.secagg_messages`): ``secagg_state`` retries
like ``round_info``; the four uploads retry ``UNAVAILABLE`` only, never a timeout (the
timed-out upload may have landed; the caller decides). ``received_bytes`` counts the
serialized SecAgg state replies of the link (in process: as they would be on the wire).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from crypten_lite.edge.messages import (
    DUPLICATE_SAME_UPLOAD,
    EdgeHandler,
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    RoundInfo,
    UpdateShare,
    as_aggregation,
    as_inference,
    as_round_source,
    as_secagg,
)
from crypten_lite.errors import PeerTimeoutError
from crypten_lite.transport.grpc import (
    CertPaths,
    EdgeStub,
    TlsIdentity,
    encode_submit_request,
    load_identity,
)
from crypten_lite.transport.grpc.options import DEFAULT_EDGE_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from crypten_lite.edge.secagg_messages import (
        KeyAdvert,
        MaskedUpload,
        SecAggStage,
        SecAggState,
        ShareKeysUpload,
        UnmaskUpload,
    )

__all__ = ["DirectServerLink", "GrpcServerLink", "ServerLink", "is_own_duplicate"]

_T = TypeVar("_T")
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0


def is_own_duplicate(err: EdgeRequestError) -> bool:
    """Whether a ``DUPLICATE`` refusal says the server already holds this very upload (same
    client, round and nonce), i.e. an earlier attempt of the same submit landed."""
    return err.refusal is EdgeRefusal.DUPLICATE and err.detail.startswith(DUPLICATE_SAME_UPLOAD)


class ServerLink(Protocol):
    """One server as seen by a client. Uploads (``submit``, the SecAgg stages) return the
    request's wire size (bytes); ``received_bytes``: the SecAgg state replies' so far."""

    received_bytes: int

    def round_info(self) -> RoundInfo: ...

    def submit(self, share: UpdateShare) -> int: ...

    def infer(self, query: InferenceQuery) -> InferenceShare: ...

    def secagg_state(
        self, round_number: int, known: SecAggStage | None = None, wait_s: float = 0.0
    ) -> SecAggState: ...

    def advertise(self, advert: KeyAdvert) -> int: ...

    def share_keys(self, upload: ShareKeysUpload) -> int: ...

    def submit_masked(self, upload: MaskedUpload) -> int: ...

    def unmask(self, upload: UnmaskUpload) -> int: ...

    def close(self) -> None: ...


class DirectServerLink:
    """Calls an :class:`EdgeHandler` in this process as ``client_id`` (no network); sizes
    are those of the serialized request, as over gRPC."""

    def __init__(self, handler: EdgeHandler, client_id: str) -> None:
        self.handler = handler
        self.client_id = client_id
        self.received_bytes = 0

    def round_info(self) -> RoundInfo:
        return as_round_source(self.handler).round_info(self.client_id)

    def submit(self, share: UpdateShare) -> int:
        size = len(encode_submit_request(share))  # validates like the wire does
        as_aggregation(self.handler).submit(self.client_id, share)
        return size

    def infer(self, query: InferenceQuery) -> InferenceShare:
        return as_inference(self.handler).infer(self.client_id, query)

    # the SecAgg wire encoders are imported on first use (see transport.grpc.gateway)

    def secagg_state(
        self, round_number: int, known: SecAggStage | None = None, wait_s: float = 0.0
    ) -> SecAggState:
        from crypten_lite.transport.grpc import encode_state_reply, encode_state_request

        encode_state_request(round_number, known, wait_s)  # validates like the wire does
        service = as_secagg(self.handler)
        state = service.secagg_state(self.client_id, round_number, known, wait_s)
        self.received_bytes += len(encode_state_reply(state))
        return state

    def advertise(self, advert: KeyAdvert) -> int:
        from crypten_lite.transport.grpc import encode_advertise

        size = len(encode_advertise(advert))
        as_secagg(self.handler).advertise(self.client_id, advert)
        return size

    def share_keys(self, upload: ShareKeysUpload) -> int:
        from crypten_lite.transport.grpc import encode_share_keys

        size = len(encode_share_keys(upload))
        as_secagg(self.handler).share_keys(self.client_id, upload)
        return size

    def submit_masked(self, upload: MaskedUpload) -> int:
        from crypten_lite.transport.grpc import encode_masked_upload

        size = len(encode_masked_upload(upload))
        as_secagg(self.handler).submit_masked(self.client_id, upload)
        return size

    def unmask(self, upload: UnmaskUpload) -> int:
        from crypten_lite.transport.grpc import encode_unmask

        size = len(encode_unmask(upload))
        as_secagg(self.handler).unmask(self.client_id, upload)
        return size

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"DirectServerLink({self.client_id!r})"


class GrpcServerLink:
    """A gRPC channel (mutual TLS, or plaintext + token) to one server's edge gateway."""

    def __init__(
        self,
        stub: EdgeStub,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stub = stub
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self._sleep = sleep
        self.received_bytes = 0

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        certs: CertPaths | TlsIdentity | None = None,
        server_identity: str | None = None,
        token: tuple[str, str] | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 30.0,
        max_message_bytes: int = DEFAULT_EDGE_MAX_MESSAGE_BYTES,
    ) -> GrpcServerLink:
        """Open the channel; ``certs``: the client's files or their loaded identity (mutual
        TLS), or None (token)."""
        tls = load_identity(certs) if isinstance(certs, CertPaths) else certs
        stub = EdgeStub(
            address,
            tls=tls,
            server_identity=server_identity,
            token=token,
            max_message_bytes=max_message_bytes,
        )
        return cls(stub, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)

    def _retry(self, call: Callable[[float], _T], *, submit: bool = False) -> _T:
        deadline = time.monotonic() + self.connect_timeout_s
        backoff = _FIRST_BACKOFF_S
        attempted = False
        while True:
            try:
                return call(self.timeout_s)
            except EdgeRequestError as err:
                if submit and attempted and is_own_duplicate(err):
                    return None  # type: ignore[return-value]  # an earlier attempt landed
                if err.refusal is not EdgeRefusal.UNAVAILABLE:
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EdgeRequestError(
                        EdgeRefusal.UNAVAILABLE,
                        f"server {self.stub.address} still unavailable after "
                        f"{self.connect_timeout_s:g}s: {err.detail}",
                    ) from None
            except PeerTimeoutError:
                if not submit or time.monotonic() >= deadline:
                    raise
            attempted = True
            self._sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(2 * backoff, _MAX_BACKOFF_S)

    def round_info(self) -> RoundInfo:
        return self._retry(self.stub.round_info)

    def submit(self, share: UpdateShare) -> int:
        request = encode_submit_request(share)
        self._retry(lambda t: self.stub.submit_encoded(request, t), submit=True)
        return len(request)

    def infer(self, query: InferenceQuery) -> InferenceShare:
        return self._retry(lambda t: self.stub.infer(query, t))

    def secagg_state(
        self, round_number: int, known: SecAggStage | None = None, wait_s: float = 0.0
    ) -> SecAggState:
        state, size = self._retry(
            lambda t: self.stub.secagg_state_sized(round_number, t, known, wait_s)
        )
        self.received_bytes += size
        return state

    # uploads: _retry retries UNAVAILABLE and raises a timeout at once (it may have landed)

    def advertise(self, advert: KeyAdvert) -> int:
        return self._retry(lambda t: self.stub.advertise(advert, t))

    def share_keys(self, upload: ShareKeysUpload) -> int:
        return self._retry(lambda t: self.stub.share_keys(upload, t))

    def submit_masked(self, upload: MaskedUpload) -> int:
        return self._retry(lambda t: self.stub.submit_masked(upload, t))

    def unmask(self, upload: UnmaskUpload) -> int:
        return self._retry(lambda t: self.stub.unmask(upload, t))

    def close(self) -> None:
        self.stub.close()

    def __repr__(self) -> str:
        return f"GrpcServerLink({self.stub.address!r})"
