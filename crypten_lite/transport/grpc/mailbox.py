"""The receiving side's mailbox: arrivals matched to waiting receives by (source, tag).

One mailbox belongs to one session (the servicer refuses other session ids before anything
reaches it), so its key is the (session, source, tag) triple with the session fixed. Receives
from one source happen in tag order, so everything below a source's next expected tag has
been taken and a late duplicate (a retried send) is dropped.

Besides messages the mailbox tracks how each peer ended: a clean ``BYE`` records how many
messages the peer sent, so a receive beyond that fails at once; a lost connection, an
``ABORT`` notice or a send that failed makes every pending and later receive raise the first
fault recorded, naming the peer — so no party waits out its timeout for a peer that is gone.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import CommunicationError, PeerLostError, PeerTimeoutError

__all__ = ["Mailbox", "rank_label"]


def rank_label(rank: int, world_size: int) -> str:
    """``party 2`` or ``dealer (rank 3)``: how errors name a rank."""
    return f"dealer (rank {rank})" if rank == world_size else f"party {rank}"


class Mailbox:
    """Messages for one rank in one session (see module docstring)."""

    def __init__(self, rank: int, world_size: int, session_id: str) -> None:
        self.rank = rank
        self.world_size = world_size
        self.session_id = session_id
        self._cond = threading.Condition()
        self._messages: dict[tuple[int, int], npt.NDArray[np.generic]] = {}
        self._next_tag: dict[int, int] = {}
        self._finished: dict[int, int] = {}
        self._fault: CommunicationError | None = None

    def _label(self, rank: int) -> str:
        return rank_label(rank, self.world_size)

    def put(self, source: int, tag: int, array: npt.NDArray[np.generic]) -> bool:
        """Store an arrival; False (and nothing stored) for a duplicate."""
        with self._cond:
            key = (source, tag)
            if tag < self._next_tag.get(source, 0) or key in self._messages:
                return False
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
                    return self._messages.pop(key)
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
