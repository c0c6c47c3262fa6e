"""Pseudo-random zero-sharing from pairwise seeds (no communication after setup).

Parties ``i < j`` share one AES-CTR stream ``S_ij``. For an arithmetic zero-sharing party ``i``
holds ``sum_{j > i} S_ij - sum_{j < i} S_ji``; for a binary one, the XOR of all its pair
streams. Each pair stream is drawn by both of its parties in the same order, so the shares sum
(XOR) to zero, and any coalition missing one party sees uniformly random shares.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.ring.prg import AesCtrPrg

__all__ = ["PairwiseStreams"]

U64 = npt.NDArray[np.uint64]


class PairwiseStreams:
    """This party's streams shared with each other party, keyed by peer rank."""

    def __init__(self, rank: int, world_size: int, seeds: dict[int, bytes]) -> None:
        expected = set(range(world_size)) - {rank}
        if set(seeds) != expected:
            raise ValueError(
                f"need pairwise seeds for peers {sorted(expected)}, got {sorted(seeds)}"
            )
        self.rank = rank
        self.world_size = world_size
        self._streams = {peer: AesCtrPrg.from_seed(seed) for peer, seed in sorted(seeds.items())}

    def arithmetic(self, shape: tuple[int, ...]) -> U64:
        """This party's share of an arithmetic sharing of zero."""
        out = np.zeros(shape, dtype=np.uint64)
        for peer, stream in self._streams.items():
            draw = stream.ring_elements(shape)
            if peer > self.rank:
                np.add(out, draw, out=out)
            else:
                np.subtract(out, draw, out=out)
        return out

    def binary(self, shape: tuple[int, ...]) -> U64:
        """This party's share of a binary (XOR) sharing of zero."""
        out = np.zeros(shape, dtype=np.uint64)
        for stream in self._streams.values():
            np.bitwise_xor(out, stream.ring_elements(shape), out=out)
        return out

    def __repr__(self) -> str:
        return f"PairwiseStreams(rank={self.rank}, peers={sorted(self._streams)}, <keyed>)"
