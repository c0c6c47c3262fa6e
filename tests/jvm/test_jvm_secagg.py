"""The JVM client's single-server SecAgg stages against a real Python ``SecAggService``
(gRPC with mutual TLS, in this process): four JVM clients, one of them leaving after sharing
its keys; the server rebuilds that client's mask key from the others' shares and the
aggregate is exactly the sum of the three survivors' updates."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from crypten_lite.edge.encode import decode_aggregate, encode_update
from crypten_lite.edge.messages import QuantSpec

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "clients" / "jvm" / "run.sh"
QUANT = QuantSpec("int16", 1.0)
M = 40

pytestmark = pytest.mark.timeout(600)

if not RUNNER.exists() or not (ROOT / "clients" / "jvm" / "target").exists():
    if os.environ.get("CRYPTEN_LITE_REQUIRE_JVM") == "1":
        raise RuntimeError("the JVM client is not built: run `make jvm-client`")
    pytest.skip("the JVM client is not built (make jvm-client)", allow_module_level=True)


def test_jvm_clients_run_a_single_server_secagg_round_with_a_dropout(tmp_path):
    from crypten_lite.fl.secagg import SecAggConfig, SecAggService
    from crypten_lite.transport.grpc import (
        GrpcCommunicator,
        load_identity,
        write_client_certs,
        write_job_certs,
    )

    ranks = write_job_certs(tmp_path, 1)
    ca = ((tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca.key").read_bytes())
    clients = write_client_certs(tmp_path, 4, ca=ca)
    comm = GrpcCommunicator(0, 1, session_id="jvm-secagg", tls=load_identity(ranks[0]),
                            timeout_s=10)
    service = SecAggService(SecAggConfig("jvm-secagg", M, quant=QUANT, min_clients=3,
                                         expected_clients=4, collect_timeout_s=20,
                                         first_round_timeout_s=120))
    comm.set_edge_handler(service)
    outcome: dict = {}

    def serve() -> None:
        try:
            outcome["result"] = service.run_round(np.zeros(M, np.float32))
        except Exception as err:  # reported below
            outcome["error"] = err

    server = threading.Thread(target=serve)
    server.start()
    rng = np.random.default_rng(21)
    updates = [rng.uniform(-1, 1, M) for _ in range(4)]
    try:
        runs = []
        for i in range(4):
            path = tmp_path / f"u{i}.json"
            path.write_text(json.dumps(updates[i].tolist()))
            paths = clients[f"client-{i}"]
            runs.append(subprocess.Popen(
                ["bash", str(RUNNER), "secagg", "--server", f"127.0.0.1:{comm.port}",
                 "--identity", "party-0", "--ca", str(tmp_path / "ca.pem"),
                 "--cert", str(paths.cert), "--key", str(paths.key), "--update", str(path),
                 "--after", "0", "--timeout", "120",
                 *(["--drop-after-share-keys"] if i == 3 else [])],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        reports = [p.communicate(timeout=240) for p in runs]
        server.join(240)
    finally:
        service.finish()
        comm.abort("test over")
    for proc, (out, err) in zip(runs, reports, strict=True):
        assert proc.returncode == 0, err
    lines = [json.loads(out.strip().splitlines()[-1]) for out, _ in reports]
    assert lines[3]["dropped"] is True
    for line in lines[:3]:
        assert line["round"] == 1 and line["neighbours"] == 3 and line["complaints"] == []
        assert line["masked"] >= M * 4  # the masked vector: the plaintext payload + header
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.clients == ("client-0", "client-1", "client-2")
    assert result.dropped["masked_input"] == ("client-3",)
    total = np.zeros(M, np.uint64)
    for values in updates[:3]:
        total += encode_update(values, QUANT, 32)
    np.testing.assert_array_equal(result.aggregate, decode_aggregate(total, QUANT, 32))
