"""The committed generated code in crypten_lite/_proto matches protos/ exactly."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
GENERATED = ROOT / "crypten_lite" / "_proto"


def test_generated_code_is_up_to_date(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) is not installed")
    sources = sorted(PROTOS.glob("crypten_lite/_proto/*.proto"))
    assert {p.name for p in sources} >= {"party.proto", "health.proto", "edge.proto"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *map(str, sources),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    fresh = tmp_path / "crypten_lite" / "_proto"
    fresh_files = sorted(p.name for p in fresh.iterdir())
    committed = sorted(p.name for p in GENERATED.iterdir() if p.suffix in (".py", ".pyi"))
    assert [f for f in committed if f != "__init__.py"] == fresh_files, (
        "generated files differ from the committed set; regenerate (see _proto/__init__.py)"
    )
    stale = [name for name in fresh_files if not filecmp.cmp(fresh / name, GENERATED / name, False)]
    assert not stale, (
        f"stale generated code {stale}: regenerate (see crypten_lite/_proto/__init__.py)"
    )


def test_the_edge_service_matches_the_gateway():
    """The generated Edge service names the methods the gateway registers by hand."""
    from crypten_lite._proto import edge_pb2
    from crypten_lite.transport.grpc.options import EDGE_SERVICE

    service = edge_pb2.DESCRIPTOR.services_by_name["Edge"]
    assert service.full_name == EDGE_SERVICE
    assert sorted(m.name for m in service.methods) == [
        "Advertise",
        "Infer",
        "RoundInfo",
        "SecAggState",
        "ShareKeys",
        "Submit",
        "SubmitMasked",
        "Unmask",
    ]
