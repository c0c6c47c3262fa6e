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


def _run(tmp: Path, clients: int, extra: list[str]) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--rounds", "3", "--out", str(tmp), "--drop-client", "-1", "--collect-timeout", "1.5",
         "--epochs", "2", *extra],
        LaunchOptions(world_size=2, clients=clients),
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue() + out.getvalue()
    return json.loads((tmp / "summary.json").read_text()), out.getvalue()


def test_federated_demo_rejects_a_malicious_client_every_round(tmp_path: Path) -> None:
    """3 honest clients + 1 attacker (wrap, inconsistent shares, negative weight in turn):
    rejected every round; the accuracy equals the run of the 3 honest clients alone."""
    attacked, text = _run(tmp_path / "attacked", 4, ["--malicious-client"])
    baseline, _ = _run(tmp_path / "baseline", 3, [])
    assert attacked["completed_rounds"] == 3 and attacked["malicious_client"] == "client-3"
    assert attacked["rejections"] == [{"round": r, "client": "client-3"} for r in (1, 2, 3)]
    assert [r["clients"] for r in attacked["per_round"]] == [3, 3, 3]
    assert abs(attacked["final_accuracy"] - baseline["final_accuracy"]) <= 0.005
    assert "REJECTED client-3: its update failed the range check" in text
    for kind in ("wrap", "inconsistent", "negative-weight"):
        assert f"uploaded a poisoned update ({kind})" in text


def test_federated_demo_single_server_secagg_with_a_dropout(tmp_path: Path) -> None:
    """``--servers 1``: one server (``-n 1``), SecAgg+ over gRPC with mutual TLS; client-2
    shares its keys in round 2 and leaves before its masked upload; the server rebuilds its
    mask key from the others' shares and the round completes without it."""
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--servers", "1", "--rounds", "3", "--out", str(tmp_path), "--drop-client", "2",
         "--drop-round", "2", "--collect-timeout", "1.5", "--epochs", "2"],
        LaunchOptions(world_size=1, clients=5),
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert code == 0, err.getvalue() + text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["servers"] == 1 and summary["protocol"] == "secagg+"
    rounds = summary["per_round"]
    assert [r["clients"] for r in rounds] == [5, 4, 4]
    assert summary["dropouts"] == [{"round": 2, "client": "client-2"}]
    assert all(r["clipped"] == 0 for r in rounds)
    assert rounds[-1]["accuracy"] > 0.5
    assert "DROPOUT client-2 before masked_input" in text
    assert "client-2: DROPOUT in round 2: shared its keys" in text


def test_federated_demo_refuses_a_server_count_mismatch(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--servers", "1", "--rounds", "1", "--out", str(tmp_path)],
        LaunchOptions(world_size=2, clients=0),
        stdout=out,
        stderr=err,
    )
    assert code != 0
    assert "--servers 1, but 2 server(s) were launched" in err.getvalue() + out.getvalue()
