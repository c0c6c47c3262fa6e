"""``GrpcCommunicator``: the communicator interface over gRPC between processes.

Life cycle: the constructor starts this rank's server (so its port is known, e.g. for an
ephemeral ``127.0.0.1:0``); :meth:`connect` opens one channel per peer, waits at a start-up
barrier until every peer answers the standard health check and a ``Hello`` for the same
session and world, then opens one ``Transfer`` stream per peer; :meth:`close` ends the
streams and waits until every peer confirms it stored everything, says ``BYE`` (with the
number of messages sent) and stops; :meth:`abort` says ``ABORT`` and stops.

Threads: the caller's thread encodes and queues sends and waits in receives; per peer, gRPC
runs one thread that writes the outgoing stream (a broken stream = a lost peer, noticed at
once); the server's pool runs the incoming streams (one per peer for the whole job), the
short calls and edge-client calls. Every kind of call holds a slot of its own bounded
limiter, refused at once when full (``admission.py``), and the pool has more threads than
all limits together, so edge clients (or anyone the TLS handshake admits) can never take the
threads that peer streams, hello, notices and health checks need.

Edge clients: the same server hosts the ``Edge`` gateway (``gateway.py``); it answers
UNAVAILABLE until :meth:`set_edge_handler` installs the service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import grpc
import numpy as np
import numpy.typing as npt

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.edge.messages import EdgeHandler
from crypten_lite.errors import (
    CommunicationError,
    ConfigError,
    MessageRejectedError,
    PeerLostError,
    PeerTimeoutError,
)
from crypten_lite.transport.base import Communicator
from crypten_lite.transport.grpc.admission import Watchdog
from crypten_lite.transport.grpc.channels import (
    PeerLink,
    describe_rpc_error,
    open_link,
    server_credentials,
)
from crypten_lite.transport.grpc.executor import DaemonExecutor
from crypten_lite.transport.grpc.gateway import EdgeGateway, add_edge_service
from crypten_lite.transport.grpc.mailbox import Mailbox, rank_label
from crypten_lite.transport.grpc.options import PARTY_SERVICE, GrpcOptions
from crypten_lite.transport.grpc.outbox import Outbox
from crypten_lite.transport.grpc.servicer import (
    HealthServicer,
    PartyServicer,
    add_health_service,
    add_party_service,
)
from crypten_lite.transport.grpc.tls import TlsIdentity
from crypten_lite.transport.grpc.wire import Header, encode_announce, encode_frames

__all__ = ["GrpcCommunicator"]

_LOG = logging.getLogger("crypten_lite.transport.grpc")
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: server threads beyond the sum of all admission limits (refusals take a thread briefly).
_SPARE_WORKERS = 8
#: status codes after which a send counts as "the peer is gone" rather than "refused".
_LOST_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


def _check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 128:
        raise ConfigError("session_id must be a non-empty string of at most 128 characters")
    if not (session_id.isascii() and session_id.isprintable()):
        raise ConfigError("session_id must be printable ASCII")
    return session_id


class GrpcCommunicator(Communicator):
    """One rank's endpoint: a gRPC server for arrivals and a channel to every peer.

    Mutual TLS is the default and required: pass ``tls`` (see ``transport.grpc.tls``). Only
    ``insecure_plaintext=True`` sends in the clear, without authenticating peers.
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        *,
        session_id: str,
        listen: str = "127.0.0.1:0",
        tls: TlsIdentity | None = None,
        insecure_plaintext: bool = False,
        timeout_s: float = 30.0,
        options: GrpcOptions | None = None,
    ) -> None:
        super().__init__(rank, world_size, timeout_s)
        if (tls is None) == (not insecure_plaintext):
            raise ConfigError(
                "mutual TLS needs tls=TlsIdentity(...); plaintext needs insecure_plaintext=True "
                "(and no tls): exactly one of the two"
            )
        self.session_id = _check_session_id(session_id)
        self.options = options or GrpcOptions()
        self._tls = tls
        self._mailbox = Mailbox(
            rank, world_size, session_id, max_buffered_bytes=self.options.max_buffered_bytes
        )
        self._health = HealthServicer()
        self._links: dict[int, PeerLink] = {}
        self._outboxes: dict[int, Outbox] = {}
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._closed = False
        watchdog = Watchdog(f"cl-rank{rank}-watchdog")
        party = PartyServicer(
            self._mailbox,
            tls=tls is not None,
            max_message_bytes=self.options.max_message_bytes,
            on_bye=self._peer_finished,
            frame_limit=self.options.frame_limit,
            watchdog=watchdog,
            request_timeout_s=self.options.request_timeout_s,
        )
        self._gateway = EdgeGateway(
            tls=tls is not None,
            max_message_bytes=self.options.edge_max_message_bytes,
            label=f"rank {rank}",
            max_concurrent=self.options.edge_max_concurrent_calls,
            max_per_client=self.options.edge_max_calls_per_client,
            max_waiting=self.options.edge_max_waiting_calls,
            request_timeout_s=self.options.edge_request_timeout_s,
            watchdog=watchdog,
        )
        # threads admitted calls can hold: one stream per peer, hello/notices, health checks
        # and watches, edge calls (see servicer.add_party_service / add_health_service)
        held = world_size + 2 * (world_size + 1) + 2 + 2 * (world_size + 1) + 4 + world_size + 5
        edge = self.options.edge_max_concurrent_calls + self.options.edge_max_waiting_calls
        self._pool_threads = DaemonExecutor(held + edge + _SPARE_WORKERS, f"cl-rank{rank}")
        self._server = grpc.server(self._pool_threads, options=self.options.server_options())
        add_party_service(self._server, party)
        add_edge_service(self._server, self._gateway)
        add_health_service(self._server, self._health, party)
        try:
            if tls is None:
                _LOG.warning("rank %d: INSECURE plaintext transport, peers unauthenticated", rank)
                port = self._server.add_insecure_port(listen)
            else:
                port = self._server.add_secure_port(listen, server_credentials(tls))
        except RuntimeError as err:
            raise CommunicationError(f"rank {rank} cannot listen on {listen}: {err}") from err
        if port == 0:
            raise CommunicationError(f"rank {rank} cannot listen on {listen}")
        self.port: int = port
        self.listen = listen
        self._server.start()

    # -- edge clients ----------------------------------------------------------------------
    def set_edge_handler(
        self,
        handler: EdgeHandler,
        *,
        token_key: bytes | None = None,
        token_job_id: str | None = None,
    ) -> None:
        """Serve edge clients (``crypten_lite.client``) on this rank's server and port through
        ``handler``; until called, their requests are answered UNAVAILABLE "service not
        ready". Clients authenticate with a ``client-<id>`` certificate from the job CA or,
        with ``token_key`` and ``token_job_id`` (the job the tokens were issued for), an
        operator-issued token (``gateway.issue_token``) that has not expired."""
        self._gateway.set_handler(handler, token_key, token_job_id)

    # -- start-up --------------------------------------------------------------------------
    def connect(self, peers: Mapping[int, str], timeout_s: float = 30.0) -> None:
        """Open a channel to every peer in ``peers`` (rank -> ``host:port``) and wait until all
        of them are ready, at most ``timeout_s``; the error names every missing peer."""
        if self._links:
            raise CommunicationError(f"rank {self.rank} is already connected")
        for peer in peers:
            self._check_peer(peer, "peer")
        for peer, address in peers.items():
            self._links[peer] = open_link(peer, self.world_size, address, self._tls, self.options)
        self._barrier(timeout_s)
        for peer, link in self._links.items():
            self._outboxes[peer] = Outbox(
                link,
                self.options.stream_deadline_s,
                lambda future, peer=peer: self._stream_ended(peer, future),  # type: ignore[misc]
                encode_announce(self.session_id, self.rank, peer),
            )

    def _hello(self, link: PeerLink, timeout_s: float) -> None:
        health = link.health.Check(
            health_pb2.HealthCheckRequest(service=PARTY_SERVICE), timeout=timeout_s
        )
        if health.status != _SERVING:
            raise CommunicationError(f"health status {health.status}")
        reply = link.party.Hello(
            party_pb2.HelloRequest(
                session_id=self.session_id, source=self.rank, world_size=self.world_size
            ),
            timeout=timeout_s,
        )
        if (reply.session_id, reply.rank, reply.world_size) != (
            self.session_id,
            link.rank,
            self.world_size,
        ):
            raise ConfigError(
                f"{link.address} answered as rank {reply.rank} of {reply.world_size} in session "
                f"{reply.session_id[:40]!r}; expected {rank_label(link.rank, self.world_size)} "
                f"of {self.world_size} in session {self.session_id!r}"
            )

    def _barrier(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = dict(self._links)
        last: dict[int, str] = {}
        while waiting:
            for peer, link in list(waiting.items()):
                try:
                    self._hello(link, max(0.05, min(1.0, deadline - time.monotonic())))
                except grpc.RpcError as err:
                    last[peer] = describe_rpc_error(err)
                    if err.code() in (
                        grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.FAILED_PRECONDITION,
                    ):
                        raise ConfigError(
                            f"rank {self.rank}: {rank_label(peer, self.world_size)} at "
                            f"{link.address} refused this rank: {last[peer]}"
                        ) from err
                    continue
                except CommunicationError as err:
                    last[peer] = str(err)
                    continue
                del waiting[peer]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                missing = "; ".join(
                    f"{rank_label(p, self.world_size)} at {waiting[p].address} "
                    f"({last.get(p, 'no answer')})"
                    for p in sorted(waiting)
                )
                raise PeerTimeoutError(
                    f"rank {self.rank}: start-up barrier timed out after {timeout_s:g}s; "
                    f"not ready: {missing}"
                )
            time.sleep(0.05)

    # -- messages --------------------------------------------------------------------------
    def _link(self, peer: int) -> PeerLink:
        link = self._links.get(peer)
        if link is None:
            raise CommunicationError(
                f"rank {self.rank} has no connection to {rank_label(peer, self.world_size)}"
                + ("" if self._links else " (call connect() first)")
            )
        return link

    def _peer_finished(self, peer: int) -> None:
        """A peer said goodbye: it takes nothing more, so end the stream to it now (its
        server can then stop at once instead of waiting out a grace period)."""
        box = self._outboxes.get(peer)
        if box is not None:
            box.finish()

    def _post(self, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        self._mailbox.raise_fault()
        self._link(dst)
        if self._mailbox.finished(dst):
            raise PeerLostError(
                f"rank {self.rank} cannot send message {seq} to "
                f"{rank_label(dst, self.world_size)}: it already finished"
            )
        header = Header(self.session_id, self.rank, dst, seq)
        _, frames = encode_frames(header, payload, self.options.chunk_bytes)
        self._outboxes[dst].post(frames)

    def _stream_ended(self, peer: int, future: grpc.Future) -> None:
        with self._cond:
            self._cond.notify_all()
        if future.cancelled() or future.exception() is None:
            return
        if self._closing.is_set() or self._mailbox.finished(peer):
            return
        err = future.exception()
        detail = describe_rpc_error(err)
        code = err.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            self._mailbox.lose(
                peer,
                f"the stream to it reached its deadline of {self.options.stream_deadline_s:g}s "
                "(GrpcOptions.stream_deadline_s)",
            )
        elif code in _LOST_CODES:
            self._mailbox.lose(
                peer, f"the connection to {self._links[peer].address} broke ({detail})"
            )
        else:
            self._mailbox.fail(
                MessageRejectedError(
                    f"{rank_label(peer, self.world_size)} refused a message from rank "
                    f"{self.rank}: {detail}"
                )
            )

    def _take(self, src: int, seq: int, timeout_s: float) -> npt.NDArray[np.generic]:
        self._link(src)
        return self._mailbox.take(src, seq, timeout_s)

    def _drain(self, timeout_s: float) -> None:
        """End every stream and wait until each peer has stored all its messages."""
        for box in self._outboxes.values():
            box.finish()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._mailbox.fault is None:
                waiting = [
                    p
                    for p, box in self._outboxes.items()
                    if not box.done() and not self._mailbox.finished(p)
                ]
                if not waiting:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeoutError(
                        f"rank {self.rank}: "
                        + ", ".join(rank_label(p, self.world_size) for p in waiting)
                        + f" did not confirm receipt within {timeout_s:g}s"
                    )
                self._cond.wait(min(remaining, 0.5))
        self._mailbox.raise_fault()

    # -- shutdown --------------------------------------------------------------------------
    def _notify(self, kind: int, reason: str = "") -> None:
        calls = []
        for peer, link in self._links.items():
            if self._mailbox.finished(peer):
                continue
            notice = party_pb2.Notice(
                session_id=self.session_id,
                source=self.rank,
                kind=kind,
                messages_sent=self._send_seq.get(peer, 0),
                reason=reason[:400],
            )
            calls.append(link.party.Notify.future(notice, timeout=self.options.notice_timeout_s))
        for call in calls:
            try:
                call.result()
            except grpc.RpcError as err:
                _LOG.debug("rank %d: notice not delivered: %s", self.rank, describe_rpc_error(err))

    def _shutdown(self, clean: bool) -> None:
        self._closed = True
        self._closing.set()
        if clean:
            self._health.set_final(_NOT_SERVING)
        for box in self._outboxes.values():
            box.cancel()
        grace = self.options.shutdown_grace_s if clean else 0.0
        self._server.stop(grace).wait(grace + 5.0)
        self._pool_threads.shutdown()
        for link in self._links.values():
            link.close()

    def close(self) -> None:
        """End the streams once every message is stored, tell every peer this rank is done
        (``BYE``) and shut down. If a send failed, abort instead and raise."""
        if self._closed:
            return
        try:
            self._drain(self.timeout_s)
        except CommunicationError as err:
            self.abort(type(err).__name__)
            raise
        self._notify(party_pb2.Notice.BYE)
        self._shutdown(clean=True)

    def abort(self, reason: str) -> None:
        """Tell every peer this rank failed (``reason``: short, no data) and shut down."""
        if self._closed:
            return
        self._notify(party_pb2.Notice.ABORT, reason)
        self._shutdown(clean=False)

    def __enter__(self) -> GrpcCommunicator:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(type(exc).__name__)

    def __repr__(self) -> str:
        mode = "mTLS" if self._tls is not None else "INSECURE plaintext"
        return (
            f"GrpcCommunicator(rank={self.rank}, world_size={self.world_size}, "
            f"port={self.port}, {mode})"
        )
