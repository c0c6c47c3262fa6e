"""The edge gateway: the ``Edge`` gRPC service every party hosts for edge clients, and the
client-side stub that calls it (``protos/crypten_lite/_proto/edge.proto``).

Server side: :class:`EdgeGateway` authenticates the caller (its TLS certificate must name an
edge client, ``client-<id>``; ranks and anonymous callers are refused; optionally an
operator-issued token in the call metadata, see :func:`issue_token`), validates every size,
dtype and length before allocating, converts the request into the dataclasses of
:mod:`crypten_lite.edge.messages` and hands it to the :class:`EdgeHandler` installed with
``GrpcCommunicator.set_edge_handler``. Before a handler is installed every call is answered
``UNAVAILABLE`` ("service not ready"). ``EdgeRequestError`` maps to a status code (see
:data:`REFUSAL_CODES`) carrying the handler's message; any other exception becomes
``INTERNAL`` "internal error" (its text stays on the server; only its type is logged).

Admission: the methods are served as streaming-request handlers (clients send ordinary
unary calls), so the gateway runs before gRPC reads the request: it authenticates the
caller from its certificate or token metadata, takes a slot (at most
``GrpcOptions.edge_max_concurrent_calls`` calls at once, ``edge_max_calls_per_client`` per
client identity; beyond that ``UNAVAILABLE`` "server busy", which clients retry with
backoff) and reads the request under ``edge_request_timeout_s``, after which the call is
cancelled. Edge calls therefore hold a bounded number of server threads and bytes
(``edge_max_concurrent_calls * edge_max_message_bytes`` at most). An upload's declared
length and ring width (``Submit``, ``SubmitMasked``) are checked against the job
(``round_info`` of the handler) before its vector is copied out of the request.

Services: an ``AggregationHandler`` (multi-server) answers ``RoundInfo`` and ``Submit``, a
``SecAggHandler`` (single server) ``RoundInfo`` and the SecAgg stages (``SecAggState``,
``Advertise``, ``ShareKeys``, ``SubmitMasked``, ``Unmask``), an ``InferenceHandler``
``Infer``; any other call is refused ``INVALID`` saying what the server runs.

Message conversion and validation live in :mod:`.edge_wire` and :mod:`.secagg_wire` (loaded
on the first SecAgg call, so a multi-server client imports none of the SecAgg code).

Client side: :class:`~.edge_stub.EdgeStub` (:mod:`.edge_stub`), one channel to one server,
which maps status codes back with :data:`CODE_REFUSALS`. Cost: one unary call per request;
an upload of ``m`` ring elements is
``m * ring_bits / 8`` bytes plus a ~30-byte header to the server that gets the vector, ~60
bytes to each server that gets a seed. SecAgg (one server): per client and round, a ~70-byte
advert, ``d`` sealed share pairs of ~170 bytes for ``d`` neighbours, the masked vector
(``m * ring_bits / 8`` bytes plus ~5 bytes per complaint) and ~70 bytes per unmasking share;
each state poll returns ~70 bytes per neighbour and ~170 per relayed share.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from crypten_lite._proto import edge_pb2
from crypten_lite.edge.messages import (
    EdgeHandler,
    EdgeRefusal,
    EdgeRequestError,
    SecAggHandler,
    as_aggregation,
    as_inference,
    as_round_source,
    as_secagg,
    invalid,
)
from crypten_lite.errors import ConfigError
from crypten_lite.transport.grpc.admission import Limiter, Watchdog, caller_identity, read_one
from crypten_lite.transport.grpc.edge_wire import (
    decode_infer_request,
    infer_reply,
    round_reply,
    scan_submit_request,
)
from crypten_lite.transport.grpc.options import DEFAULT_EDGE_MAX_MESSAGE_BYTES, EDGE_SERVICE
from crypten_lite.transport.grpc.tls import client_of_identity
from crypten_lite.transport.grpc.wire import clean

if TYPE_CHECKING:
    pass

__all__ = [
    "CLIENT_ID_METADATA",
    "CODE_REFUSALS",
    "REFUSAL_CODES",
    "TOKEN_METADATA",
    "EdgeGateway",
    "add_edge_service",
    "issue_token",
    "raw_bytes",
    "verify_token",
]

_LOG = logging.getLogger("crypten_lite.transport.grpc.gateway")
_T = TypeVar("_T")
_M = TypeVar("_M")

#: EdgeRequestError.refusal -> gRPC status code (and back, on the client).
REFUSAL_CODES: dict[EdgeRefusal, grpc.StatusCode] = {
    EdgeRefusal.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    EdgeRefusal.DUPLICATE: grpc.StatusCode.ALREADY_EXISTS,
    EdgeRefusal.STALE: grpc.StatusCode.FAILED_PRECONDITION,
    EdgeRefusal.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    EdgeRefusal.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}
CODE_REFUSALS = {code: refusal for refusal, code in REFUSAL_CODES.items()}
CODE_REFUSALS[grpc.StatusCode.PERMISSION_DENIED] = EdgeRefusal.UNAUTHENTICATED
CODE_REFUSALS[grpc.StatusCode.RESOURCE_EXHAUSTED] = EdgeRefusal.INVALID

#: call metadata keys of token authentication (client id, hex token).
CLIENT_ID_METADATA = "crypten-lite-client"
TOKEN_METADATA = "crypten-lite-token"  # noqa: S105 - a metadata key, not a secret
_TOKEN_INFO = b"crypten_lite.edge.token.v2\x00"
_TOKEN_PREFIX = "v2."  # noqa: S105 - a format prefix, not a secret
_MAX_JOB_ID = 128


# -- tokens -------------------------------------------------------------------------------


def _token_mac(key: bytes, client_id: str, job_id: str, expires_at: int) -> str:
    fields = (client_id.encode("ascii"), job_id.encode("utf-8"), str(expires_at).encode())
    message = _TOKEN_INFO + b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue_token(key: bytes, client_id: str, job_id: str, expires_at: float) -> str:
    """The operator-issued token of ``client_id`` for job ``job_id``, valid until the Unix time
    ``expires_at``: ``v2.<expiry>.<hex HMAC-SHA256>`` over client id, job id and expiry under
    the server-side ``key`` (at least 16 bytes). Opaque to clients; give each client only its
    own token. It is refused by a server of another job and after ``expires_at``."""
    if not isinstance(key, bytes) or len(key) < 16:
        raise ConfigError("the token key must be at least 16 bytes")
    if client_of_identity(client_id) is None:
        raise ConfigError("client_id must look like 'client-<id>' ([A-Za-z0-9._-], <= 64 chars)")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= _MAX_JOB_ID:
        raise ConfigError(f"job_id must be a non-empty str of at most {_MAX_JOB_ID} characters")
    expiry = int(expires_at)
    if expiry <= 0:
        raise ConfigError("expires_at must be a positive Unix time")
    return f"{_TOKEN_PREFIX}{expiry}.{_token_mac(key, client_id, job_id, expiry)}"


def verify_token(
    key: bytes, client_id: str, token: str, job_id: str, now: float | None = None
) -> bool:
    """Whether ``token`` is ``client_id``'s token for ``job_id`` under ``key`` and has not
    expired at ``now`` (default: the current time); constant-time compare."""
    if client_of_identity(client_id) is None or not token.isascii() or len(token) > 128:
        return False
    if not isinstance(job_id, str) or not 0 < len(job_id) <= _MAX_JOB_ID:
        return False
    prefix, _, rest = token.partition(_TOKEN_PREFIX)
    expiry_text, _, mac = rest.partition(".")
    if prefix or not expiry_text.isdigit() or len(expiry_text) > 12:
        return False
    expiry = int(expiry_text)
    expected = _token_mac(key, client_id, job_id, expiry)
    valid = hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii"))
    return valid and (time.time() if now is None else now) < expiry


# -- server side ----------------------------------------------------------------------------


def raw_bytes(data: bytes) -> bytes:
    """The (de)serializer of messages that travel as already-encoded bytes."""
    return data


def _parse(message_type: Callable[[], _M], data: bytes) -> _M:
    message = message_type()
    try:
        message.ParseFromString(data)  # type: ignore[attr-defined]
    except DecodeError as err:
        raise invalid("the request is not a valid protobuf message") from err
    return message


class EdgeGateway:
    """The ``Edge`` service of one server; thread-safe (gRPC worker threads call it)."""

    def __init__(
        self,
        *,
        tls: bool,
        max_message_bytes: int = DEFAULT_EDGE_MAX_MESSAGE_BYTES,
        label: str = "server",
        max_concurrent: int = 8,
        max_per_client: int = 2,
        max_waiting: int = 256,
        request_timeout_s: float = 60.0,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._tls = tls
        self._max = max_message_bytes
        self._label = label
        self._handler: EdgeHandler | None = None
        self._token_key: bytes | None = None
        self._token_job: str = ""
        self.limiter = Limiter(max_concurrent, max_per_client)
        # long polls (SecAggState) wait without a call slot, under their own cap
        self.waiters = Limiter(max_waiting, 1) if max_waiting > 0 else None
        self._slots = threading.local()  # the call slot this thread holds (see _serve)
        self._timeout_s = request_timeout_s
        self._watchdog = watchdog or Watchdog(f"cl-edge-{label}")

    def set_handler(
        self,
        handler: EdgeHandler,
        token_key: bytes | None = None,
        token_job_id: str | None = None,
    ) -> None:
        """Install the service (once ready) and, optionally, the token key with the job id
        tokens must be bound to."""
        if token_key is not None:
            if not isinstance(token_key, bytes) or len(token_key) < 16:
                raise ConfigError("token_key must be at least 16 bytes")
            if not isinstance(token_job_id, str) or not 0 < len(token_job_id) <= _MAX_JOB_ID:
                raise ConfigError("token authentication needs token_job_id (this server's job)")
        self._token_key = token_key
        self._token_job = token_job_id or ""
        self._handler = handler

    def _client_id(self, context: grpc.ServicerContext) -> str:
        if self._tls:
            identity = caller_identity(context)
            client = client_of_identity(identity)
            if client is not None:
                return client
            if identity:
                raise EdgeRequestError(
                    EdgeRefusal.UNAUTHENTICATED,
                    f"certificate identity {clean(identity, 40)!r} is not an edge client "
                    "(client-<id>)",
                )
        if self._token_key is not None:
            meta = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            client = meta.get(CLIENT_ID_METADATA, "")
            token = meta.get(TOKEN_METADATA, "")
            if client and token and verify_token(self._token_key, client, token, self._token_job):
                return client
            if client or token:
                raise EdgeRequestError(
                    EdgeRefusal.UNAUTHENTICATED,
                    "invalid client token (wrong client or job, expired, or forged)",
                )
        raise EdgeRequestError(
            EdgeRefusal.UNAUTHENTICATED,
            "anonymous caller: a client certificate or token from the operator is required",
        )

    def _serve(
        self,
        requests: Iterator[bytes],
        context: grpc.ServicerContext,
        method: str,
        body: Callable[[EdgeHandler, str, bytes], _T],
    ) -> _T:
        client = "?"
        slot: str | None = None
        try:
            handler = self._handler
            if handler is None:
                raise EdgeRequestError(EdgeRefusal.UNAVAILABLE, "service not ready")
            client = self._client_id(context)  # from the certificate or metadata: no read yet
            why = self.limiter.try_acquire(client)
            if why is not None:
                raise EdgeRequestError(EdgeRefusal.UNAVAILABLE, f"server busy: {why}")
            slot = client
            self._slots.held = [slot]  # a long poll hands it back early (_wait_without_slot)
            request = read_one(requests, context, self._watchdog, self._timeout_s)
            if request is None:
                raise invalid(f"no request within {self._timeout_s:g}s")
            return body(handler, client, request)
        except EdgeRequestError as err:
            _LOG.info(
                "%s refused %s from %s: %s", self._label, method, clean(client), err.refusal.value
            )
            context.abort(REFUSAL_CODES[err.refusal], clean(err.detail, 400))
        except Exception as err:
            _LOG.error(
                "%s: %s from %s failed with %s",
                self._label,
                method,
                clean(client),
                type(err).__name__,
            )
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            held = getattr(self._slots, "held", None)
            self._slots.held = None
            if slot is not None and held:
                self.limiter.release(slot)
        raise AssertionError("unreachable")  # context.abort raises

    def _wait_without_slot(self, client: str) -> bool:
        """Trade this call's slot for a waiter slot (False: none free, keep the slot and
        answer at once)."""
        if self.waiters is None or self.waiters.try_acquire(client) is not None:
            return False
        held = self._slots.held
        if held:
            self.limiter.release(held.pop())
        return True

    def RoundInfo(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.RoundInfoReply:
        def body(handler: EdgeHandler, client: str, request: bytes) -> edge_pb2.RoundInfoReply:
            _parse(edge_pb2.RoundInfoRequest, request)
            return round_reply(as_round_source(handler).round_info(client))

        return self._serve(requests, context, "RoundInfo", body)

    def Submit(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.SubmitReply:
        def body(handler: EdgeHandler, client: str, request: bytes) -> edge_pb2.SubmitReply:
            # sizes are checked against the job on a view of the request: a wrong-length or
            # oversized vector is refused before anything is copied
            service = as_aggregation(handler)
            scanned = scan_submit_request(request, self._max)
            if scanned.vector is not None:
                job = service.round_info(client)
                scanned.check_job(job.num_elements, job.ring_bits)
            service.submit(client, scanned.share())
            return edge_pb2.SubmitReply()

        return self._serve(requests, context, "Submit", body)

    def Infer(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.InferReply:
        def body(handler: EdgeHandler, client: str, request: bytes) -> edge_pb2.InferReply:
            service = as_inference(handler)
            query = decode_infer_request(_parse(edge_pb2.InferRequest, request), self._max)
            return infer_reply(service.infer(client, query))

        return self._serve(requests, context, "Infer", body)

    # -- single-server secure aggregation (secagg_wire is imported on first use) -------------

    def SecAggState(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        def body(handler: EdgeHandler, client: str, request: bytes) -> bytes:
            from crypten_lite.transport.grpc import secagg_wire

            service = as_secagg(handler)
            round_number, known, wait_s = secagg_wire.decode_state_request(request)
            if known is None or wait_s <= 0 or not self._wait_without_slot(client):
                return secagg_wire.encode_state_reply(service.secagg_state(client, round_number))
            try:  # a long poll: waits for the stage to change, holding no call slot
                state = service.secagg_state(client, round_number, known, wait_s)
            finally:
                if self.waiters is not None:
                    self.waiters.release(client)
            return secagg_wire.encode_state_reply(state)

        return self._serve(requests, context, "SecAggState", body)

    def _secagg_upload(
        self,
        requests: Iterator[bytes],
        context: grpc.ServicerContext,
        method: str,
        deliver: Callable[[SecAggHandler, str, bytes], None],
    ) -> edge_pb2.SecAggAck:
        def body(handler: EdgeHandler, client: str, request: bytes) -> edge_pb2.SecAggAck:
            deliver(as_secagg(handler), client, request)
            return edge_pb2.SecAggAck()

        return self._serve(requests, context, method, body)

    def Advertise(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.SecAggAck:
        def deliver(service: SecAggHandler, client: str, request: bytes) -> None:
            from crypten_lite.transport.grpc import secagg_wire

            service.advertise(client, secagg_wire.decode_advertise(request))

        return self._secagg_upload(requests, context, "Advertise", deliver)

    def ShareKeys(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.SecAggAck:
        def deliver(service: SecAggHandler, client: str, request: bytes) -> None:
            from crypten_lite.transport.grpc import secagg_wire

            service.share_keys(client, secagg_wire.decode_share_keys(request))

        return self._secagg_upload(requests, context, "ShareKeys", deliver)

    def SubmitMasked(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.SecAggAck:
        def deliver(service: SecAggHandler, client: str, request: bytes) -> None:
            from crypten_lite.transport.grpc import secagg_wire

            # as for Submit: the sizes are checked against the job before the vector is copied
            scanned = secagg_wire.scan_masked_upload(request, self._max)
            job = service.round_info(client)
            scanned.check_job(job.num_elements, job.ring_bits)
            service.submit_masked(client, scanned.upload())

        return self._secagg_upload(requests, context, "SubmitMasked", deliver)

    def Unmask(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> edge_pb2.SecAggAck:
        def deliver(service: SecAggHandler, client: str, request: bytes) -> None:
            from crypten_lite.transport.grpc import secagg_wire

            service.unmask(client, secagg_wire.decode_unmask(request))

        return self._secagg_upload(requests, context, "Unmask", deliver)


def add_edge_service(server: grpc.Server, gateway: EdgeGateway) -> None:
    """Register the ``Edge`` service of ``gateway`` on ``server``."""
    # requests arrive as raw bytes, read by the gateway after admission (see module docstring);
    # SecAggState replies leave the gateway already serialized
    ack = edge_pb2.SecAggAck.SerializeToString
    serializers: tuple[tuple[str, Callable[[Any], bytes]], ...] = (
        ("RoundInfo", edge_pb2.RoundInfoReply.SerializeToString),
        ("Submit", edge_pb2.SubmitReply.SerializeToString),
        ("Infer", edge_pb2.InferReply.SerializeToString),
        ("SecAggState", raw_bytes),
        ("Advertise", ack),
        ("ShareKeys", ack),
        ("SubmitMasked", ack),
        ("Unmask", ack),
    )
    handlers = {
        name: grpc.stream_unary_rpc_method_handler(
            getattr(gateway, name), response_serializer=serializer
        )
        for name, serializer in serializers
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EDGE_SERVICE, handlers),))
