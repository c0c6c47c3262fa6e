"""crypten-lite-bench fl --quick: one secure-aggregation round, exact, with upload ratios."""

from __future__ import annotations

import json

from benchmarks.cli import main


def test_quick_fl_suite(tmp_path):
    out = tmp_path / "fl.json"
    assert main(["fl", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["name"] for r in records} == {"secagg_round", "secagg_nocheck", "secagg_norm"}
    assert all(r["suite"] == "fl" for r in records)
    for r in records:
        assert r["max_abs_err"] == 0  # revealed aggregate == plaintext sum of quantized updates
        # agreement + opening (no check); the range check adds one batch of 4-round
        # comparisons, the per-client zero test (3) and the opening of the accept bits (1);
        # the norm bound adds its square (1) and its own 4-round comparison
        assert r["rounds"] == {"secagg_nocheck": 2, "secagg_round": 10, "secagg_norm": 15}[
            r["name"]
        ]
        overhead = r["extra"]["upload_B"] - r["extra"]["plain_B"]
        assert 0 < overhead < 120  # nonce + seed + framing, independent of the size
        assert r["extra"]["plain_B"] == r["params"]["params"] * r["params"]["ring"] // 8
        assert r["wall_s_min"] <= r["wall_s_median"]
    assert records[0]["extra"]["upload_ratio"] <= 1.05  # 1000 parameters, 32-bit ring
