"""examples/federated_demo.py through the launcher: 2 servers + client processes over gRPC
with mutual TLS; one client drops out and the round still completes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from crypten_lite.runtime import LaunchOptions, launch

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "federated_demo.py"


def test_federated_demo_completes_with_a_dropout(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--rounds", "3", "--out", str(tmp_path), "--drop-client", "2", "--drop-round", "2",
         "--collect-timeout", "1.5", "--epochs", "2"],
        LaunchOptions(world_size=2, clients=4),
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert code == 0, err.getvalue() + text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["clients"] == 4 and summary["completed_rounds"] == 3
    rounds = summary["per_round"]
    assert [r["clients"] for r in rounds] == [4, 3, 3]
    assert summary["dropouts"] == [{"round": 2, "client": "client-2"}]
    assert all(r["upload_ratio"] <= 1.05 for r in rounds)
    assert rounds[-1]["accuracy"] > 0.5  # trained from zeros, well above chance (0.1)
    assert "DROPOUT client-2 reached server 0 but not server 1" in text
    assert "client-2: DROPOUT in round 2" in text
