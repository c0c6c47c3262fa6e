"""Additive sharing of a ring vector among ``k`` servers with seed compression.

``split_update(q, k)`` draws ``k - 1`` fresh 32-byte seeds; server ``i < k - 1`` receives seed
``i`` and its share is :func:`expand_seed` of it; server ``k - 1`` receives the masked vector
``q - sum(expand_seed(s_i)) mod 2^ring_bits``. The masked vector is uniformly random on its
own (one AES-CTR stream already masks it), so no single server learns anything about ``q``.
Cost: ``k - 1`` keystreams of ``m * ring_bits / 8`` bytes; upload ``m * ring_bits / 8 +
32 (k - 1)`` bytes (PRG-seed share compression as in Prio, Corrigan-Gibbs and Boneh, NSDI 2017).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.messages import SEED_SIZE, ring_dtype
from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring.prg import AesCtrPrg, new_seed

__all__ = ["MAX_SERVERS", "expand_seed", "ring_dtype", "split_update"]

#: the most servers an update may be shared among.
MAX_SERVERS = 8

RingArray = npt.NDArray[np.unsignedinteger]


def expand_seed(seed: bytes, num_elements: int, ring_bits: int) -> RingArray:
    """The share a ``seed`` stands for: ``num_elements`` ring elements read little-endian
    from the AES-CTR keystream of ``AesCtrPrg.from_seed(seed)`` (``uint32`` or ``uint64``).

    Servers that receive a seed call exactly this to rebuild their share."""
    dtype = ring_dtype(ring_bits)
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_SIZE:
        raise RingShapeError(f"seed must be {SEED_SIZE} bytes")
    if isinstance(num_elements, bool) or not isinstance(num_elements, int | np.integer):
        raise RingShapeError(f"num_elements must be an int, got {type(num_elements).__name__}")
    if num_elements < 0:
        raise RingShapeError(f"num_elements must be >= 0, got {num_elements}")
    prg = AesCtrPrg.from_seed(bytes(seed))
    width = ring_bits // 8
    raw = prg.random_uint8(int(num_elements) * width)
    return raw.view("<u4" if ring_bits == 32 else "<u8").astype(dtype, copy=False)


def split_update(
    values_ring: RingArray, num_servers: int, ring_bits: int
) -> tuple[list[bytes], RingArray]:
    """Share ``values_ring`` (1-D ``uint32``/``uint64`` for a 32/64-bit ring) among
    ``num_servers``: ``(seeds for servers 0..k-2, masked vector for server k-1)``."""
    dtype = ring_dtype(ring_bits)
    if isinstance(num_servers, bool) or not isinstance(num_servers, int):
        raise RingShapeError(f"num_servers must be an int, got {type(num_servers).__name__}")
    if not 2 <= num_servers <= MAX_SERVERS:
        raise RingShapeError(f"num_servers must lie in [2, {MAX_SERVERS}], got {num_servers}")
    if not isinstance(values_ring, np.ndarray) or values_ring.dtype != dtype:
        got = values_ring.dtype if isinstance(values_ring, np.ndarray) else type(values_ring)
        raise RingDTypeError(
            f"values_ring must be a numpy {np.dtype(dtype).name} array for a {ring_bits}-bit "
            f"ring, got {got}"
        )
    flat = values_ring.reshape(-1)
    seeds = [new_seed() for _ in range(num_servers - 1)]
    masked = flat.copy()
    for seed in seeds:
        np.subtract(masked, expand_seed(seed, flat.size, ring_bits), out=masked)
    return seeds, masked
