"""``crypten-lite-bench explain --quick``: IG of the encrypted LeNet and MLP on an encrypted
image, 4 and 8 steps, 2 and 3 parties in-process."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import cli, suite_explain


def test_explain_quick(tmp_path: Path) -> None:
    path = tmp_path / "explain.json"
    assert cli.main(["explain", "--quick", "--reps", "1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert {r["suite"] for r in rows} == {"explain"}
    assert {(r["params"]["model"], r["params"]["n_steps"], r["parties"]) for r in rows} == {
        (m, n, p) for m in ("lenet", "mlp") for n in (4, 8) for p in (2, 3)
    }
    for r in rows:
        assert r["transport"] == "inprocess" and r["params"]["target"] == 3
        assert r["max_abs_err"] < 1e-3, r  # vs the float64 attribution of the plain model
        assert r["rounds"] > 0 and r["bytes_sent_per_party"] > 0
    # rounds do not depend on n_steps (one forward + backward of one stacked batch); bytes do
    by_key = {(r["params"]["model"], r["parties"], r["params"]["n_steps"]): r for r in rows}
    for model in ("lenet", "mlp"):
        for parties in (2, 3):
            few, many = by_key[model, parties, 4], by_key[model, parties, 8]
            assert few["rounds"] == many["rounds"]
            assert many["bytes_sent_per_party"] > few["bytes_sent_per_party"]
    # the training-step reference is attached when the train results are there
    if suite_explain.TRAIN_RESULTS.exists():
        for r in rows:
            extra = r["extra"]
            assert extra["rounds_vs_train_step"] == r["rounds"] / extra["train_rounds"]
            assert extra["time_vs_train_step"] > 0
