"""crypten-lite-bench offline --quick: generation rates, store sizes, and the linear ops with
the dealer online and from stores, with the same traffic (no dealer bytes online)."""

from __future__ import annotations

import dataclasses
import json

from benchmarks.cli import main


def test_quick_offline_suite(tmp_path):
    out = tmp_path / "offline.json"
    assert main(["offline", "--quick", "--reps", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    names = {r["name"] for r in records}
    assert {"generate", "store-size", "mul", "mul-online", "conv2d-online"} <= names
    online = {(r["name"][: -len("-online")], r["parties"], str(r["params"].get("n"))): r
              for r in records if r["name"].endswith("-online")}
    for r in records:
        key = (r["name"], r["parties"], str(r["params"].get("n")))
        if key in online:  # same rounds; party 0 sends the same bytes (it never talks to
            # the dealer), party N-1 no longer sends its requests
            assert online[key]["rounds"] == r["rounds"]
            assert online[key]["extra"]["bytes_sent_party0"] == r["extra"]["bytes_sent_party0"]
            assert online[key]["bytes_sent_per_party"] <= r["bytes_sent_per_party"]
            assert online[key]["max_abs_err"] < 1e-3
    sizes = [r for r in records if r["name"] == "store-size"]
    assert all(r["extra"]["store_MB_all_parties"] > 0 for r in sizes)


def test_full_size_rows_carry_crypten_measured_here():
    # The full-size linear cases match the rows of the committed CrypTen reference (2 and 3
    # parties); a row gets CrypTen's time and the speed-up over it, quick sizes get neither.
    from benchmarks import suite_offline
    from benchmarks.record import BenchRecord, Timing

    for world in (2, 3):
        for case in suite_offline.cases(quick=False):
            row = BenchRecord.from_timing(
                "offline", case.name, Timing(0.05, 0.04, 3), params={}, parties=world,
                transport="grpc-mtls")
            got = suite_offline.with_crypten(row, case, world)
            assert got.extra["crypten_ttp_ms"] > 0
            assert got.extra["x_crypten"] == round(got.extra["crypten_ttp_ms"] / 50, 2)
            assert "x_crypten_party0" not in got.extra  # no party 0 median on this row
            row = dataclasses.replace(row, extra={"party0_ms": 40.0})
            got = suite_offline.with_crypten(row, case, world)
            assert got.extra["x_crypten_party0"] == round(got.extra["crypten_ttp_ms"] / 40, 2)
    for case in suite_offline.cases(quick=True):
        row = BenchRecord.from_timing(
            "offline", case.name, Timing(0.05, 0.04, 3), params={}, parties=2, transport="x")
        assert "x_crypten" not in suite_offline.with_crypten(row, case, 2).extra
