"""The trusted dealer: a rank of its own (like CrypTen's TTP) that serves the last party's
corrections; all other parties derive their shares from a seed they share with it.

Cost per request: one small int64 request message from party N-1 to the dealer and one reply
holding the derived components (e.g. the ``c`` of a Beaver triple); nothing for the other
parties. The round trip overlaps the protocol's round (see ``providers.base``).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from crypten_lite.providers.base import CorrectionSource, Provider
from crypten_lite.providers.engine import DealerEngine, reply_parts, split_components
from crypten_lite.providers.kinds import (
    CLOSE_CODE,
    Params,
    decode_request,
    encode_request,
)
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.transport.base import Communicator

__all__ = ["TrustedDealer", "dealer_seed_streams", "run_dealer"]

U64 = npt.NDArray[np.uint64]
_LOG = logging.getLogger(__name__)


class _DealerLink(CorrectionSource):
    """The last party's link to the dealer rank."""

    def __init__(self, comm: Communicator) -> None:
        self._comm = comm

    def request(self, kind: str, params: Params) -> None:
        self._comm.send(self._comm.dealer_rank, encode_request(kind, params))

    def collect_part(self, kind: str, params: Params, part: int) -> dict[str, U64]:
        reply = self._comm.recv(self._comm.dealer_rank)
        return split_components(kind, reply_parts(kind, params)[part], np.asarray(reply))

    def close(self) -> None:
        self._comm.send(self._comm.dealer_rank, np.array([CLOSE_CODE], dtype=np.int64))


class TrustedDealer(Provider):
    """Party-side provider backed by the dealer rank (the secure default)."""

    name = "TrustedDealer"

    def __init__(self, comm: Communicator, seed: bytes) -> None:
        last = comm.rank == comm.world_size - 1
        super().__init__(
            comm.rank,
            comm.world_size,
            AesCtrPrg.from_seed(seed),
            _DealerLink(comm) if last else None,
        )


def dealer_seed_streams(seeds: list[bytes]) -> list[AesCtrPrg]:
    """The streams the dealer replays, one per party, from the seeds it handed out."""
    return [AesCtrPrg.from_seed(seed) for seed in seeds]


def run_dealer(comm: Communicator, seeds: list[bytes]) -> int:
    """Serve party N-1's requests until it sends the close message; returns requests served.

    A malformed request raises :class:`ProtocolError` (the job fails; nothing is guessed).
    """
    engine = DealerEngine(dealer_seed_streams(seeds), AesCtrPrg.generate())
    last = comm.world_size - 1
    served = 0
    while True:
        message = comm.recv(last)
        request = decode_request(np.asarray(message))
        if request is None:
            _LOG.debug("dealer: close after %d requests", served)
            return served
        kind, params = request
        for part in engine.corrections_parts(kind, params):  # each leaves before the next
            comm.send(last, part, owned=True)
        served += 1
