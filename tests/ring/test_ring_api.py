"""The public ring API against slow exact oracles, on the active backend."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite import ring
from crypten_lite.errors import CryptenLiteError, RingDTypeError, RingShapeError
from crypten_lite.ring import _gemm
from crypten_lite.ring.backend import active_kernels, kernels_for
from tests.helpers import RING_EDGES, random_u64
from tests.ring import oracles


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [
        ((5, 7), (7, 3)),
        ((7,), (7, 3)),
        ((5, 7), (7,)),
        ((7,), (7,)),
        ((2, 5, 7), (7, 3)),
        ((4, 1, 3, 6), (2, 6, 5)),
        ((1, 1), (1, 1)),
        ((3, 0), (0, 4)),
    ],
)
def test_matmul_matches_uint64_oracle(rng, shape_a, shape_b):
    a, b = random_u64(rng, shape_a), random_u64(rng, shape_b)
    got = ring.matmul(a, b)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, oracles.matmul_uint64(a, b))


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((40, 60), (60, 50)), ((3, 30, 70), (70, 30)), ((2, 1, 64, 64), (3, 64, 64))],
)
def test_matmul_shapes_large_enough_for_the_limb_path(rng, shape_a, shape_b):
    a, b = random_u64(rng, shape_a), random_u64(rng, shape_b)
    assert _gemm._limbs_pay(a, b)
    np.testing.assert_array_equal(ring.matmul(a, b), oracles.matmul_uint64(a, b))


@pytest.mark.parametrize(("shape_a", "shape_b"), [((3, 5000), (5000, 2)), ((5000,), (5000,))])
def test_limb_matmul_long_inner_dimension_is_chunked_exactly(rng, shape_a, shape_b):
    # 5000 > 910: six exact chunks, worst-case limb magnitudes in the left operand.
    a = np.full(shape_a, 2**63 + 2**21 + 2**42, dtype=np.uint64)
    b = random_u64(rng, shape_b)
    kernels = active_kernels()
    got = _gemm.limb_matmul(kernels, kernels.split_limbs(a), kernels.split_limbs(b))
    np.testing.assert_array_equal(got, oracles.matmul_uint64(a, b))


def near_extreme_limbs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values whose balanced limbs sit just above their most negative ends (-2^21, -2^20,
    -2^20) with random low bits, so the limb GEMMs' sums need every bit of float64."""
    l0 = -(2**21) + rng.integers(0, 64, shape)
    l1 = -(2**20) + rng.integers(0, 64, shape)
    l2 = rng.integers(-(2**20), 2**20, shape)
    total = l0.astype(np.uint64) + (l1.astype(np.uint64) << np.uint64(22))
    return total + (l2.astype(np.uint64) << np.uint64(43))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_limb_matmul_is_exact_at_the_float64_bound(backend, rng):
    # The Karatsuba product (a0 + a1)(b0 + b1) is the largest: up to (3 * 2^20)^2 per term,
    # so 910 terms stay below 2^53; a full chunk and a chunked 2048 (as one chunk of 2048
    # this fails: the sums round).
    if backend == "cython" and not ring.compiled_available():
        pytest.skip("compiled backend not built")
    kernels = kernels_for(backend)
    assert _gemm.MAX_EXACT_INNER * 9 * 2**40 <= 2**53 < (_gemm.MAX_EXACT_INNER + 1) * 9 * 2**40
    for inner in (_gemm.MAX_EXACT_INNER, 2048):
        a = near_extreme_limbs(rng, (4, inner))
        limbs = kernels.split_limbs(a)
        assert np.all(limbs[0] <= -(2**21) + 63) and np.all(limbs[1] <= -(2**20) + 63)
        for b in (near_extreme_limbs(rng, (inner, 3)), np.full((inner, 3), 2**63 - 1, np.uint64)):
            got = _gemm.limb_matmul(kernels, limbs, kernels.split_limbs(b))
            np.testing.assert_array_equal(got, oracles.matmul_uint64(a, b))


def test_limb_matmul_small_and_batched_shapes(rng):
    kernels = active_kernels()
    for shape_a, shape_b in [((5, 7), (7, 3)), ((7,), (7, 3)), ((4, 1, 3, 6), (2, 6, 5))]:
        a, b = random_u64(rng, shape_a), random_u64(rng, shape_b)
        got = _gemm.limb_matmul(kernels, kernels.split_limbs(a), kernels.split_limbs(b))
        np.testing.assert_array_equal(got, oracles.matmul_uint64(a, b))


def test_matmul_of_all_edge_value_pairs():
    a = np.tile(np.repeat(RING_EDGES[:, None], 8, axis=1), (8, 8))
    b = np.tile(np.repeat(RING_EDGES[None, :], 8, axis=0), (8, 8))
    assert _gemm._limbs_pay(a, b)
    np.testing.assert_array_equal(ring.matmul(a, b), oracles.matmul_uint64(a, b))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"),
    [
        ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0, 1, 1),
        ((1, 4, 7, 6), (6, 2, 3, 2), 2, 1, 2, 2),
        ((2, 2, 5, 5), (2, 1, 3, 3), (1, 2), (2, 0), (1, 1), 2),
        ((1, 1, 4, 4), (1, 1, 1, 1), 1, 0, 1, 1),
    ],
)
def test_conv2d_matches_direct_loop(rng, x_shape, w_shape, stride, padding, dilation, groups):
    x, w = random_u64(rng, x_shape), random_u64(rng, w_shape)
    got = ring.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    want = oracles.conv_nd(x, w, pair(stride), pair(padding), pair(dilation), groups)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"),
    [((2, 3, 9), (4, 3, 3), 1, 0, 1, 1), ((1, 4, 11), (2, 2, 3), 2, 2, 3, 2)],
)
def test_conv1d_matches_direct_loop(rng, x_shape, w_shape, stride, padding, dilation, groups):
    x, w = random_u64(rng, x_shape), random_u64(rng, w_shape)
    got = ring.conv1d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    want = oracles.conv_nd(x, w, (stride,), (padding,), (dilation,), groups)
    np.testing.assert_array_equal(got, want)


def test_elementwise_ops_wrap_mod_2_64():
    a = RING_EDGES
    b = RING_EDGES[::-1].copy()
    as_int = [int(v) for v in a]
    bs_int = [int(v) for v in b]
    m = 2**64
    assert [int(v) for v in ring.add(a, b)] == [(x + y) % m for x, y in zip(as_int, bs_int)]
    assert [int(v) for v in ring.sub(a, b)] == [(x - y) % m for x, y in zip(as_int, bs_int)]
    assert [int(v) for v in ring.mul(a, b)] == [(x * y) % m for x, y in zip(as_int, bs_int)]
    assert [int(v) for v in ring.neg(a)] == [(-x) % m for x in as_int]


def test_sum_wraps_and_honours_axis(rng):
    a = random_u64(rng, (3, 4, 5))
    want = [sum(int(v) for v in a[:, j, k]) % 2**64 for j in range(4) for k in range(5)]
    assert [int(v) for v in ring.sum(a, axis=0).reshape(-1)] == want
    assert ring.sum(a, axis=(0, 2), keepdims=True).shape == (1, 4, 1)
    assert int(ring.sum(a)) == sum(int(v) for v in a.reshape(-1)) % 2**64


@pytest.mark.parametrize("bits", [0, 1, 16, 31, 63])
def test_shifts_match_python_integers(bits):
    signed = [int(v) - 2**64 if v >= 2**63 else int(v) for v in RING_EDGES]
    assert [int(v) for v in ring.arshift(RING_EDGES, bits)] == [(s >> bits) % 2**64 for s in signed]
    assert [int(v) for v in ring.rshift(RING_EDGES, bits)] == [int(v) >> bits for v in RING_EDGES]
    assert [int(v) for v in ring.lshift(RING_EDGES, bits)] == [
        (int(v) << bits) % 2**64 for v in RING_EDGES
    ]


def test_bit_extract_unpack_and_pack_roundtrip(rng):
    a = random_u64(rng, (3, 5))
    bits = ring.bits_unpack(a)
    assert bits.shape == (3, 5, 64) and bits.dtype == np.uint8
    for k in (0, 1, 17, 63):
        np.testing.assert_array_equal(bits[..., k], ring.bit_extract(a, k).astype(np.uint8))
    assert int(bits[0, 4, 63]) == 1  # 2**63 has its top bit set
    np.testing.assert_array_equal(ring.bits_pack(bits), a)
    np.testing.assert_array_equal(ring.bits_pack(bits.astype(bool)), a)


def test_signed_views_roundtrip():
    values = np.array([-(2**63), -1, 0, 1, 2**63 - 1], dtype=np.int64)
    np.testing.assert_array_equal(ring.to_signed(ring.from_signed(values)), values)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ring.add(np.zeros(3, np.int64), np.zeros(3, np.uint64)),
        lambda: ring.matmul(np.zeros((2, 2), np.float64), np.zeros((2, 2), np.uint64)),
        lambda: ring.conv2d(np.zeros((1, 1, 3, 3), np.uint64), [[1]]),
        lambda: ring.arshift(np.zeros(2, np.uint64), 1.5),
        lambda: ring.from_signed(np.zeros(2, np.float32)),
    ],
)
def test_wrong_dtypes_raise_type_errors(call):
    with pytest.raises(TypeError) as info:
        call()
    assert isinstance(info.value, RingDTypeError)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: ring.add(np.zeros(3, np.uint64), np.zeros(4, np.uint64)), "do not broadcast"),
        (lambda: ring.matmul(np.zeros((2, 3), np.uint64), np.zeros((4, 2), np.uint64)), "inner"),
        (lambda: ring.matmul(np.zeros((), np.uint64), np.zeros(2, np.uint64)), "at least one"),
        (
            lambda: ring.matmul(np.zeros((2, 2, 3), np.uint64), np.zeros((3, 3, 2), np.uint64)),
            "batch shapes",
        ),
        (lambda: ring.arshift(np.zeros(2, np.uint64), 64), "bits"),
        (
            lambda: ring.conv2d(np.zeros((1, 3, 4, 4), np.uint64), np.zeros((2, 3, 3), np.uint64)),
            "weight",
        ),
        (
            lambda: ring.conv2d(
                np.zeros((1, 3, 4, 4), np.uint64), np.zeros((2, 3, 3, 3), np.uint64), groups=2
            ),
            "groups",
        ),
        (
            lambda: ring.conv2d(
                np.zeros((1, 1, 2, 2), np.uint64), np.zeros((1, 1, 3, 3), np.uint64)
            ),
            "kernel extent",
        ),
        (
            lambda: ring.conv1d(
                np.zeros((1, 1, 5), np.uint64), np.zeros((1, 1, 3), np.uint64), stride=0
            ),
            "stride",
        ),
        (lambda: ring.sum(np.zeros((2, 2), np.uint64), axis=3), "axis"),
        (lambda: ring.bits_pack(np.zeros((2, 63), np.uint8)), "64"),
        (lambda: ring.bits_pack(np.full((1, 64), 2, np.uint8)), "only 0 and 1"),
    ],
)
def test_bad_shapes_raise_value_errors_naming_the_problem(call, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        call()
    assert isinstance(info.value, CryptenLiteError)
    assert isinstance(info.value, RingShapeError)


def test_gather_and_scatter_bits_roundtrip_and_validate(rng):
    words = random_u64(rng, (3, 7))
    positions = [0, 5, 31, 63]
    stream = ring.gather_bits(words, positions)
    assert stream.dtype == np.uint8 and stream.size == -(-21 * 4 // 8)
    back = ring.scatter_bits(stream, 21, positions)
    mask = np.uint64(sum(1 << p for p in positions))
    np.testing.assert_array_equal(back, words.reshape(-1) & mask)
    with pytest.raises(RingShapeError, match="positions"):
        ring.gather_bits(words, [64])
    with pytest.raises(RingShapeError, match="stream holds"):
        ring.scatter_bits(stream[:1], 21, positions)
    with pytest.raises(RingDTypeError):
        ring.scatter_bits(stream.astype(np.int64), 21, positions)
