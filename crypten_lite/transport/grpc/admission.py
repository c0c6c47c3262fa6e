"""Admission control of a rank's server: who may hold a server thread, and for how long.

Every call a rank's server accepts runs on a thread of its pool (``executor.py``). gRPC reads
a unary request on that thread before the handler runs, so a caller that opens a call and
sends nothing would hold the thread until it hangs up. Therefore every method of the rank's
server is registered as a *streaming-request* handler (same bytes on the wire, clients
unchanged): the handler runs at once, checks the caller's identity (from its TLS
certificate, known before any message), takes a slot from a :class:`Limiter` (a total and a
per-identity cap; over the cap the call is refused at once, never queued), and then reads
its one request with :func:`read_one` under a deadline after which the call is cancelled.

Because every admitted call holds at most one slot, the number of threads that callers can
hold is bounded by the sum of the limits, and the pool is sized above that sum (see
``GrpcCommunicator``): the party's own streams, hello/notify and health checks always find a
thread, whatever edge clients do.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import grpc

__all__ = ["Limiter", "Watchdog", "caller_identity", "read_one"]


def caller_identity(context: grpc.ServicerContext) -> str:
    """The caller's certificate common name (``""`` without TLS or certificate)."""
    names = context.auth_context().get("x509_common_name") or [b""]
    return str(names[0].decode("ascii", "replace"))


class Limiter:
    """Counting slots with a total cap and a per-key cap; :meth:`try_acquire` never waits."""

    def __init__(self, total: int, per_key: int) -> None:
        if total < 1 or per_key < 1:
            raise ValueError("limits must be positive")
        self.total = total
        self.per_key = per_key
        self._lock = threading.Lock()
        self._used = 0
        self._by_key: dict[Hashable, int] = {}

    def try_acquire(self, key: Hashable) -> str | None:
        """Take a slot for ``key``; ``None`` on success, else why not (for the refusal)."""
        with self._lock:
            held = self._by_key.get(key, 0)
            if held >= self.per_key:
                return f"{held} concurrent calls from this caller (limit {self.per_key})"
            if self._used >= self.total:
                return f"{self._used} concurrent calls (limit {self.total})"
            self._by_key[key] = held + 1
            self._used += 1
            return None

    def release(self, key: Hashable) -> None:
        with self._lock:
            held = self._by_key.get(key, 0)
            if held <= 1:
                self._by_key.pop(key, None)
            else:
                self._by_key[key] = held - 1
            self._used -= 1

    @property
    def used(self) -> int:
        with self._lock:
            return self._used


#: heap size below which cancelled watchdog entries are left to expire
_COMPACT_AT = 64


class Watchdog:
    """One daemon thread running callbacks at deadlines (cancellable); cheap per call.

    ``schedule`` and ``cancel`` are O(log n) and O(1) amortized: a cancelled entry stays in
    the heap until it is popped or the heap holds more than twice as many entries as live
    ones, when it is rebuilt (every edge call schedules and cancels one entry, so with a
    60 s read timeout the heap would otherwise hold every call of the last minute, and a
    linear scan per cancel made each call cost O(calls per minute))."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._name = name

    def schedule(self, delay_s: float, callback: Callable[[], Any]) -> int:
        with self._cond:
            token = next(self._ids)
            heapq.heappush(self._heap, (time.monotonic() + delay_s, token, callback))
            self._live.add(token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
            return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._live.discard(token)
            if len(self._heap) > _COMPACT_AT and len(self._heap) > 2 * len(self._live):
                self._heap = [entry for entry in self._heap if entry[1] in self._live]
                heapq.heapify(self._heap)

    @property
    def pending(self) -> int:
        """Entries in the heap, cancelled ones included (for tests)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, token, callback = heapq.heappop(self._heap)
                if token not in self._live:
                    continue
                self._live.discard(token)
            try:
                callback()
            except Exception:  # noqa: S112 - a cancel of a finished call; nothing to do
                continue


def read_one(
    requests: Iterator[bytes],
    context: grpc.ServicerContext,
    watchdog: Watchdog,
    timeout_s: float,
) -> bytes | None:
    """The call's one request, or ``None`` if none arrived within ``timeout_s`` (the call is
    then cancelled) or the caller ended the call without one."""
    token = watchdog.schedule(timeout_s, context.cancel)
    try:
        return next(requests)
    except (StopIteration, grpc.RpcError):
        return None
    finally:
        watchdog.cancel(token)
