"""In-process transport: every rank is a thread of one process, sharing a mailbox hub.

Messages are copied on send, so no two ranks ever share an array. A failing rank aborts the
hub, and every rank blocked in a receive then raises :class:`PeerLostError` at once instead of
waiting for its timeout.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import PeerLostError, PeerTimeoutError
from crypten_lite.transport.base import Communicator

__all__ = ["InProcessCommunicator", "InProcessHub"]


class InProcessHub:
    """The shared mailbox of one in-process job: messages keyed by (src, dst, seq)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self._cond = threading.Condition()
        self._mailbox: dict[tuple[int, int, int], npt.NDArray[np.generic]] = {}
        self._abort_reason: str | None = None

    def communicator(self, rank: int, timeout_s: float = 30.0) -> InProcessCommunicator:
        """The endpoint of ``rank`` (dealer = ``world_size``)."""
        return InProcessCommunicator(self, rank, timeout_s)

    def abort(self, reason: str) -> None:
        """Make every pending and future receive fail with ``reason``."""
        with self._cond:
            if self._abort_reason is None:
                self._abort_reason = reason
            self._cond.notify_all()

    def post(self, src: int, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        with self._cond:
            self._mailbox[(src, dst, seq)] = payload
            self._cond.notify_all()

    def take(self, src: int, dst: int, seq: int, timeout_s: float) -> npt.NDArray[np.generic]:
        deadline = time.monotonic() + timeout_s
        key = (src, dst, seq)
        with self._cond:
            while True:
                if key in self._mailbox:
                    return self._mailbox.pop(key)
                if self._abort_reason is not None:
                    raise PeerLostError(
                        f"rank {dst} stopped waiting for rank {src}: {self._abort_reason}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeoutError(
                        f"rank {dst} waited {timeout_s:.1f}s for message {seq} from rank {src}"
                    )
                self._cond.wait(remaining)


class InProcessCommunicator(Communicator):
    """One rank's endpoint on an :class:`InProcessHub`."""

    def __init__(self, hub: InProcessHub, rank: int, timeout_s: float) -> None:
        super().__init__(rank, hub.world_size, timeout_s)
        self._hub = hub

    def _post(self, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        self._hub.post(self.rank, dst, seq, np.array(payload, copy=True))

    def _post_owned(self, dst: int, seq: int, payload: npt.NDArray[np.generic]) -> None:
        self._hub.post(self.rank, dst, seq, payload)

    def _take(self, src: int, seq: int, timeout_s: float) -> npt.NDArray[np.generic]:
        return self._hub.take(src, self.rank, seq, timeout_s)
