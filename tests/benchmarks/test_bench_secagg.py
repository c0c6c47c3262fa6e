"""``crypten-lite-bench fl --servers 1 --quick`` (in process) and ``fl-grpc --servers 1
--quick`` (one launched server, client processes, mutual TLS): exact aggregates, the byte
accounting, and the CLI's refusal of ``--servers 1`` for other suites."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main


def test_quick_single_server_suite(tmp_path):
    out = tmp_path / "secagg.json"
    assert main(["fl", "--servers", "1", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["params"]["dropouts"] for r in records} == {0, 1}
    for r in records:
        assert r["name"] == "secagg_1server" and r["parties"] == 1
        assert r["max_abs_err"] == 0
        extra = r["extra"]
        # the masked input is the plaintext payload plus a header of a few bytes
        assert 1.0 < extra["masked_ratio"] < 1.02
        assert extra["key_bytes"] == r["bytes_sent_per_party"] - round(
            extra["masked_ratio"] * 4 * r["params"]["params"]
        )
        assert extra["neighbours"] == 4  # 5 clients: all pairs


def test_quick_single_server_suite_over_grpc(tmp_path):
    out = tmp_path / "secagg-grpc.json"
    assert main(["fl-grpc", "--servers", "1", "--quick", "--reps", "1", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["transport"] == "grpc-mtls" and record["max_abs_err"] == 0


def test_servers_1_applies_only_to_fl(capsys):
    with pytest.raises(SystemExit):
        main(["ring", "--servers", "1"])
    assert "--servers 1 applies to" in capsys.readouterr().err
