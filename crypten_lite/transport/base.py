"""The communicator interface every transport implements, and per-party traffic statistics.

Ranks ``0 .. world_size-1`` are the computing parties; rank ``world_size`` is the dealer.
Messages are numpy arrays (raw bytes + dtype + shape on the wire, never pickled). Each ordered
pair of ranks has its own sequence counter, advanced identically by sender and receiver, so a
message is matched to its receive by ``(source, sequence)`` whatever order arrivals take, and
the dealer (which sees only some of the traffic) stays in step too.

A **round** is one communication step on the critical path: one call of :meth:`exchange` (or
a collective built on it) in which this party sends and/or waits for peers. Point-to-point
:meth:`send`/:meth:`recv` (used for dealer traffic that overlaps a round) count bytes and
messages but not rounds. Every backend counts the same way because the counting lives here.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import CommunicationError

__all__ = ["ALLOWED_DTYPES", "CommSnapshot", "CommStats", "Communicator"]

#: dtypes a message may carry; anything else is refused before it is sent.
ALLOWED_DTYPES = frozenset(
    np.dtype(t) for t in (np.uint64, np.int64, np.uint8, np.uint32, np.int32, np.float64)
)


@dataclass(frozen=True)
class CommSnapshot:
    """Immutable copy of :class:`CommStats`; differences give the cost of a code section."""

    rounds: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages: int = 0
    seconds: float = 0.0

    def __sub__(self, other: CommSnapshot) -> CommSnapshot:
        return CommSnapshot(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )


@dataclass
class CommStats:
    """Traffic of one party: rounds, payload bytes, messages sent, seconds spent communicating."""

    rounds: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        """Zero every counter."""
        for f in fields(self):
            setattr(self, f.name, type(getattr(self, f.name))())

    def snapshot(self) -> CommSnapshot:
        """An immutable copy of the current counters."""
        return CommSnapshot(**{f.name: getattr(self, f.name) for f in fields(self)})


class Communicator(ABC):
    """Tagged point-to-point messages between ranks, plus the collectives protocols use."""

    def __init__(self, rank: int, world_size: int, timeout_s: float) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if not 0 <= rank <= world_size:
            raise ValueError(
                f"rank must lie in [0, {world_size}] (dealer = {world_size}), got {rank}"
            )
        self.rank = rank
        self.world_size = world_size
        self.timeout_s = float(timeout_s)
        self.stats = CommStats()
        self._send_seq: dict[int, int] = {}
        self._recv_seq: dict[int, int] = {}

    @property
    def dealer_rank(self) -> int:
        """The rank of the trusted dealer (one past the last party)."""
        return self.world_size

    @property
    def parties(self) -> range:
        """Ranks of the computing parties."""
        return range(self.world_size)

    # -- backend hooks -------------------------------------------------------------------
    @abstractmethod
    def _post(self, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        """Deliver ``payload`` to ``dst`` under sequence number ``seq`` (non-blocking)."""

    def _post_owned(self, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        """:meth:`_post` for an array the sender gave up (default: the same)."""
        self._post(dst, seq, payload)

    @abstractmethod
    def _take(self, src: int, seq: int, timeout_s: float) -> npt.NDArray[np.generic]:
        """Wait for message ``seq`` from ``src``; raise ``PeerTimeoutError``/``PeerLostError``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release transport resources."""

    # -- point to point -------------------------------------------------------------------
    def _check_peer(self, peer: int, role: str) -> None:
        if not 0 <= peer <= self.world_size or peer == self.rank:
            raise CommunicationError(
                f"{role} rank {peer} is not a peer of rank {self.rank} "
                f"(ranks 0..{self.world_size}, dealer {self.world_size})"
            )

    def send(self, dst: int, payload: npt.NDArray[np.generic], *, owned: bool = False) -> None:
        """Send one array to ``dst``; does not wait for the receiver. ``owned``: the caller
        hands the array over and never touches it again, so an in-process transport may
        deliver it without a defensive copy."""
        self._check_peer(dst, "destination")
        array = np.asarray(payload)
        if array.dtype not in ALLOWED_DTYPES:
            raise CommunicationError(
                f"cannot send dtype {array.dtype}; allowed: uint64, int64, ..."
            )
        start = time.perf_counter()
        seq = self._send_seq.get(dst, 0)
        self._send_seq[dst] = seq + 1
        if owned:
            self._post_owned(dst, seq, array)
        else:
            self._post(dst, seq, array)
        self.stats.bytes_sent += array.nbytes
        self.stats.messages += 1
        self.stats.seconds += time.perf_counter() - start

    def recv(self, src: int) -> npt.NDArray[np.generic]:
        """Receive the next array from ``src``, waiting at most the configured timeout."""
        self._check_peer(src, "source")
        start = time.perf_counter()
        seq = self._recv_seq.get(src, 0)
        self._recv_seq[src] = seq + 1
        array = self._take(src, seq, self.timeout_s)
        self.stats.bytes_received += array.nbytes
        self.stats.seconds += time.perf_counter() - start
        return array

    # -- collectives (each is one round) --------------------------------------------------
    def exchange(
        self, sends: Mapping[int, npt.NDArray[np.generic]], recv_from: Iterable[int]
    ) -> dict[int, npt.NDArray[np.generic]]:
        """One round: send every ``sends[dst]``, then receive one array from each source."""
        sources = list(recv_from)
        if sends or sources:
            self.stats.rounds += 1
        for dst, payload in sends.items():
            self.send(dst, payload)
        return {src: self.recv(src) for src in sources}

    def all_gather(self, payload: npt.NDArray[np.generic]) -> list[npt.NDArray[np.generic]]:
        """One round among the parties: everyone's array, in rank order (own included)."""
        peers = [p for p in self.parties if p != self.rank]
        got = self.exchange({p: payload for p in peers}, peers)
        got[self.rank] = np.asarray(payload)
        return [got[p] for p in self.parties]

    def gather(
        self, payload: npt.NDArray[np.generic], dst: int
    ) -> list[npt.NDArray[np.generic]] | None:
        """One round: every party sends to ``dst``; ``dst`` gets the list in rank order."""
        if self.rank == dst:
            peers = [p for p in self.parties if p != dst]
            got = self.exchange({}, peers)
            got[dst] = np.asarray(payload)
            return [got[p] for p in self.parties]
        self.exchange({dst: payload}, [])
        return None

    def broadcast(
        self, payload: npt.NDArray[np.generic] | None, src: int
    ) -> npt.NDArray[np.generic]:
        """One round: party ``src`` sends its array to every other party."""
        if self.rank == src:
            if payload is None:
                raise CommunicationError(f"broadcast source {src} has nothing to send")
            self.exchange({p: payload for p in self.parties if p != src}, [])
            return np.asarray(payload)
        return self.exchange({}, [src])[src]
