"""The Python SDK reproduces ``tests/vectors/edge_client.json`` exactly: the vectors every
other edge client (the JVM client under ``clients/jvm``) is tested against, so a change on
either side that breaks byte-for-byte agreement fails here or there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crypten_lite.client import pack_weighted_update
from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.edge.shares import expand_seed
from crypten_lite.encoding import FixedPointEncoder

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "edge_client.json").read_text()
)


def _words(values: list[str], bits: int) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.uint32 if bits == 32 else np.uint64)


@pytest.mark.parametrize("vector", VECTORS["seed_expansion"])
def test_seed_expansion(vector):
    got = expand_seed(bytes.fromhex(vector["seed"]), vector["num_elements"], vector["ring_bits"])
    np.testing.assert_array_equal(got, _words(vector["words"], vector["ring_bits"]))


@pytest.mark.parametrize("vector", VECTORS["encode"])
def test_encode(vector):
    quant = QuantSpec(vector["scheme"], vector["clip"])
    got = encode_update(np.array(vector["x"]), quant, vector["ring_bits"])
    np.testing.assert_array_equal(got, _words(vector["words"], vector["ring_bits"]))


@pytest.mark.parametrize("vector", VECTORS["split"])
def test_split_reconstructs(vector):
    bits = vector["ring_bits"]
    total = _words(vector["masked"], bits)
    for seed in vector["seeds"]:
        total = total + expand_seed(bytes.fromhex(seed), total.size, bits)
    np.testing.assert_array_equal(total, _words(vector["values"], bits))


@pytest.mark.parametrize("vector", VECTORS["fixed_point"])
def test_fixed_point_inputs(vector):
    got = FixedPointEncoder(vector["frac_bits"]).encode(np.array(vector["x"]))
    np.testing.assert_array_equal(got, _words(vector["words"], 64))


@pytest.mark.parametrize("vector", VECTORS["pack_weighted"])
def test_pack_weighted(vector):
    got = pack_weighted_update(np.array(vector["delta"]), vector["weight"])
    np.testing.assert_array_equal(got, np.array(vector["packed"]))


def test_the_vectors_cover_the_edges():
    kinds = {(v["scheme"], v["ring_bits"]) for v in VECTORS["encode"]}
    assert kinds == {(s, b) for s in ("int8", "int16", "fixed16") for b in (32, 64)}
    assert {v["ring_bits"] for v in VECTORS["seed_expansion"]} == {32, 64}
    assert any(v["num_elements"] == 0 for v in VECTORS["seed_expansion"])
