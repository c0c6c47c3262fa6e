"""The compiled kernels agree with the normative numpy reference bit for bit."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crypten_lite import ring
from crypten_lite.errors import BackendError
from crypten_lite.ring import _gemm, _ring_np
from crypten_lite.ring.backend import (
    GEMM_THREADS_ENV,
    PURE_ENV_VAR,
    active_kernels,
    gemm_threads,
    kernels_for,
)
from tests.helpers import RING_EDGES

cy = pytest.importorskip("crypten_lite.ring._ring_cy", reason="compiled backend not built")

EDGE_OR_ANY = st.one_of(st.sampled_from([int(v) for v in RING_EDGES]), st.integers(0, 2**64 - 1))
U64_ARRAYS = hnp.arrays(
    np.uint64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6), elements=EDGE_OR_ANY
)


@settings(max_examples=80, deadline=None)
@given(U64_ARRAYS)
def test_split_limbs_agree_and_recompose(a):
    limbs = cy.split_limbs(a)
    np.testing.assert_array_equal(limbs, _ring_np.split_limbs(a))
    assert limbs.shape == (3, *a.shape)
    assert np.all(np.abs(limbs[0]) <= 2**21)
    assert np.all(np.abs(limbs[1:]) <= 2**20)
    recomposed = np.zeros(a.shape, dtype=np.uint64)
    for i, off in enumerate(_ring_np.LIMB_OFFSETS):
        term = np.asarray(limbs[i]).astype(np.int64).view(np.uint64) << np.uint64(off)
        np.add(recomposed, term, out=recomposed)
    np.testing.assert_array_equal(recomposed, a)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 5), st.data())
def test_matmul_backends_agree(m, k, n, data):
    a = data.draw(hnp.arrays(np.uint64, (m, k), elements=EDGE_OR_ANY))
    b = data.draw(hnp.arrays(np.uint64, (k, n), elements=EDGE_OR_ANY))
    want = np.matmul(a, b)
    for name in ("cython", "numpy"):
        k = kernels_for(name)
        got = _gemm.limb_matmul(k, k.split_limbs(a), k.split_limbs(b))
        np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(U64_ARRAYS)
def test_bit_unpack_and_pack_agree(a):
    bits = cy.bits_unpack(a)
    np.testing.assert_array_equal(bits, _ring_np.bits_unpack(a))
    np.testing.assert_array_equal(_ring_np.bits_pack(bits), a)


def test_combine_limbs_rejects_mismatched_products():
    with pytest.raises(ValueError, match="shape"):
        cy.combine_limbs(np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.data())
def test_combine_limbs_agree(m, n, data):
    # Any exact GEMM outputs (integers of magnitude <= 2^53), not only consistent ones.
    ints = hnp.arrays(np.int64, (m, n), elements=st.integers(-(2**53), 2**53))
    products = [data.draw(ints).astype(np.float64) for _ in range(5)]
    np.testing.assert_array_equal(cy.combine_limbs(*products), _ring_np.combine_limbs(*products))


def test_environment_selects_the_backend(monkeypatch):
    monkeypatch.setenv(PURE_ENV_VAR, "1")
    assert active_kernels().name == "numpy"
    monkeypatch.setenv(PURE_ENV_VAR, "0")
    assert active_kernels().name == "cython"
    monkeypatch.delenv(PURE_ENV_VAR)
    assert active_kernels().name == "cython"
    assert ring.compiled_available()


def test_unknown_backend_name_is_rejected():
    with pytest.raises(ValueError, match="unknown backend"):
        kernels_for("fortran")
    assert issubclass(BackendError, RuntimeError)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.uint64, st.integers(0, 40), elements=EDGE_OR_ANY),
    st.lists(st.integers(0, 63), max_size=64),
)
def test_bit_gather_and_scatter_agree(words, positions):
    pos = np.array(positions, dtype=np.int64)
    stream = cy.gather_bits(words, pos)
    np.testing.assert_array_equal(stream, _ring_np.gather_bits(words, pos))
    assert stream.size == -(-words.size * pos.size // 8)
    back = cy.scatter_bits(stream, words.size, pos)
    np.testing.assert_array_equal(back, _ring_np.scatter_bits(stream, words.size, pos))
    mask = np.uint64(sum({1 << p for p in positions}))
    if len(set(positions)) == len(positions):
        np.testing.assert_array_equal(back, words & mask)


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(np.uint64, st.integers(0, 300), elements=EDGE_OR_ANY),
    st.sets(st.integers(0, 63), min_size=1, max_size=63),
)
def test_bit_gather_and_scatter_agree_on_ascending_positions(words, positions):
    """Ascending positions take the compress/expand fast path: same stream, same words,
    across the 64-bit flushes of long streams."""
    pos = np.array(sorted(positions), dtype=np.int64)
    stream = cy.gather_bits(words, pos)
    np.testing.assert_array_equal(stream, _ring_np.gather_bits(words, pos))
    back = cy.scatter_bits(stream, words.size, pos)
    np.testing.assert_array_equal(back, words & np.uint64(sum(1 << p for p in positions)))


native = pytest.mark.skipif(
    not cy.native_gemm_available(), reason="no AVX-512 on this CPU: the limb GEMMs serve"
)


@native
@settings(max_examples=80, deadline=None)
@given(st.integers(0, 19), st.integers(0, 40), st.integers(0, 35), st.data())
def test_native_gemm_is_the_exact_ring_product(m, k, n, data):
    a = data.draw(hnp.arrays(np.uint64, (m, k), elements=EDGE_OR_ANY))
    b = data.draw(hnp.arrays(np.uint64, (k, n), elements=EDGE_OR_ANY))
    np.testing.assert_array_equal(cy.native_gemm(a, b), np.matmul(a, b))


@native
@pytest.mark.parametrize(
    ("m", "k", "n"),
    # register tiles (8 x 16), k blocks (256) and n blocks (512), each on and off a boundary
    [(8, 256, 16), (9, 257, 17), (1, 513, 1030), (17, 1000, 513), (33, 3, 1), (7, 600, 40)],
)
def test_native_gemm_blocking_edges(m, k, n):
    rng = np.random.default_rng(m * k + n)
    a = rng.integers(0, 2**64, (m, k), dtype=np.uint64)
    b = rng.integers(0, 2**64, (k, n), dtype=np.uint64)
    np.testing.assert_array_equal(cy.native_gemm(a, b), np.matmul(a, b))
    np.testing.assert_array_equal(cy.native_gemm(a.T.copy().T, b), np.matmul(a, b))


@native
def test_native_gemm_refuses_mismatched_operands():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        cy.native_gemm(np.zeros((2, 3), np.uint64), np.zeros((4, 2), np.uint64))


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((40, 60), (60, 50)), ((70,), (70, 64)), ((64, 70), (70,)), ((2, 1, 64, 64), (3, 64, 64))],
)
def test_the_native_and_the_limb_paths_agree(shape_a, shape_b):
    # The compiled table with and without its native GEMM, and the numpy table: one answer.
    rng = np.random.default_rng(len(shape_a) * 10 + len(shape_b))
    a = rng.integers(0, 2**64, shape_a, dtype=np.uint64)
    b = rng.integers(0, 2**64, shape_b, dtype=np.uint64)
    want = np.matmul(a, b)
    compiled = kernels_for("cython")
    tables = (compiled, dataclasses.replace(compiled, native_gemm=None), kernels_for("numpy"))
    for kernels in tables:
        np.testing.assert_array_equal(_gemm.matmul(kernels, a, b), want)
    x = rng.integers(0, 2**64, (2, 4, 9, 8), dtype=np.uint64)
    w = rng.integers(0, 2**64, (6, 2, 3, 3), dtype=np.uint64)
    convs = [_gemm.conv_nd(k, x, w, (2, 1), (1, 0), (1, 2), 2) for k in tables]
    np.testing.assert_array_equal(convs[0], convs[2])
    np.testing.assert_array_equal(convs[1], convs[2])


@native
@pytest.mark.parametrize(
    ("m", "k", "n"),
    # split by rows (m >= n) and by columns, with a ragged last block, and too small to split
    [(200, 33, 70), (130, 5, 129), (70, 40, 900), (65, 9, 1030), (10, 10, 10)],
)
@pytest.mark.parametrize("threads", [2, 3, 64, 1000])
def test_native_gemm_on_several_threads_is_the_same_product(m, k, n, threads):
    rng = np.random.default_rng(m + k + n + threads)
    a = rng.integers(0, 2**64, (m, k), dtype=np.uint64)
    b = rng.integers(0, 2**64, (k, n), dtype=np.uint64)
    np.testing.assert_array_equal(cy.native_gemm(a, b, threads), np.matmul(a, b))


@native
def test_native_gemm_refuses_a_thread_count_below_one():
    with pytest.raises(ValueError, match="threads must be positive"):
        cy.native_gemm(np.zeros((2, 2), np.uint64), np.zeros((2, 2), np.uint64), 0)


def test_gemm_threads_follow_the_environment(monkeypatch):
    for name in (GEMM_THREADS_ENV, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert gemm_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert gemm_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")  # OpenMP's nested form: the outer level
    assert gemm_threads() == 2
    monkeypatch.setenv(GEMM_THREADS_ENV, "1")
    assert gemm_threads() == 1
    for bad in ("0", "many", "-2"):
        monkeypatch.setenv(GEMM_THREADS_ENV, bad)
        with pytest.raises(BackendError, match=GEMM_THREADS_ENV):
            gemm_threads()
