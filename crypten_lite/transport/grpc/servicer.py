"""Server side of a rank: the ``Party`` service (deliveries, hello, notices) and the standard
``grpc.health.v1.Health`` service (readiness and liveness).

Every call is checked before anything reaches the mailbox: session id, destination, sender
rank, and — with TLS — that the caller's certificate names the rank it claims. A refused call
is answered with a status code and a message naming the problem, and logged; the handler
returns normally, so no server thread dies and nothing waits on a half-received message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.errors import MessageRejectedError, MessageTooLargeError
from crypten_lite.transport.grpc.mailbox import Mailbox, rank_label
from crypten_lite.transport.grpc.options import PARTY_SERVICE
from crypten_lite.transport.grpc.tls import rank_of_identity
from crypten_lite.transport.grpc.wire import Assembler, clean, decode_frame

__all__ = ["HealthServicer", "PartyServicer", "add_party_service"]

_LOG = logging.getLogger("crypten_lite.transport.grpc")
_Status = health_pb2.HealthCheckResponse.ServingStatus
_MAX_ID = 256


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
    ) -> None:
        self._mailbox = mailbox
        self._tls = tls
        self._max_message_bytes = max_message_bytes
        # the server's gRPC limit also admits edge-client messages (see options), so frames
        # are held to one chunk plus header here
        self._frame_limit = frame_limit
        self._on_bye = on_bye
        self._log = _LOG

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
        stored = 0
        try:
            for frame in request_iterator:
                if self._frame_limit is not None and len(frame) > self._frame_limit:
                    raise _Refused(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"frame of {len(frame)} bytes is larger than max {self._frame_limit} "
                        "(one chunk plus header)",
                    )
                header, payload = decode_frame(frame)
                if first is None:
                    self._check_envelope(context, header)
                    first = header
                else:
                    self._check_same_stream(first, header)
                if assembler is None:
                    assembler = Assembler(header, self._max_message_bytes)
                assembler.add(header, payload)
                if assembler.complete:
                    array = assembler.finish()
                    if not self._mailbox.put(assembler.source, assembler.tag, array):
                        self._log.debug("duplicate message %d dropped", assembler.tag)
                    stored += 1
                    assembler = None
            if assembler is not None:
                raise MessageRejectedError(
                    f"the stream ended inside message {assembler.tag} of rank {assembler.source}"
                )
        except (_Refused, MessageRejectedError) as err:
            return self._refuse(context, "Transfer", self._classify(err))
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


def add_party_service(server: grpc.Server, servicer: PartyServicer) -> None:
    """Register the ``Party`` service. ``Transfer`` takes raw frames (decoded by
    :func:`decode_frame`); the other methods use the generated message classes."""
    handlers = {
        "Transfer": grpc.stream_unary_rpc_method_handler(
            servicer.Transfer, response_serializer=party_pb2.TransferSummary.SerializeToString
        ),
        "Hello": grpc.unary_unary_rpc_method_handler(
            servicer.Hello,
            request_deserializer=party_pb2.HelloRequest.FromString,
            response_serializer=party_pb2.HelloReply.SerializeToString,
        ),
        "Notify": grpc.unary_unary_rpc_method_handler(
            servicer.Notify,
            request_deserializer=party_pb2.Notice.FromString,
            response_serializer=party_pb2.Ack.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(PARTY_SERVICE, handlers),)
    )
