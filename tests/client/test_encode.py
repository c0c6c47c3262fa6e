"""Update encodings: symmetric int8/int16 quantization with clipping and round half to
even, fixed16, two's complement in the ring, the signed decoding of sums, capacity."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.client import (
    check_capacity,
    decode_aggregate,
    encode_update,
    max_clients,
    quant_params,
)
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.errors import EncodingError, EncodingRangeError


def test_int16_quantizes_symmetrically_with_round_half_even():
    quant = QuantSpec("int16", 1.0)
    scale, qmax = quant_params(quant)
    assert (scale, qmax) == (1.0 / 32767, 32767)
    x = np.array([0.0, 0.5 * scale, 1.5 * scale, 2.5 * scale, -2.5 * scale, 3.0, -3.0, 1.0])
    out = encode_update(x, quant, 32)
    assert out.dtype == np.uint32
    assert out.view(np.int32).tolist() == [0, 0, 2, 2, -2, 32767, -32767, 32767]


def test_int8_and_fixed16():
    q8 = encode_update([0.25, -0.25, 9.0], QuantSpec("int8", 0.5), 64)
    assert q8.dtype == np.uint64
    assert q8.view(np.int64).tolist() == [64, -64, 127]  # 0.25 / (0.5/127) = 63.5 -> 64
    f16 = encode_update([1.5, -0.25, 5.0], QuantSpec("fixed16", 2.0), 32)
    assert f16.view(np.int32).tolist() == [98304, -16384, 131072]


@pytest.mark.parametrize("scheme", ["int8", "int16", "fixed16"])
@pytest.mark.parametrize("ring_bits", [32, 64])
def test_the_sum_of_encodings_decodes_to_the_sum_of_updates(scheme, ring_bits):
    quant = QuantSpec(scheme, 1.0)
    scale, _ = quant_params(quant)
    rng = np.random.default_rng(2)
    updates = [rng.uniform(-1.2, 1.2, 500) for _ in range(7)]
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    total = np.zeros(500, dtype)
    for update in updates:
        total += encode_update(update, quant, ring_bits)
    out = decode_aggregate(total, quant, ring_bits, num_clients=7)
    expected = sum(np.clip(u, -1, 1) for u in updates)
    assert np.abs(out - expected).max() <= 7 * scale / 2 + 1e-12
    assert out.dtype == np.float64


def test_a_64_bit_sum_is_reduced_into_a_32_bit_ring():
    quant = QuantSpec("int16", 1.0)
    wide = np.array([2**32 - 5, 2**33 + 7], np.uint64)
    assert decode_aggregate(wide, quant, 32).tolist() == [-5 / 32767, 7 / 32767]


def test_capacity_of_the_ring():
    assert max_clients(QuantSpec("int16", 1.0), 32) == (2**31 - 1) // 32767
    assert max_clients(QuantSpec("int8", 1.0), 32) == (2**31 - 1) // 127
    assert max_clients(QuantSpec("fixed16", 1.0), 64) == (2**63 - 1) // 2**16
    check_capacity(QuantSpec("int16", 1.0), 32, 65538)
    with pytest.raises(EncodingRangeError, match="at most 65538"):
        check_capacity(QuantSpec("int16", 1.0), 32, 65539)
    with pytest.raises(EncodingRangeError, match="at most"):
        decode_aggregate(np.zeros(2, np.uint32), QuantSpec("int16", 1.0), 32, num_clients=10**6)
    with pytest.raises(EncodingRangeError, match="does not fit"):
        encode_update([0.0], QuantSpec("fixed16", 2.0**16), 32)


def test_bad_updates_and_specs_are_refused():
    quant = QuantSpec("int16", 1.0)
    for bad in ([np.nan], [1.0, np.inf], [-np.inf]):
        with pytest.raises(EncodingError, match="NaN or infinity"):
            encode_update(bad, quant, 32)
    with pytest.raises(EncodingError, match="scheme"):
        encode_update([0.0], QuantSpec("int4", 1.0), 32)
    for clip in (0.0, -1.0, float("nan")):
        with pytest.raises(EncodingError, match="clip"):
            encode_update([0.0], QuantSpec("int16", clip), 32)
    with pytest.raises(Exception, match="ring_bits"):
        encode_update([0.0], quant, 16)
