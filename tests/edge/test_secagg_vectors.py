"""The Python SecAgg code reproduces ``tests/vectors/secagg.json`` (the JVM client is tested
against the same file)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from crypten_lite.edge.secagg_crypto import (
    commit_seed,
    open_shares,
    pair_seed,
    private_key,
    public_key_of,
    round_context,
    share_key,
)
from crypten_lite.edge.shamir import decode_share, reconstruct
from crypten_lite.edge.shares import expand_seed

V = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "secagg.json").read_text())


@pytest.mark.parametrize("vector", V["context"])
def test_context(vector):
    assert round_context(vector["job_id"], vector["round"]).hex() == vector["context"]


@pytest.mark.parametrize("vector", V["pairs"])
def test_pair_material_agrees_from_both_ends(vector):
    ctx = bytes.fromhex(vector["context"])
    sk_u, sk_v = bytes.fromhex(vector["private_u"]), bytes.fromhex(vector["private_v"])
    u, v = vector["u"], vector["v"]
    assert public_key_of(sk_u).hex() == vector["public_u"]
    for own, peer, a, b in ((sk_u, vector["public_v"], u, v), (sk_v, vector["public_u"], v, u)):
        seed = pair_seed(private_key(own), bytes.fromhex(peer), ctx, a, b)
        assert seed.hex() == vector["pair_seed"]
        assert share_key(private_key(own), bytes.fromhex(peer), ctx, a, b).hex() == vector[
            "share_key"
        ]
        assert [str(int(w)) for w in expand_seed(seed, 5, 32)] == vector["pair_mask_32"]


def test_sealed_share_opens():
    s = V["sealed"]
    plain = open_shares(bytes.fromhex(s["key"]), bytes.fromhex(s["context"]), s["sender"],
                        s["receiver"], bytes.fromhex(s["sealed"]))
    assert plain.hex() == s["plaintext"]


@pytest.mark.parametrize("vector", V["commitments"])
def test_commitment(vector):
    got = commit_seed(bytes.fromhex(vector["context"]), vector["index"],
                      bytes.fromhex(vector["seed"]))
    assert got.hex() == vector["commitment"]


@pytest.mark.parametrize("vector", V["shamir"])
def test_any_threshold_shares_reconstruct(vector):
    points = [(x, decode_share(bytes.fromhex(s)))
              for x, s in zip(vector["xs"], vector["shares"], strict=True)]
    for combo in itertools.combinations(points, vector["threshold"]):
        assert reconstruct(list(combo)).hex() == vector["secret"]
