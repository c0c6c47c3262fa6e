"""FixedPointEncoder: known answers, exactness, input handling and errors (active backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.encoding import Encoder, FixedPointEncoder
from crypten_lite.errors import EncodingError, EncodingRangeError, RingDTypeError

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "encoding_fixed_point.json").read_text()
)


def _signed(r: np.ndarray) -> list[int]:
    return [int(v) for v in r.view(np.int64).reshape(-1)]


@pytest.mark.parametrize("case", VECTORS["encode_float"], ids=lambda c: c.get("note", ""))
def test_encode_float_vectors(case: dict) -> None:
    enc = FixedPointEncoder(case["precision"])
    assert _signed(enc.encode(np.array([case["x"]]))) == [case["expected"]]
    # scalars and lists go through the same path
    assert _signed(enc.encode(case["x"])) == [case["expected"]]


@pytest.mark.parametrize("case", VECTORS["encode_int"])
def test_encode_int_vectors_exact(case: dict) -> None:
    enc = FixedPointEncoder(case["precision"])
    assert _signed(enc.encode(np.array([case["x"]], dtype=np.int64))) == [case["expected"]]
    assert _signed(enc.encode(case["x"])) == [case["expected"]]


@pytest.mark.parametrize("case", VECTORS["out_of_range"])
def test_out_of_range_vectors(case: dict) -> None:
    enc = FixedPointEncoder(case["precision"])
    if "x" in case:
        x = np.array([case["x"]])
    elif "x_int" in case:
        x = np.array([case["x_int"]], dtype=np.int64)
    else:
        x = np.array([case["x_uint64"]], dtype=np.uint64)
    with pytest.raises(EncodingRangeError) as info:
        enc.encode(x)
    message = str(info.value)
    assert repr(enc.max_abs) in message
    assert "max_abs" in message


@pytest.mark.parametrize("case", VECTORS["max_abs"])
def test_max_abs(case: dict) -> None:
    enc = FixedPointEncoder(case["precision"])
    assert enc.max_abs == case["max_abs"]
    assert enc.max_abs * 2.0 ** case["precision"] < 2.0**62
    assert np.nextafter(enc.max_abs, np.inf) * 2.0 ** case["precision"] >= 2.0**62
    top = enc.encode([enc.max_abs, -enc.max_abs]).view(np.int64)
    assert abs(int(top[0]) + int(top[0])) < 2**63  # the sum of two encodings cannot wrap
    assert enc.max_int == int(enc.max_abs)
    enc.encode(np.array([enc.max_int, -enc.max_int], dtype=np.int64))


@pytest.mark.parametrize("case", VECTORS["decode"])
def test_decode_vectors(case: dict) -> None:
    enc = FixedPointEncoder(case["precision"])
    out = enc.decode(np.array([case["ring"]], dtype=np.uint64))
    assert out.dtype == np.float64
    assert out[0] == case["expected"]


def test_scale_and_properties() -> None:
    enc = FixedPointEncoder()
    assert enc.precision == 16
    assert enc.scale == 2.0**-16
    assert isinstance(enc, Encoder)
    assert FixedPointEncoder(8) == FixedPointEncoder(precision=8)
    assert repr(FixedPointEncoder(8)) == "FixedPointEncoder(precision=8)"


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-(2.0**40), max_value=2.0**40, allow_nan=False),
    st.integers(min_value=0, max_value=52),
)
def test_negation_is_exact(x: float, precision: int) -> None:
    enc = FixedPointEncoder(precision)
    if abs(x) > enc.max_abs:
        return
    pos = enc.decode(enc.encode(np.array([x])))
    neg = enc.decode(enc.encode(np.array([-x])))
    assert neg[0] == -pos[0]
    assert _signed(enc.encode([-x])) == [-v for v in _signed(enc.encode([x]))]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**46) + 1, max_value=2**46 - 1), st.integers(0, 16))
def test_dyadic_round_trip(k: int, frac: int) -> None:
    enc = FixedPointEncoder(16)
    x = k * 2.0**-frac
    if abs(x) > enc.max_abs:
        return
    assert enc.decode(enc.encode([x]))[0] == x


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_matches_round_half_even_oracle(x: float) -> None:
    enc = FixedPointEncoder(16)
    assert _signed(enc.encode([x])) == [round(x * 65536.0)]  # Python round() is half-even


@pytest.mark.parametrize(
    "dtype",
    [
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    ],
)
def test_accepts_numeric_dtypes(dtype: type) -> None:
    enc = FixedPointEncoder(16)
    x = np.array([[0, 1], [1, 0]], dtype=dtype)
    r = enc.encode(x)
    assert r.dtype == np.uint64 and r.shape == (2, 2)
    np.testing.assert_array_equal(enc.decode(r), x.astype(np.float64))


def test_shapes_scalars_and_layouts() -> None:
    enc = FixedPointEncoder(16)
    assert enc.encode(1.5).shape == ()
    assert enc.decode(enc.encode(1.5)).shape == ()
    assert enc.encode([]).shape == (0,)
    assert enc.encode(np.zeros((0, 3))).shape == (0, 3)
    x = np.arange(24.0).reshape(2, 3, 4) / 3
    strided = x[:, ::2, ::-1]
    np.testing.assert_array_equal(enc.encode(strided), enc.encode(strided.copy()))
    r = enc.encode(x)
    np.testing.assert_array_equal(enc.decode(r[:, ::2]), enc.decode(r[:, ::2].copy()))
    assert enc.decode(np.uint64(65536)) == 1.0
    assert enc.encode(np.float32(0.5)).view(np.int64) == 32768
    assert _signed(enc.encode([True, False])) == [65536, 0]


def test_large_integers_are_exact() -> None:
    enc = FixedPointEncoder(0)
    big = 2**62 - 2**9 - 1  # not representable in float64
    assert _signed(enc.encode(np.array([big, -big]))) == [big, -big]
    assert _signed(enc.encode(np.array([big], dtype=object))) == [big]
    with pytest.raises(EncodingRangeError):
        enc.encode(np.array([2**70], dtype=object))
    with pytest.raises(EncodingRangeError):
        enc.encode([2**64])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_raise_encoding_error(bad: float) -> None:
    enc = FixedPointEncoder()
    with pytest.raises(EncodingError) as info:
        enc.encode([1.0, bad, 1e300])
    assert not isinstance(info.value, EncodingRangeError)


def test_range_message_has_no_data() -> None:
    enc = FixedPointEncoder(16)
    with pytest.raises(EncodingRangeError) as info:
        enc.encode([123456789012345.6])
    assert "123456789012345" not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("precision", [-1, 53, 100, 1.5, 16.0, True, "16", None])
def test_bad_precision(precision: object) -> None:
    with pytest.raises(ValueError, match="precision"):
        FixedPointEncoder(precision)  # type: ignore[arg-type]


def test_numpy_integer_precision() -> None:
    assert FixedPointEncoder(np.int64(20)).precision == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        b"1",
        ["a", "b"],
        [None],
        [1 + 2j],
        np.array([1 + 0j]),
        [[1, 2], [3]],
        {"a": 1},
        np.array(["1.5"]),
        np.array([np.datetime64("2020-01-01")]),
    ],
)
def test_non_numeric_raises_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        FixedPointEncoder().encode(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [np.array([1], dtype=np.int64), np.array([1.0]), [1, 2], 5, np.int64(3)]
)
def test_decode_rejects_non_uint64(bad: object) -> None:
    with pytest.raises(RingDTypeError, match="r"):
        FixedPointEncoder().decode(bad)  # type: ignore[arg-type]


def test_not_crypten_floor_decode() -> None:
    enc = FixedPointEncoder(16)
    # CrypTen's floor division would decode the encoding of -1.5 ulp as -2 ulp plus change.
    r = enc.encode([-(2.0**-16) * 3, -(2.0**-16)])
    np.testing.assert_array_equal(enc.decode(r), [-3 * 2.0**-16, -(2.0**-16)])
