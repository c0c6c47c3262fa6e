"""Per-round registry of the update shares one aggregation server received.

One :class:`RoundRegistry` lives in each server's
:class:`~crypten_lite.fl.service.AggregationService`. It knows the public parameters of the
open round (number, length, ring width, this server's index among ``num_servers``) and checks
every :class:`~crypten_lite.edge.messages.UpdateShare` before it is kept:

* wrong round, or no round open -> ``STALE``;
* a second upload by the same client for the round, or a nonce seen before in this job (a
  replayed message) -> ``DUPLICATE``; the message starts with
  :data:`~crypten_lite.edge.messages.DUPLICATE_SAME_UPLOAD` only when the share repeats the
  client's stored upload (same nonce): a retry whose first attempt landed;
* wrong length, ring width, dtype, nonce or seed size, or the wrong kind of share for this
  server (servers ``0..k-2`` take a seed, server ``k-1`` the masked vector) -> ``INVALID``
  with a message naming the problem;
* a client outside ``allowed_clients`` (when given) -> ``UNAUTHENTICATED``.

A refused upload leaves the registry as it was: other clients are not disturbed. Accepted
shares are added to a running sum as they arrive (so the work overlaps collection); a share is
kept (the seed, or a reference to the vector) so that it can be taken out again if the servers
later agree to exclude its client. All methods are thread-safe (gRPC worker threads submit,
the round loop closes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.messages import (
    DUPLICATE_SAME_UPLOAD,
    NONCE_SIZE,
    SEED_SIZE,
    EdgeRefusal,
    EdgeRequestError,
    UpdateShare,
    check_client,
    invalid,
    ring_dtype,
)

__all__ = ["ClosedRound", "RoundRegistry", "SeedExpander", "ring_dtype"]

U64 = npt.NDArray[np.uint64]
#: ``expand_seed(seed, num_elements, ring_bits)`` -> this server's share (the client SDK's).
SeedExpander = Callable[[bytes, int, int], npt.NDArray[np.unsignedinteger]]


@dataclass(frozen=True)
class _Entry:
    nonce: bytes
    seed: bytes | None
    vector: npt.NDArray[np.unsignedinteger] | None
    payload_bytes: int


@dataclass(frozen=True)
class ClosedRound:
    """What one server holds when a round closes: the running sum over ``delivered`` (held as
    ``uint64``; reduce mod ``2^ring_bits``), and a way to remove clients from it."""

    round: int
    num_elements: int
    ring_bits: int
    delivered: tuple[str, ...]
    payload_bytes: dict[str, int]
    running_sum: U64
    _entries: dict[str, _Entry]
    _expand: SeedExpander

    def share_of(self, client_id: str) -> U64:
        """This server's share of one client's update, widened to uint64."""
        entry = self._entries[client_id]
        if entry.seed is not None:
            return np.asarray(
                self._expand(entry.seed, self.num_elements, self.ring_bits), dtype=np.uint64
            )
        return np.asarray(entry.vector, dtype=np.uint64)  # validated: seed or vector

    def sum_over(self, clients: Iterable[str]) -> U64:
        """This server's share of the sum over ``clients`` (a subset of ``delivered``), mod
        ``2^ring_bits``. Cost: one expansion or one pass per client *left out*."""
        keep = set(clients)
        unknown = keep - set(self._entries)
        if unknown:
            raise ValueError(f"clients {sorted(unknown)} did not deliver to this server")
        total = self.running_sum.copy()
        for client_id in self._entries:
            if client_id not in keep:
                np.subtract(total, self.share_of(client_id), out=total)
        if self.ring_bits == 32:
            np.bitwise_and(total, np.uint64(0xFFFFFFFF), out=total)
        return total


class RoundRegistry:
    """Validates and collects the update shares of one server (see module docstring)."""

    def __init__(
        self,
        *,
        num_elements: int,
        ring_bits: int,
        server_index: int,
        num_servers: int,
        expand_seed: SeedExpander,
        allowed_clients: Iterable[str] | None = None,
    ) -> None:
        if isinstance(num_elements, bool) or not isinstance(num_elements, int) or num_elements < 1:
            raise ValueError(f"num_elements must be a positive int, got {num_elements!r}")
        self._dtype = ring_dtype(ring_bits)
        if not isinstance(num_servers, int) or num_servers < 2:
            raise ValueError(f"num_servers must be an int >= 2, got {num_servers!r}")
        if not isinstance(server_index, int) or not 0 <= server_index < num_servers:
            raise ValueError(f"server_index must lie in [0, {num_servers}), got {server_index!r}")
        self.num_elements = num_elements
        self.ring_bits = ring_bits
        self.server_index = server_index
        self.num_servers = num_servers
        self._expand = expand_seed
        self.allowed = None if allowed_clients is None else frozenset(allowed_clients)
        self._takes_seed = server_index < num_servers - 1
        self._lock = threading.Condition()
        self._round = 0
        self._open = False
        self._entries: dict[str, _Entry] = {}
        self._sum = np.zeros(0, np.uint64)
        self._nonces: set[bytes] = set()

    # -- round lifecycle (the service's loop) -------------------------------------------------
    @property
    def round(self) -> int:
        return self._round

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self, round_number: int) -> None:
        """Start accepting shares for ``round_number`` (must increase)."""
        with self._lock:
            if round_number <= self._round:
                raise ValueError(f"round must increase: {round_number} after {self._round}")
            self._round = round_number
            self._open = True
            self._entries = {}
            self._sum = np.zeros(self.num_elements, np.uint64)
            self._lock.notify_all()

    def wait_for(self, count: int, deadline: float) -> int:
        """Block until ``count`` clients delivered or ``time.monotonic()`` passes
        ``deadline``; returns how many delivered."""
        with self._lock:
            while len(self._entries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return len(self._entries)

    def close(self) -> ClosedRound:
        """Stop accepting (later uploads are STALE) and hand over what was collected."""
        with self._lock:
            self._open = False
            entries, self._entries = self._entries, {}
            running, self._sum = self._sum, np.zeros(0, np.uint64)
            return ClosedRound(
                round=self._round,
                num_elements=self.num_elements,
                ring_bits=self.ring_bits,
                delivered=tuple(sorted(entries)),
                payload_bytes={c: e.payload_bytes for c, e in entries.items()},
                running_sum=running,
                _entries=entries,
                _expand=self._expand,
            )

    # -- submissions (gRPC worker threads) ----------------------------------------------------
    def submit(self, client_id: str, share: UpdateShare) -> None:
        """Check and keep one share; raises :class:`EdgeRequestError` to refuse."""
        check_client(client_id, self.allowed)
        if not isinstance(share, UpdateShare):
            raise invalid(f"expected an UpdateShare, got {type(share).__name__}")
        self._check_format(share)
        # expand outside the lock: the only expensive step, and independent of the state
        part = self._share_vector(share)
        with self._lock:
            if not self._open or share.round != self._round:
                state = "open" if self._open else "closed"
                raise EdgeRequestError(
                    EdgeRefusal.STALE,
                    f"round {share.round} is not open (current round {self._round}, {state})",
                )
            stored = self._entries.get(client_id)
            if stored is not None:
                if stored.nonce == share.nonce:
                    raise EdgeRequestError(
                        EdgeRefusal.DUPLICATE,
                        f"{DUPLICATE_SAME_UPLOAD} for round {self._round} (this nonce)",
                    )
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE,
                    f"already delivered a different update for round {self._round}",
                )
            if share.nonce in self._nonces:
                raise EdgeRequestError(EdgeRefusal.DUPLICATE, "nonce already used (replay)")
            self._nonces.add(share.nonce)
            np.add(self._sum, part, out=self._sum)
            payload = len(share.nonce) + (
                len(share.seed) if share.seed is not None else part.size * self._dtype.itemsize
            )
            self._entries[client_id] = _Entry(
                nonce=share.nonce,
                seed=share.seed,
                vector=share.vector if share.seed is None else None,
                payload_bytes=payload,
            )
            self._lock.notify_all()

    def _check_format(self, share: UpdateShare) -> None:
        if isinstance(share.round, bool) or not isinstance(share.round, int):
            raise invalid(f"round must be an int, got {type(share.round).__name__}")
        if not isinstance(share.nonce, bytes) or len(share.nonce) != NONCE_SIZE:
            raise invalid(f"nonce must be {NONCE_SIZE} bytes")
        if share.ring_bits != self.ring_bits:
            raise invalid(f"ring_bits is {share.ring_bits!r}, this job uses {self.ring_bits}")
        if share.num_elements != self.num_elements:
            raise invalid(
                f"num_elements is {share.num_elements!r}, this job expects {self.num_elements}"
            )
        if (share.seed is None) == (share.vector is None):
            raise invalid("exactly one of seed and vector must be set")
        if self._takes_seed:
            if share.seed is None:
                raise invalid(
                    f"server {self.server_index} of {self.num_servers} takes a seed, got a vector"
                )
            if not isinstance(share.seed, bytes) or len(share.seed) != SEED_SIZE:
                raise invalid(f"seed must be {SEED_SIZE} bytes")
            return
        vector = share.vector
        if vector is None:
            raise invalid(
                f"server {self.server_index} of {self.num_servers} takes the masked vector, "
                "got a seed"
            )
        if not isinstance(vector, np.ndarray) or vector.dtype != self._dtype:
            got = vector.dtype if isinstance(vector, np.ndarray) else type(vector).__name__
            raise invalid(f"vector dtype is {got}, expected {self._dtype} for this ring")
        if vector.ndim != 1 or vector.size != self.num_elements:
            raise invalid(f"vector has shape {vector.shape}, expected ({self.num_elements},)")

    def _share_vector(self, share: UpdateShare) -> npt.NDArray[np.unsignedinteger]:
        if share.seed is not None:
            part = np.asarray(self._expand(share.seed, self.num_elements, self.ring_bits))
            if part.shape != (self.num_elements,):
                raise ValueError("seed expansion returned the wrong length")  # internal bug
            return part
        return cast(npt.NDArray[np.unsignedinteger], share.vector)  # validated: one is set
