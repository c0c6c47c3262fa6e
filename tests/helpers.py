"""Shared test helpers: ring edge values and random uint64 arrays (test data only)."""

from __future__ import annotations

import numpy as np

RING_EDGES = np.array([0, 1, 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1], dtype=np.uint64)


def random_u64(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Uniform uint64 array whose first elements are the ring edge values."""
    out = rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)
    flat = out.reshape(-1)
    k = min(flat.size, RING_EDGES.size)
    flat[:k] = RING_EDGES[:k]
    return out
