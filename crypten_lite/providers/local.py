"""``InsecureLocalDealer``: for tests and benchmarks only, never a default.

Every party derives the dealer streams of *all* parties from one common seed, and the last
party runs the dealer's computation itself. No dealer rank, no dealer traffic, but every party
can reconstruct every triple: it offers no security at all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.providers.base import CorrectionSource, Provider
from crypten_lite.providers.engine import DealerEngine, reply_parts
from crypten_lite.providers.kinds import Params
from crypten_lite.ring.prg import AesCtrPrg

__all__ = ["InsecureLocalDealer"]

U64 = npt.NDArray[np.uint64]


def _party_stream(common_seed: bytes, rank: int) -> AesCtrPrg:
    return AesCtrPrg.from_seed(common_seed).fork(f"insecure-local-dealer/party/{rank}")


class _LocalEngine(CorrectionSource):
    def __init__(self, common_seed: bytes, world_size: int) -> None:
        streams = [_party_stream(common_seed, r) for r in range(world_size)]
        private = AesCtrPrg.from_seed(common_seed).fork("insecure-local-dealer/private")
        self._engine = DealerEngine(streams, private)
        self._ready: list[dict[str, U64]] = []

    def request(self, kind: str, params: Params) -> None:
        self._ready.append(self._engine.corrections(kind, params))

    def collect_part(self, kind: str, params: Params, part: int) -> dict[str, U64]:
        parts = reply_parts(kind, params)
        ready = self._ready[0]
        out = {c.name: ready[c.name] for c in parts[part]}
        if part == len(parts) - 1:
            self._ready.pop(0)
        return out


class InsecureLocalDealer(Provider):
    """Party-side provider computing everything locally from a common seed. Insecure."""

    name = "InsecureLocalDealer"

    def __init__(self, rank: int, world_size: int, common_seed: bytes) -> None:
        last = rank == world_size - 1
        super().__init__(
            rank,
            world_size,
            _party_stream(common_seed, rank),
            _LocalEngine(common_seed, world_size) if last else None,
        )
