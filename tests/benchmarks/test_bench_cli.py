"""crypten-lite-bench writes its record schema and prints a table."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main

REQUIRED_KEYS = {
    "suite",
    "name",
    "params",
    "parties",
    "transport",
    "wall_s_median",
    "wall_s_min",
    "reps",
    "rounds",
    "bytes_sent_per_party",
    "max_abs_err",
    "plaintext_s",
}


def test_quick_ring_suite_writes_records(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["ring", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert records, "no records written"
    for record in records:
        assert REQUIRED_KEYS <= record.keys()
        assert record["wall_s_min"] <= record["wall_s_median"]
    matmuls = [r for r in records if r["name"] == "matmul"]
    assert matmuls and all(r["max_abs_err"] == 0 for r in matmuls)  # exact vs numpy uint64
    assert "matmul" in capsys.readouterr().out


def test_unknown_suite_is_rejected():
    with pytest.raises(SystemExit):
        main(["no-such-suite"])


def test_quick_models_suite_runs_private_inference(tmp_path):
    out = tmp_path / "models.json"
    assert main(["models", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["name"] for r in records} == {"mlp", "lenet", "mlp-int8", "lenet-int8"}
    for record in records:
        assert record["suite"] == "models"
        assert record["rounds"] > 0
        if record["name"].endswith("-int8"):
            # int8 logits vs the float forward: quantization error, a few output steps
            assert record["max_abs_err"] < 0.1
            assert record["extra"]["agree_int8"] == 1.0
            assert record["extra"]["int8_steps_off"] <= 1
        else:
            assert record["max_abs_err"] < 1e-2  # logits of the private forward vs plaintext


def test_quick_train_suite_steps_match_float64(tmp_path):
    out = tmp_path / "train.json"
    assert main(["train", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    by_case = {(r["name"], r["parties"]): r for r in records}
    assert set(by_case) == {(n, p) for n in ("logreg", "mlp", "lenet") for p in (2, 3)}
    for record in records:
        assert record["suite"] == "train"
        assert record["max_abs_err"] < 1e-3  # updated weights vs the float64 step
        assert "crypten_s_secure" not in record["extra"]  # only at the sizes
    # deterministic round counts of one step (forward, backward, update)
    assert by_case[("logreg", 2)]["rounds"] == 7
    assert by_case[("mlp", 2)]["rounds"] == 46
    assert by_case[("lenet", 2)]["rounds"] == 82
