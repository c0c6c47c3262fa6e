"""Seed-compressed additive sharing: correctness, the exact stream definition servers rely
on, and uniformity of what a single server sees (chi-square over bytes, bit balance)."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.client import expand_seed, split_update
from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring.prg import AesCtrPrg

N = 200_000
# chi-square with 255 degrees of freedom: Wilson-Hilferty quantile at z = 6 (p ~ 1e-9)
CHI2_LIMIT = 255 * (1 - 2 / (9 * 255) + 6 * (2 / (9 * 255)) ** 0.5) ** 3


def byte_chi2(vector: np.ndarray) -> float:
    data = np.ascontiguousarray(vector).view(np.uint8)
    counts = np.bincount(data, minlength=256).astype(np.float64)
    expected = data.size / 256
    return float(((counts - expected) ** 2 / expected).sum())


def worst_bit_z(vector: np.ndarray) -> float:
    """The largest |z| of the count of ones at any bit position (fair coin)."""
    bits = vector.dtype.itemsize * 8
    words = vector.astype(np.uint64)
    n = vector.size
    z = [
        abs(int(((words >> np.uint64(b)) & np.uint64(1)).sum()) - n / 2) / (n / 4) ** 0.5
        for b in range(bits)
    ]
    return max(z)


def assert_uniform(vector: np.ndarray) -> None:
    assert byte_chi2(vector) < CHI2_LIMIT
    assert worst_bit_z(vector) < 6.0


def test_the_uniformity_check_can_fail():
    ones = np.ones(N, np.uint32)
    small = np.random.default_rng(0).integers(-300, 300, N).astype(np.uint64)
    for vector in (ones, small):
        assert byte_chi2(vector) > CHI2_LIMIT or worst_bit_z(vector) > 6.0


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_expand_seed_is_the_little_endian_aes_ctr_stream(ring_bits):
    seed = bytes(range(32))
    width = ring_bits // 8
    stream = AesCtrPrg.from_seed(seed).random_bytes(7 * width)
    expected = np.frombuffer(stream, dtype=f"<u{width}")
    out = expand_seed(seed, 7, ring_bits)
    assert out.dtype == (np.uint32 if ring_bits == 32 else np.uint64)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(expand_seed(seed, 7, ring_bits), out)  # deterministic
    assert expand_seed(seed, 0, ring_bits).size == 0


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_expand_seed_output_is_uniform(ring_bits):
    assert_uniform(expand_seed(bytes(32), N, ring_bits))


@pytest.mark.parametrize("ring_bits", [32, 64])
@pytest.mark.parametrize("fill", [0, 1])
def test_the_masked_vector_of_a_fixed_update_is_uniform(ring_bits, fill):
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    update = np.full(N, fill, dtype=dtype)
    _, masked = split_update(update, 2, ring_bits)
    assert_uniform(masked)
    _, again = split_update(update, 2, ring_bits)
    assert not np.array_equal(masked, again)  # fresh seeds every time


@pytest.mark.parametrize("ring_bits", [32, 64])
@pytest.mark.parametrize("servers", [2, 3])
def test_shares_sum_to_the_update(ring_bits, servers):
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    update = np.random.default_rng(1).integers(0, 2**ring_bits, 1000, dtype=dtype)
    seeds, masked = split_update(update, servers, ring_bits)
    assert len(seeds) == servers - 1 and all(len(s) == 32 for s in seeds)
    assert len(set(seeds)) == len(seeds)
    total = masked.copy()
    for seed in seeds:
        total += expand_seed(seed, update.size, ring_bits)
    np.testing.assert_array_equal(total, update)


def test_bad_arguments_are_named():
    with pytest.raises(RingDTypeError, match="values_ring"):
        split_update(np.zeros(3, np.uint64), 2, 32)
    with pytest.raises(RingShapeError, match="num_servers"):
        split_update(np.zeros(3, np.uint32), 1, 32)
    with pytest.raises(RingShapeError, match="ring_bits"):
        split_update(np.zeros(3, np.uint16), 2, 16)
    with pytest.raises(RingShapeError, match="seed"):
        expand_seed(b"short", 3, 32)
    with pytest.raises(RingShapeError, match="num_elements"):
        expand_seed(bytes(32), -1, 32)
