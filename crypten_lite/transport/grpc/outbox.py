"""The sending half of the link to one peer: one ``Transfer`` stream for the whole job.

Measured on loopback, a message on an open stream costs about a third of a unary call
(0.2 ms vs 0.6 ms round trip), and large tensors stream at the speed of gRPC itself. Messages
are queued as iterators over their encoded frames; gRPC's request thread pulls them in
order. There are no per-message acknowledgements (they cost a thread hop per message on both sides):
closing the stream makes the receiver answer once it has stored everything, and a stream that
breaks completes the call's future with the error — that is how a lost peer is noticed at once.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import grpc

from crypten_lite.transport.grpc.channels import PeerLink

__all__ = ["Outbox"]


class Outbox:
    """Queue of messages to one peer over one stream (see module docstring)."""

    def __init__(
        self,
        link: PeerLink,
        deadline_s: float,
        on_end: Callable[[grpc.Future], None],
        announce: bytes,
    ) -> None:
        self._queue: queue.SimpleQueue[Iterator[bytes] | None] = queue.SimpleQueue()
        self._queue.put(iter((announce,)))  # the opening frame (``wire.encode_announce``)
        self.posted = 0
        self._future = link.transfer.future(self._frames(), timeout=deadline_s)
        self._future.add_done_callback(on_end)

    def _frames(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield from item

    def post(self, frames: Iterator[bytes]) -> None:
        """Queue one message (its frames); returns at once."""
        self.posted += 1
        self._queue.put(frames)

    def done(self) -> bool:
        """True once the stream has ended (answered, failed or cancelled)."""
        return bool(self._future.done())

    def finish(self) -> None:
        """End the stream after the queued messages; the receiver then answers."""
        self._queue.put(None)

    def cancel(self) -> None:
        """Drop the stream now."""
        self._queue.put(None)
        self._future.cancel()
