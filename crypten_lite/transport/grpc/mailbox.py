"""The receiving side's mailbox: arrivals matched to waiting receives by (source, tag).

One mailbox belongs to one session (the servicer refuses other session ids before anything
reaches it), so its key is the (session, source, tag) triple with the session fixed. Receives
from one source happen in tag order, so everything below a source's next expected tag has
been taken and a late duplicate (a retried send) is dropped.

Besides messages the mailbox tracks how each peer ended: a clean ``BYE`` records how many
messages the peer sent, so a receive beyond that fails at once; a lost connection, an
``ABORT`` notice or a send that failed makes every pending and later receive raise the first
fault recorded, naming the peer — so no party waits out its timeout for a peer that is gone.

Bounded buffering (:meth:`admit`, called by the ``Transfer`` stream before it allocates a
message): a peer has one stream, and its messages travel on it in the order its per-pair
sequence counter hands out tags, so the stream must carry tags ``0, 1, 2, ...`` exactly; a
frame that skips ahead (or repeats) is a protocol violation: the peer is marked faulty
(``MessageRejectedError`` naming it) and its stream refused. Consecutive tags cannot be
refused for being "too far ahead" — a party may legitimately run many sends ahead of its
peer (e.g. reveals to one party in a loop) — so the *bytes* buffered per peer are bounded
instead: while a peer's unconsumed messages hold ``max_buffered_bytes`` or more, its stream
is not read (HTTP/2 flow control then stalls the sender's stream, not its program), so one
peer can make this rank hold at most ``max_buffered_bytes`` plus one message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import (
    CommunicationError,
    MessageRejectedError,
    PeerLostError,
    PeerTimeoutError,
)

__all__ = ["Mailbox", "rank_label"]


def rank_label(rank: int, world_size: int) -> str:
    """``party 2`` or ``dealer (rank 3)``: how errors name a rank."""
    return f"dealer (rank {rank})" if rank == world_size else f"party {rank}"


class Mailbox:
    """Messages for one rank in one session (see module docstring)."""

    def __init__(
        self, rank: int, world_size: int, session_id: str, max_buffered_bytes: int = 1 << 28
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        self.session_id = session_id
        self._cond = threading.Condition()
        self._messages: dict[tuple[int, int], npt.NDArray[np.generic]] = {}
        self._next_tag: dict[int, int] = {}
        self._finished: dict[int, int] = {}
        self._fault: CommunicationError | None = None
        self._max_buffered = max_buffered_bytes
        self._buffered: dict[int, int] = {}  # bytes admitted or stored, not yet taken
        self._arrived: dict[int, int] = {}  # next tag each peer's stream must carry

    def _label(self, rank: int) -> str:
        return rank_label(rank, self.world_size)

    def admit(
        self, source: int, tag: int, nbytes: int, active: Callable[[], bool] = lambda: True
    ) -> bool:
        """Reserve room for message ``tag`` (``nbytes``) of ``source``'s stream before it is
        allocated; wait while the peer's unconsumed messages fill the budget. Raise (and
        mark the peer faulty) unless ``tag`` is the stream's next one; False if the wait
        ended because the job failed or the call ended (``active()`` false)."""
        with self._cond:
            expected = self._arrived.get(source, 0)
            if tag != expected:
                error = MessageRejectedError(
                    f"rank {self.rank} refused message {tag} from {self._label(source)}: its "
                    f"stream must carry consecutive tags and the next one is {expected}"
                )
                if self._fault is None:
                    self._fault = error
                self._cond.notify_all()
                raise error
            while True:
                held = self._buffered.get(source, 0)
                if held == 0 or held + nbytes <= self._max_buffered:
                    break
                if self._fault is not None or not active():
                    return False
                self._cond.wait(0.5)
            self._buffered[source] = held + nbytes
            self._arrived[source] = tag + 1
            return True

    def release(self, source: int, tag: int, nbytes: int) -> None:
        """Give back the reservation of message ``tag``, which never arrived (its stream was
        refused)."""
        with self._cond:
            self._buffered[source] = max(0, self._buffered.get(source, 0) - nbytes)
            if self._arrived.get(source) == tag + 1:
                self._arrived[source] = tag
            self._cond.notify_all()

    def buffered(self, source: int) -> int:
        """Bytes of ``source`` admitted or stored and not yet taken."""
        with self._cond:
            return self._buffered.get(source, 0)

    def put(
        self, source: int, tag: int, array: npt.NDArray[np.generic], admitted: bool = False
    ) -> bool:
        """Store an arrival (``admitted``: its bytes were reserved with :meth:`admit`);
        False (and nothing stored) for a duplicate."""
        with self._cond:
            key = (source, tag)
            if tag < self._next_tag.get(source, 0) or key in self._messages:
                if admitted:
                    self._buffered[source] -= array.nbytes
                return False
            if not admitted:
                self._buffered[source] = self._buffered.get(source, 0) + array.nbytes
            self._messages[key] = array
            self._cond.notify_all()
            return True

    def finish(self, source: int, messages_sent: int) -> None:
        """``source`` ended cleanly after sending ``messages_sent`` messages to this rank."""
        with self._cond:
            self._finished[source] = messages_sent
            self._cond.notify_all()

    def finished(self, source: int) -> bool:
        with self._cond:
            return source in self._finished

    def fail(self, error: CommunicationError) -> None:
        """Record a fatal fault; the first one recorded is what every receive raises."""
        with self._cond:
            if self._fault is None:
                self._fault = error
            self._cond.notify_all()

    def lose(self, peer: int, why: str) -> None:
        """``peer`` is gone (connection dropped, aborted) unless it already said goodbye."""
        with self._cond:
            if peer in self._finished:
                return
        self.fail(PeerLostError(f"rank {self.rank} lost {self._label(peer)}: {why}"))

    @property
    def fault(self) -> CommunicationError | None:
        with self._cond:
            return self._fault

    def raise_fault(self) -> None:
        """Raise the recorded fault, if any."""
        fault = self.fault
        if fault is not None:
            raise type(fault)(str(fault))

    def take(self, source: int, tag: int, timeout_s: float) -> npt.NDArray[np.generic]:
        """Wait for message ``tag`` from ``source`` (see module docstring for the failures)."""
        deadline = time.monotonic() + timeout_s
        key = (source, tag)
        with self._cond:
            while True:
                if key in self._messages:
                    self._next_tag[source] = tag + 1
                    array = self._messages.pop(key)
                    self._buffered[source] -= array.nbytes
                    self._cond.notify_all()
                    return array
                if self._fault is not None:
                    raise type(self._fault)(str(self._fault))
                sent = self._finished.get(source)
                if sent is not None and tag >= sent:
                    raise PeerLostError(
                        f"rank {self.rank} waits for message {tag} from {self._label(source)}, "
                        f"which finished after sending {sent}: the ranks ran different programs"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeoutError(
                        f"rank {self.rank} waited {timeout_s:.1f}s for message {tag} from "
                        f"{self._label(source)}"
                    )
                self._cond.wait(remaining)
