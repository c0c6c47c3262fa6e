"""Differential tests: the compiled encoding kernels agree bit for bit with the numpy reference.

Skipped when the Cython extension is not built. Also checks the backend switch.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crypten_lite.encoding import FixedPointEncoder, active_kernels, compiled_available
from crypten_lite.encoding import _encoding_np as ref
from crypten_lite.encoding.backend import kernels_for
from crypten_lite.errors import BackendError

try:
    cy = importlib.import_module("crypten_lite.encoding._encoding_cy")
    HAVE_CY = hasattr(cy, "fixed_encode_float")
except ImportError:  # pragma: no cover - depends on the build
    HAVE_CY = False

needs_cy = pytest.mark.skipif(not HAVE_CY, reason="crypten_lite.encoding._encoding_cy not built")

EDGE_FLOATS = [
    0.0,
    -0.0,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    1e-300,
    5e-324,
    2.0**-17,
    -(2.0**-17),
    2.0**45,
    -(2.0**45),
    70368744177663.99,
    -70368744177663.99,
    2.0**46,
    np.nan,
    np.inf,
    -np.inf,
]
EDGE_RING = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**62, 2**53 + 1, 65536]
QDTYPES = [np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32)]


def _same(a: object, b: object) -> None:
    if a is None or b is None:
        assert a is None and b is None
        return
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    assert a_arr.dtype == b_arr.dtype and a_arr.shape == b_arr.shape
    assert a_arr.tobytes() == b_arr.tobytes()


floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(width=64))
finite = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.5, -0.5, 1.5, 2.5, -2.5, 127.5]))


@needs_cy
@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 40), elements=floats), st.integers(0, 52))
def test_fixed_encode_float(x: np.ndarray, precision: int) -> None:
    max_abs = FixedPointEncoder(precision).max_abs
    _same(
        ref.fixed_encode_float(x, precision, max_abs),
        cy.fixed_encode_float(x, precision, max_abs),
    )


@needs_cy
@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.int64,
        st.integers(0, 40),
        elements=st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.sampled_from([0, 1, -1, 2**46 - 1, -(2**46) + 1, 2**46]),
        ),
    ),
    st.integers(0, 52),
)
def test_fixed_encode_int(x: np.ndarray, precision: int) -> None:
    max_int = FixedPointEncoder(precision).max_int
    _same(ref.fixed_encode_int(x, precision, max_int), cy.fixed_encode_int(x, precision, max_int))


@needs_cy
@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.uint64,
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
        elements=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from(EDGE_RING)),
    ),
    st.integers(0, 52),
)
def test_fixed_decode(r: np.ndarray, precision: int) -> None:
    _same(ref.fixed_decode(r, precision), cy.fixed_decode(r, precision))


@st.composite
def quant_case(draw: st.DrawFn, allow_nan: bool = True) -> tuple:
    pre, c, post = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(0, 6))
    elements = floats if allow_nan else finite
    x = draw(hnp.arrays(np.float64, (pre, c, post), elements=elements))
    scale = np.array(draw(st.lists(st.floats(1e-6, 1e3), min_size=c, max_size=c)))
    dtype = draw(st.sampled_from(QDTYPES))
    info = np.iinfo(dtype)
    zp = np.array(
        draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=c, max_size=c)),
        dtype=np.int64,
    )
    return x, scale, zp, dtype, int(info.min), int(info.max)


@needs_cy
@settings(max_examples=150, deadline=None)
@given(quant_case())
def test_quantize_and_centered(case: tuple) -> None:
    x, scale, zp, dtype, lo, hi = case
    _same(ref.quantize(x, scale, zp, lo, hi, dtype), cy.quantize(x, scale, zp, lo, hi, dtype))
    _same(ref.quantize_centered(x, scale, zp, lo, hi), cy.quantize_centered(x, scale, zp, lo, hi))


@needs_cy
@settings(max_examples=100, deadline=None)
@given(quant_case(allow_nan=False))
def test_dequantize_and_center(case: tuple) -> None:
    x, scale, zp, dtype, lo, hi = case
    q = ref.quantize(x, scale, zp, lo, hi, dtype)
    _same(ref.dequantize(q, scale, zp), cy.dequantize(q, scale, zp))
    _same(ref.center(q, zp), cy.center(q, zp))


@needs_cy
@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 4),
    st.integers(1, 5),
    st.integers(0, 3),
    st.integers(0, 2**32 - 1),
    st.sampled_from(QDTYPES),
    st.booleans(),
)
def test_requantize(pre: int, c: int, post: int, seed: int, dtype: np.dtype, relu: bool) -> None:
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**31), 2**31, size=(pre, c, post)).astype(np.float64)
    acc[..., :1] = rng.integers(-100, 100, size=acc[..., :1].shape)  # small values: ties
    mult = rng.choice([0.5, 0.25, 1.0, 1e-4, 3e-7], size=c) * rng.choice([1.0, 1.1], size=c)
    bias = rng.choice([0.0, 0.5, -0.5, 1e9], size=c)
    out_scale = float(rng.choice([1.0, 0.5, 0.0123, 1e-3]))
    info = np.iinfo(dtype)
    zp = int(rng.integers(max(int(info.min), -1000), min(int(info.max), 1000) + 1))
    lo = zp if relu else int(info.min)
    args = (acc, mult, bias, out_scale, zp, lo, int(info.max), dtype)
    _same(ref.requantize(*args), cy.requantize(*args))


def test_backend_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTEN_LITE_PURE", "1")
    assert active_kernels().name == "numpy"
    monkeypatch.setenv("CRYPTEN_LITE_PURE", "0")
    assert active_kernels().name == ("cython" if compiled_available() else "numpy")
    assert kernels_for("numpy").name == "numpy"
    with pytest.raises(ValueError, match="backend"):
        kernels_for("fortran")
    if not compiled_available():
        with pytest.raises(BackendError):
            kernels_for("cython")


@needs_cy
def test_public_api_same_on_both_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FixedPointEncoder(16)
    x = np.random.default_rng(3).normal(scale=1e4, size=1000)
    results = []
    for pure in ("1", "0"):
        monkeypatch.setenv("CRYPTEN_LITE_PURE", pure)
        r = enc.encode(x)
        results.append((r, enc.decode(r)))
    _same(results[0][0], results[1][0])
    _same(results[0][1], results[1][1])
