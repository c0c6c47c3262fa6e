"""crypten-lite-bench edge --quick: concurrent private-inference clients, every query
answered, latency percentiles ordered."""

from __future__ import annotations

import json

from benchmarks.cli import main


def test_quick_edge_suite(tmp_path):
    out = tmp_path / "edge.json"
    assert main(["edge", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["params"]["clients"] for r in records] == [1, 4]
    for r in records:
        clients = r["params"]["clients"]
        assert r["params"]["queries"] == clients * (4 if clients == 1 else 2)
        assert 0 < r["extra"]["p50_ms"] <= r["extra"]["p99_ms"]
        assert r["extra"]["queries_per_s"] > 0
