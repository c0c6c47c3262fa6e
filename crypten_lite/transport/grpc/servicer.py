"""Server side of a rank: the ``Party`` service (deliveries, hello, notices) and the standard
``grpc.health.v1.Health`` service (readiness and liveness).

Every call is checked before anything reaches the mailbox: session id, destination, sender
rank, and — with TLS — that the caller's certificate names the rank it claims. A refused call
is answered with a status code and a message naming the problem, and logged; the handler
returns normally, so no server thread dies and nothing waits on a half-received message.

Admission (see ``admission.py``): with TLS, every ``Party`` call is checked on entry, before
any frame or request is read: a caller whose certificate names no peer rank of this job
(an edge client, a rank of another world) is refused ``PERMISSION_DENIED`` at once. Each
peer rank may hold **one** live ``Transfer`` stream; a second one is refused
``RESOURCE_EXHAUSTED`` (the first keeps working: a peer never opens two, so a second one is
a fault, and replacing the first would lose its buffered messages). Unary calls (hello,
notices, health checks) are served as streaming handlers that read their one request under
``GrpcOptions.request_timeout_s`` and hold a slot of a bounded :class:`Limiter`. Without TLS
the rank is only known from the first frame, which must arrive within the same timeout; a
sender opens every stream with an announcing frame (``wire.encode_announce``) for that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.errors import MessageRejectedError, MessageTooLargeError
from crypten_lite.transport.grpc.admission import Limiter, Watchdog, caller_identity, read_one
from crypten_lite.transport.grpc.mailbox import Mailbox, rank_label
from crypten_lite.transport.grpc.options import PARTY_SERVICE
from crypten_lite.transport.grpc.tls import rank_of_identity
from crypten_lite.transport.grpc.wire import Assembler, clean, decode_frame

__all__ = ["HealthServicer", "PartyServicer", "add_health_service", "add_party_service"]

_LOG = logging.getLogger("crypten_lite.transport.grpc")
_Status = health_pb2.HealthCheckResponse.ServingStatus
_MAX_ID = 256
_HEALTH_SERVICE = "grpc.health.v1.Health"


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class PartyServicer:
    """Receives messages for one rank of one session into its :class:`Mailbox`."""

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        tls: bool,
        max_message_bytes: int,
        on_bye: Callable[[int], None] = lambda rank: None,
        frame_limit: int | None = None,
        watchdog: Watchdog | None = None,
        request_timeout_s: float = 10.0,
    ) -> None:
        self._mailbox = mailbox
        self._tls = tls
        self._max_message_bytes = max_message_bytes
        # the server's gRPC limit also admits edge-client messages (see options), so frames
        # are held to one chunk plus header here
        self._frame_limit = frame_limit
        self._on_bye = on_bye
        self._log = _LOG
        self.watchdog = watchdog or Watchdog(f"cl-watchdog-{mailbox.rank}")
        self.request_timeout_s = request_timeout_s
        world = mailbox.world_size
        # hello + notices: a few per peer at a time (each rank calls them one by one)
        self.unary_limiter = Limiter(total=2 * (world + 1) + 2, per_key=2)
        self._streams_lock = threading.Lock()
        self._streams: set[int] = set()  # peer ranks with a live Transfer stream

    # -- admission -----------------------------------------------------------------------
    def peer_rank(self, context: grpc.ServicerContext) -> int | None:
        """With TLS, the peer rank the caller's certificate names; refuse any other caller
        (PERMISSION_DENIED) before reading anything. Without TLS, None."""
        if not self._tls:
            return None
        identity = caller_identity(context)
        rank = rank_of_identity(identity, self._mailbox.world_size)
        if rank is None or rank == self._mailbox.rank:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"certificate identity {clean(identity, 40)!r} is not a peer rank of this job "
                f"(rank {self._mailbox.rank} of {self._mailbox.world_size} parties + dealer)",
            )
        return rank

    def _claim_stream(self, rank: int) -> None:
        with self._streams_lock:
            if rank in self._streams:
                raise _Refused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{rank_label(rank, self._mailbox.world_size)} already has a live Transfer "
                    f"stream to rank {self._mailbox.rank} (one per peer)",
                )
            self._streams.add(rank)

    def _release_stream(self, rank: int) -> None:
        with self._streams_lock:
            self._streams.discard(rank)

    # -- checks --------------------------------------------------------------------------
    def _authenticate(self, context: grpc.ServicerContext, session_id: str, source: int) -> None:
        box = self._mailbox
        if len(session_id) > _MAX_ID or session_id != box.session_id:
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"unknown session id {clean(session_id, 40)!r} (rank {box.rank} serves "
                f"session {box.session_id!r})",
            )
        if not 0 <= source <= box.world_size or source == box.rank:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"unknown sender rank {source} (ranks 0..{box.world_size}, "
                f"this is rank {box.rank})",
            )
        if not self._tls:
            return
        names = context.auth_context().get("x509_common_name") or [b""]
        identity = names[0].decode("ascii", "replace")
        claimed = rank_of_identity(identity, box.world_size)
        if claimed != source:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"certificate identity {clean(identity, 40)!r} may not speak for "
                f"{rank_label(source, box.world_size)}",
            )

    @property
    def mailbox_world_size(self) -> int:
        return self._mailbox.world_size

    def refuse(self, context: grpc.ServicerContext, method: str, refused: _Refused) -> Any:
        """Log and answer a refusal (``context.abort`` raises)."""
        return self._refuse(context, method, refused)

    def _refuse(self, context: grpc.ServicerContext, method: str, refused: _Refused) -> Any:
        self._log.warning(
            "rank %d refused %s from %s: %s",
            self._mailbox.rank,
            method,
            clean(context.peer(), 80),
            refused,
        )
        context.abort(refused.code, str(refused))

    def _classify(self, err: Exception) -> _Refused:
        if isinstance(err, _Refused):
            return err
        if isinstance(err, MessageTooLargeError):
            return _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
        return _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(err))

    def _guard(self, context: grpc.ServicerContext, method: str, body: Callable[[], Any]) -> Any:
        try:
            return body()
        except (_Refused, MessageRejectedError) as err:
            return self._refuse(context, method, self._classify(err))

    def _check_envelope(self, context: grpc.ServicerContext, env: party_pb2.Envelope) -> None:
        self._authenticate(context, env.session_id, env.source)
        if env.destination != self._mailbox.rank:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"message for rank {env.destination} delivered to rank {self._mailbox.rank}",
            )

    def _check_same_stream(self, first: party_pb2.Envelope, env: party_pb2.Envelope) -> None:
        if (env.session_id, env.source, env.destination) != (
            first.session_id,
            first.source,
            first.destination,
        ):
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the stream of rank {first.source} carried a frame claiming rank {env.source} "
                f"for rank {env.destination}",
            )

    # -- RPCs ----------------------------------------------------------------------------
    def Transfer(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> party_pb2.TransferSummary:
        """Receive one peer's messages for the whole job; answer when the peer ends it."""
        first: party_pb2.Envelope | None = None
        assembler: Assembler | None = None
        reserved = reserved_tag = 0
        stored = 0
        claimed: int | None = None
        # without TLS the caller is known only from its first frame: bound the wait for it
        first_deadline = (
            None if self._tls else self.watchdog.schedule(self.request_timeout_s, context.cancel)
        )
        box = self._mailbox
        try:
            rank = self.peer_rank(context)
            if rank is not None:
                self._claim_stream(rank)
                claimed = rank
            for frame in request_iterator:
                if self._frame_limit is not None and len(frame) > self._frame_limit:
                    raise _Refused(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"frame of {len(frame)} bytes is larger than max {self._frame_limit} "
                        "(one chunk plus header)",
                    )
                header, payload = decode_frame(frame)
                announce = header.chunk_count == 0  # ``wire.encode_announce``
                if announce and (first is not None or len(payload) or header.dtype or header.shape):
                    raise _Refused(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "an opening frame (chunk_count 0) must come first and carry no data",
                    )
                if first is None:
                    self._check_envelope(context, header)
                    if claimed is None:
                        self._claim_stream(header.source)
                        claimed = header.source
                    if first_deadline is not None:
                        self.watchdog.cancel(first_deadline)
                        first_deadline = None
                    first = header
                else:
                    self._check_same_stream(first, header)
                if announce:
                    continue
                if assembler is None:
                    assembler = Assembler(header, self._max_message_bytes)
                    if not box.admit(
                        assembler.source, assembler.tag, assembler.nbytes, context.is_active
                    ):
                        break  # the job failed or the call ended while waiting for room
                    reserved = assembler.nbytes
                    reserved_tag = assembler.tag
                assembler.add(header, payload)
                if assembler.complete:
                    array = assembler.finish()
                    reserved = 0
                    if not box.put(assembler.source, assembler.tag, array, admitted=True):
                        self._log.debug("duplicate message %d dropped", assembler.tag)
                    stored += 1
                    assembler = None
            if assembler is not None:
                raise MessageRejectedError(
                    f"the stream ended inside message {assembler.tag} of rank {assembler.source}"
                )
            if first is None and not self._tls and not context.is_active():
                raise _Refused(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no frame within {self.request_timeout_s:g}s (GrpcOptions.request_timeout_s)",
                )
        except (_Refused, MessageRejectedError) as err:
            return self._refuse(context, "Transfer", self._classify(err))
        finally:
            if first_deadline is not None:
                self.watchdog.cancel(first_deadline)
            if reserved and first is not None:
                box.release(int(first.source), reserved_tag, reserved)
            if claimed is not None:
                self._release_stream(claimed)
        return party_pb2.TransferSummary(messages=stored)

    def Hello(
        self, request: party_pb2.HelloRequest, context: grpc.ServicerContext
    ) -> party_pb2.HelloReply:
        def body() -> party_pb2.HelloReply:
            self._authenticate(context, request.session_id, request.source)
            box = self._mailbox
            if request.world_size != box.world_size:
                raise _Refused(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"world size {request.world_size} does not match this job's {box.world_size}",
                )
            return party_pb2.HelloReply(
                session_id=box.session_id, rank=box.rank, world_size=box.world_size
            )

        return self._guard(context, "Hello", body)

    def Notify(self, request: party_pb2.Notice, context: grpc.ServicerContext) -> party_pb2.Ack:
        def body() -> party_pb2.Ack:
            self._authenticate(context, request.session_id, request.source)
            if request.kind == party_pb2.Notice.BYE:
                self._mailbox.finish(request.source, int(request.messages_sent))
                self._on_bye(request.source)
            elif request.kind == party_pb2.Notice.ABORT:
                self._mailbox.lose(request.source, f"it aborted ({clean(request.reason, 400)})")
            else:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "notice of unknown kind")
            return party_pb2.Ack()

        return self._guard(context, "Notify", body)


class HealthServicer:
    """The standard health service for the server (``""``) and ``crypten_lite.v1.Party``.

    ``Watch`` streams the status and every change; when the rank shuts down cleanly the last
    update is ``NOT_SERVING`` and the stream ends, so watchers can tell a goodbye from a crash.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._status = _Status.SERVING
        self._final = False

    def set_final(self, status: int) -> None:
        """Publish a last status; every Watch stream sends it and ends."""
        with self._cond:
            self._status = status
            self._final = True
            self._cond.notify_all()

    def _known(self, service: str) -> bool:
        return service in ("", PARTY_SERVICE)

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if not self._known(request.service):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {clean(request.service)!r}")
        with self._cond:
            return health_pb2.HealthCheckResponse(status=self._status)

    def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> Iterator[health_pb2.HealthCheckResponse]:
        if not self._known(request.service):
            yield health_pb2.HealthCheckResponse(status=_Status.SERVICE_UNKNOWN)
            return

        def wake() -> None:
            with self._cond:
                self._cond.notify_all()

        context.add_callback(wake)
        sent: int | None = None
        while context.is_active():
            with self._cond:
                if self._status == sent and not self._final:
                    self._cond.wait(1.0)
                    continue
                sent, final = self._status, self._final
            yield health_pb2.HealthCheckResponse(status=sent)
            if final:
                return


_Behavior = Callable[[Any, grpc.ServicerContext], Any]


def _admitted_unary(
    servicer: PartyServicer,
    limiter: Limiter,
    parse: Callable[[bytes], Any],
    behavior: _Behavior,
    method: str,
    *,
    party_only: bool,
    streaming: bool = False,
) -> Callable[[Iterator[bytes], grpc.ServicerContext], Any]:
    """A streaming-request handler for a unary method: check the caller (``party_only``:
    its certificate must name a peer rank), take a slot of ``limiter`` (refused at once when
    full), read the one request under the servicer's request timeout, then run ``behavior``."""

    def admit(context: grpc.ServicerContext) -> str:
        if party_only:
            try:
                servicer.peer_rank(context)
            except _Refused as refused:
                servicer.refuse(context, method, refused)
        key = caller_identity(context) or context.peer()
        why = limiter.try_acquire(key)
        if why is not None:
            servicer.refuse(
                context, method, _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, f"busy: {why}")
            )
        return key

    def request(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        data = read_one(requests, context, servicer.watchdog, servicer.request_timeout_s)
        if data is None:
            servicer.refuse(
                context,
                method,
                _Refused(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no request within {servicer.request_timeout_s:g}s",
                ),
            )
        try:
            return parse(data)  # type: ignore[arg-type]
        except DecodeError:
            servicer.refuse(
                context,
                method,
                _Refused(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid message"),
            )

    if streaming:

        def stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
            key = admit(context)
            try:
                yield from behavior(request(requests, context), context)
            finally:
                limiter.release(key)

        return stream

    def unary(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        key = admit(context)
        try:
            return behavior(request(requests, context), context)
        finally:
            limiter.release(key)

    return unary


def add_party_service(server: grpc.Server, servicer: PartyServicer) -> None:
    """Register the ``Party`` service. ``Transfer`` takes raw frames (decoded by
    :func:`decode_frame`); the unary methods are admitted as described in the module
    docstring, then use the generated message classes."""
    limiter = servicer.unary_limiter
    handlers = {
        "Transfer": grpc.stream_unary_rpc_method_handler(
            servicer.Transfer, response_serializer=party_pb2.TransferSummary.SerializeToString
        ),
        "Hello": grpc.stream_unary_rpc_method_handler(
            _admitted_unary(
                servicer,
                limiter,
                party_pb2.HelloRequest.FromString,
                servicer.Hello,
                "Hello",
                party_only=True,
            ),
            response_serializer=party_pb2.HelloReply.SerializeToString,
        ),
        "Notify": grpc.stream_unary_rpc_method_handler(
            _admitted_unary(
                servicer,
                limiter,
                party_pb2.Notice.FromString,
                servicer.Notify,
                "Notify",
                party_only=True,
            ),
            response_serializer=party_pb2.Ack.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(PARTY_SERVICE, handlers),)
    )


def add_health_service(
    server: grpc.Server, health: HealthServicer, servicer: PartyServicer
) -> None:
    """Register the standard health service (open to every caller the TLS handshake admits,
    e.g. ``crypten-lite doctor``) with bounded concurrency: checks and watches each hold a
    slot of their own limiter, a few per caller identity."""
    world = servicer.mailbox_world_size
    checks = Limiter(total=2 * (world + 1) + 4, per_key=2)
    watches = Limiter(total=world + 5, per_key=2)
    handlers = {
        "Check": grpc.stream_unary_rpc_method_handler(
            _admitted_unary(
                servicer,
                checks,
                health_pb2.HealthCheckRequest.FromString,
                health.Check,
                "Health.Check",
                party_only=False,
            ),
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
        "Watch": grpc.stream_stream_rpc_method_handler(
            _admitted_unary(
                servicer,
                watches,
                health_pb2.HealthCheckRequest.FromString,
                health.Watch,
                "Health.Watch",
                party_only=False,
                streaming=True,
            ),
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_HEALTH_SERVICE, handlers),)
    )
