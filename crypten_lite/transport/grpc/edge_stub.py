"""The client side of the edge gateway: :class:`EdgeStub`, one channel from an edge client to
one server's ``Edge`` service (the server side is :mod:`.gateway`).

It raises :class:`~crypten_lite.edge.messages.EdgeRequestError` (mapped back from the status
code, with the server's message) or :class:`~crypten_lite.errors.CommunicationError` /
:class:`~crypten_lite.errors.PeerTimeoutError`, never a gRPC exception, so
:mod:`crypten_lite.client` needs no ``grpc`` import. Cost: one unary call per request (see
:mod:`.gateway` for the bytes of each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from crypten_lite._proto import edge_pb2
from crypten_lite.edge.messages import (
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    RoundInfo,
    UpdateShare,
)
from crypten_lite.errors import CommunicationError, PeerTimeoutError
from crypten_lite.transport.grpc.channels import channel_credentials
from crypten_lite.transport.grpc.edge_wire import (
    encode_infer_request,
    encode_submit_request,
    inference_share,
)
from crypten_lite.transport.grpc.edge_wire import round_info as round_info_of
from crypten_lite.transport.grpc.gateway import (
    CLIENT_ID_METADATA,
    CODE_REFUSALS,
    TOKEN_METADATA,
    raw_bytes,
)
from crypten_lite.transport.grpc.options import DEFAULT_EDGE_MAX_MESSAGE_BYTES, EDGE_SERVICE
from crypten_lite.transport.grpc.tls import TlsIdentity
from crypten_lite.transport.grpc.wire import clean

if TYPE_CHECKING:
    from crypten_lite.edge.secagg_messages import (
        KeyAdvert,
        MaskedUpload,
        SecAggStage,
        SecAggState,
        ShareKeysUpload,
        UnmaskUpload,
    )

__all__ = ["EdgeStub"]

_SECAGG_UPLOADS = ("Advertise", "ShareKeys", "SubmitMasked", "Unmask")


class EdgeStub:
    """One channel from an edge client to one server's gateway.

    ``tls``: the client's certificate (mutual TLS; ``server_identity`` pins the server's
    certificate identity, e.g. ``party-0``); ``None`` = plaintext (then authenticate with
    ``token = (client_id, token)``). Every call takes a deadline; errors come back as
    :class:`EdgeRequestError` (refusals, incl. ``UNAVAILABLE``) or
    :class:`CommunicationError` / :class:`PeerTimeoutError`.
    """

    def __init__(
        self,
        address: str,
        *,
        tls: TlsIdentity | None,
        server_identity: str | None = None,
        token: tuple[str, str] | None = None,
        max_message_bytes: int = DEFAULT_EDGE_MAX_MESSAGE_BYTES,
    ) -> None:
        self.address = address
        self._max = max_message_bytes
        limit = max_message_bytes + (64 << 10)
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            if server_identity is not None:
                options.append(("grpc.ssl_target_name_override", server_identity))
            self._channel = grpc.secure_channel(address, channel_credentials(tls), options=options)
        self._metadata = (
            None if token is None else ((CLIENT_ID_METADATA, token[0]), (TOKEN_METADATA, token[1]))
        )
        base = f"/{EDGE_SERVICE}/"
        self._round_info = self._channel.unary_unary(
            base + "RoundInfo",
            request_serializer=edge_pb2.RoundInfoRequest.SerializeToString,
            response_deserializer=edge_pb2.RoundInfoReply.FromString,
        )
        self._submit = self._channel.unary_unary(
            base + "Submit",
            request_serializer=raw_bytes,
            response_deserializer=edge_pb2.SubmitReply.FromString,
        )
        self._infer = self._channel.unary_unary(
            base + "Infer",
            request_serializer=raw_bytes,
            response_deserializer=edge_pb2.InferReply.FromString,
        )
        # SecAgg: raw bytes both ways (secagg_wire encodes and checks; the reply size counts)
        self._secagg = {
            name: self._channel.unary_unary(
                base + name, request_serializer=raw_bytes, response_deserializer=raw_bytes
            )
            for name in ("SecAggState", *_SECAGG_UPLOADS)
        }

    def _call(self, method: Any, request: Any, timeout_s: float) -> Any:
        try:
            return method(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            details = clean(str(err.details() if hasattr(err, "details") else err), 400)
            refusal = CODE_REFUSALS.get(code) if code is not None else None
            if refusal is not None:
                raise EdgeRequestError(refusal, details) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise PeerTimeoutError(
                    f"server {self.address} did not answer within {timeout_s:g}s"
                ) from None
            name = code.name if code is not None else "ERROR"
            raise CommunicationError(f"server {self.address}: {name}: {details}") from None

    def round_info(self, timeout_s: float) -> RoundInfo:
        return round_info_of(self._call(self._round_info, edge_pb2.RoundInfoRequest(), timeout_s))

    def submit_encoded(self, request: bytes, timeout_s: float) -> None:
        """Send a request made by :func:`encode_submit_request`."""
        self._call(self._submit, request, timeout_s)

    def submit(self, share: UpdateShare, timeout_s: float) -> int:
        """Send one share; the request's size in bytes."""
        request = encode_submit_request(share)
        self.submit_encoded(request, timeout_s)
        return len(request)

    def infer(self, query: InferenceQuery, timeout_s: float) -> InferenceShare:
        reply = self._call(self._infer, encode_infer_request(query), timeout_s)
        return inference_share(reply, self._max)

    def secagg_state_sized(
        self,
        round_number: int,
        timeout_s: float,
        known: SecAggStage | None = None,
        wait_s: float = 0.0,
    ) -> tuple[SecAggState, int]:
        """The server's SecAgg state for this client in ``round_number`` and the serialized
        reply's size in bytes; :class:`CommunicationError` for a malformed reply. With
        ``known`` and ``wait_s`` a long poll (the deadline grows by ``wait_s``)."""
        from crypten_lite.transport.grpc import secagg_wire

        request = secagg_wire.encode_state_request(round_number, known, wait_s)
        reply = bytes(self._call(self._secagg["SecAggState"], request, timeout_s + wait_s))
        return secagg_wire.decode_state_reply(reply), len(reply)

    def secagg_state(
        self,
        round_number: int,
        timeout_s: float,
        known: SecAggStage | None = None,
        wait_s: float = 0.0,
    ) -> SecAggState:
        """The server's SecAgg state for this client in ``round_number``."""
        return self.secagg_state_sized(round_number, timeout_s, known, wait_s)[0]

    def secagg_upload_encoded(self, method: str, request: bytes, timeout_s: float) -> int:
        """Send an encoded SecAgg upload (``method``: ``Advertise``, ``ShareKeys``,
        ``SubmitMasked`` or ``Unmask``); the request's size in bytes."""
        if method not in _SECAGG_UPLOADS:
            raise ValueError(f"unknown SecAgg upload {method!r}")
        self._call(self._secagg[method], request, timeout_s)
        return len(request)

    def advertise(self, advert: KeyAdvert, timeout_s: float) -> int:
        """Send the round's public keys; the request's size in bytes."""
        from crypten_lite.transport.grpc import secagg_wire

        request = secagg_wire.encode_advertise(advert)
        return self.secagg_upload_encoded("Advertise", request, timeout_s)

    def share_keys(self, upload: ShareKeysUpload, timeout_s: float) -> int:
        """Send the sealed shares and the seed commitment; the request's size in bytes."""
        from crypten_lite.transport.grpc import secagg_wire

        request = secagg_wire.encode_share_keys(upload)
        return self.secagg_upload_encoded("ShareKeys", request, timeout_s)

    def submit_masked(self, upload: MaskedUpload, timeout_s: float) -> int:
        """Send the masked input; the request's size in bytes."""
        from crypten_lite.transport.grpc import secagg_wire

        request = secagg_wire.encode_masked_upload(upload)
        return self.secagg_upload_encoded("SubmitMasked", request, timeout_s)

    def unmask(self, upload: UnmaskUpload, timeout_s: float) -> int:
        """Send the unmasking shares; the request's size in bytes."""
        from crypten_lite.transport.grpc import secagg_wire

        request = secagg_wire.encode_unmask(upload)
        return self.secagg_upload_encoded("Unmask", request, timeout_s)

    def close(self) -> None:
        self._channel.close()

    def __repr__(self) -> str:
        return f"EdgeStub({self.address!r})"
