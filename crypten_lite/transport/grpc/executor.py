"""The thread pool that runs a rank's server handlers.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits. A
rank's server holds one worker per peer for the whole job (the peer's incoming stream), so a
process that ends without closing its communicator would hang at exit until every peer
closed its stream. These workers are daemon threads that exit does not wait for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any, ParamSpec, TypeVar

__all__ = ["DaemonExecutor"]

P = ParamSpec("P")
T = TypeVar("T")
_Task = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonExecutor(futures.Executor):
    """At most ``max_workers`` daemon threads; a task never waits while a thread is idle."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._max_workers = max_workers
        self._name = name
        self._threads = 0
        self._idle = 0  # threads waiting for a task and not yet promised one
        self._backlog = 0  # queued tasks no thread is promised to yet
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> futures.Future[T]:
        future: futures.Future[T] = futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if self._idle:
                self._idle -= 1
            elif self._threads < self._max_workers:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"{self._name}_{self._threads}", daemon=True
                ).start()
            else:
                self._backlog += 1
        return future

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            future, fn, args, kwargs = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as err:
                    future.set_exception(err)
            del task, future, fn, args, kwargs
            with self._lock:
                if self._backlog:
                    self._backlog -= 1
                else:
                    self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once the queued tasks are done (``wait`` is not supported:
        a worker may be serving a stream that only its peer can end)."""
        with self._lock:
            self._shutdown = True
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)
