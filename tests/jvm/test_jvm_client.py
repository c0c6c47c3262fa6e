"""The JVM edge client (``clients/jvm``) against real Python servers: two aggregation
servers (``crypten-lite-party`` processes, gRPC with mutual TLS, certificates from
``crypten-lite certs``) aggregate three JVM clients' updates exactly; a wrong-length update,
a client that trusts another CA and a wrong operator token get the same clear errors as the
Python client and nothing is counted; one JVM private-inference query matches the plaintext
model. Runs where the JVM client is built (``make jvm-client``; CI sets
``CRYPTEN_LITE_REQUIRE_JVM=1`` so a missing build fails instead of skipping)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from crypten_lite.edge.encode import decode_aggregate, encode_update
from crypten_lite.edge.messages import QuantSpec
from launcher.cli import main as cli_main
from tests.runtime.test_launch_party import _free_ports, _write_configs

#: JVM start-ups, certificates, three rank processes and a deadline-bound TLS failure
pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "clients" / "jvm" / "run.sh"
PARTY_CLI = "import sys; from launcher.cli import party_main; sys.exit(party_main())"
QUANT = QuantSpec("int16", 1.0)
M = 6

if not RUNNER.exists() or not (ROOT / "clients" / "jvm" / "target").exists():
    if os.environ.get("CRYPTEN_LITE_REQUIRE_JVM") == "1":
        raise RuntimeError("the JVM client is not built: run `make jvm-client`")
    pytest.skip("the JVM client is not built (make jvm-client)", allow_module_level=True)

AGGREGATE_SERVER = """
import json, sys, time
import numpy as np
import crypten_lite as cl
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.fl import AggregationConfig, AggregationService

out = sys.argv[1]
session = cl.current_session()
service = AggregationService(session, AggregationConfig(
    job_id="jvm-it", num_elements=6, ring_bits=32, quant=QuantSpec("int16", 1.0),
    min_clients=3, expected_clients=3, first_round_timeout_s=120, collect_timeout_s=30))
session.comm.set_edge_handler(service)
result = service.run_round(np.zeros(6, np.float32))
if session.rank == 0:
    with open(out, "w") as f:
        json.dump({"clients": list(result.clients), "rejected": list(result.rejected),
                   "excluded": list(result.excluded),
                   "aggregate": result.aggregate.tolist()}, f)
service.finish()
time.sleep(3)
"""

INFERENCE_SERVER = """
import sys
import crypten_lite as cl
from benchmarks.suite_edge import _mlp
from crypten_lite.inference import InferenceService

session = cl.current_session()
service = InferenceService(session, {"mlp": _mlp().encrypt(src=0)}, input_shapes={"mlp": (64,)},
                           query_timeout_s=60.0)
session.comm.set_edge_handler(service)
print("served", service.serve(max_queries=1, idle_timeout_s=120), flush=True)
"""


class Deployment:
    """Two parties and the dealer as ``crypten-lite-party`` processes on 127.0.0.1."""

    def __init__(self, root: Path, script: str, args: list[str], clients: int = 4) -> None:
        self.root = root
        self.ports = _free_ports(3)
        configs = _write_configs(root, self.ports, f"jvm-{root.name}", connect_s=30, recv_s=60)
        certs = ["certs", "--config", str(configs[0]), "--out", str(root / "certs")]
        assert cli_main([*certs, "--clients", str(clients)]) == 0
        (root / "job.py").write_text(textwrap.dedent(script))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", PARTY_CLI, "--config", str(config),
                 *([] if config.stem == "dealer" else [str(root / "job.py"), *args])],
                cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )
            for config in configs
        ]

    @property
    def servers(self) -> str:
        return f"127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"

    def tls(self, client: str, ca: Path | None = None) -> list[str]:
        certs = self.root / "certs"
        return ["--ca", str(ca or certs / "ca.pem"), "--cert", str(certs / f"{client}.pem"),
                "--key", str(certs / f"{client}.key")]

    def finish(self, timeout: float = 120) -> list[tuple[str, str]]:
        try:
            outputs = [p.communicate(timeout=timeout) for p in self.procs]
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc, (_, err) in zip(self.procs, outputs, strict=True):
            assert proc.returncode == 0, err[-3000:]
        return outputs


def _jvm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(RUNNER), *args], capture_output=True, text=True,
                          timeout=timeout)


def _write(path: Path, values: list[float]) -> Path:
    path.write_text(json.dumps(values))
    return path


def test_jvm_clients_aggregate_exactly_and_bad_uploads_are_refused(tmp_path):
    other = tmp_path / "other-ca"
    assert cli_main(["certs", "-n", "2", "--out", str(other)]) == 0
    deploy = Deployment(tmp_path, AGGREGATE_SERVER, [str(tmp_path / "result.json")])
    base = ["aggregate", "--servers", deploy.servers, "--identities", "party-0,party-1",
            "--timeout", "90", "--after", "0"]
    rng = np.random.default_rng(3)
    updates = [rng.uniform(-1, 1, M).tolist() for _ in range(3)]
    updates[2][0] = 7.5  # beyond the clip: clipped to 1.0 by the client, as in Python
    try:
        # a wrong-length update: the servers' refusal passes through, nothing is counted
        wrong = _jvm(*base, *deploy.tls("client-3"),
                     "--update", str(_write(tmp_path / "wrong.json", [0.5] * (M + 1))))
        assert wrong.returncode == 2, wrong.stderr
        assert "refused: invalid" in wrong.stderr and "num_elements" in wrong.stderr
        # a client that trusts another CA cannot reach the servers at all
        alien = _jvm(*base, *deploy.tls("client-3", ca=other / "ca.pem"),
                     "--update", str(_write(tmp_path / "u3.json", [0.1] * M)), timeout=180)
        assert alien.returncode != 0 and "refused: duplicate" not in alien.stderr
        assert alien.stderr.strip(), "the TLS failure must be reported"
        # three honest JVM clients, concurrently
        runs = [
            subprocess.Popen(
                ["bash", str(RUNNER), *base, *deploy.tls(f"client-{i}"),
                 "--update", str(_write(tmp_path / f"u{i}.json", updates[i]))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(3)
        ]
        reports = [p.communicate(timeout=180) for p in runs]
        for proc, (out, err) in zip(runs, reports, strict=True):
            assert proc.returncode == 0, err
            line = json.loads(out.strip().splitlines()[-1])
            assert line["round"] == 1 and len(line["bytes"]) == 2
    finally:
        deploy.finish()
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["clients"] == ["client-0", "client-1", "client-2"]
    assert result["rejected"] == [] and result["excluded"] == []
    total = np.zeros(M, np.uint64)
    for values in updates:
        total += encode_update(np.array(values), QUANT, 32)
    np.testing.assert_array_equal(np.array(result["aggregate"]), decode_aggregate(total, QUANT, 32))


def test_jvm_private_inference_matches_the_plaintext_model(tmp_path):
    from benchmarks.suite_edge import _mlp

    deploy = Deployment(tmp_path, INFERENCE_SERVER, [])
    x = np.random.default_rng(11).uniform(-1, 1, 64)
    try:
        run = _jvm("infer", "--servers", deploy.servers, "--identities", "party-0,party-1",
                   *deploy.tls("client-0"), "--model", "mlp", "--shape", "1,64",
                   "--input", str(_write(tmp_path / "x.json", x.tolist())),
                   "--frac-bits", "16", timeout=180)
        assert run.returncode == 0, run.stderr
        output = np.array(json.loads(run.stdout.strip().splitlines()[-1])["output"])
    finally:
        deploy.finish()
    expected = np.asarray(_mlp()(x[None])).reshape(-1)
    assert output.shape == expected.shape
    np.testing.assert_allclose(output, expected, atol=2e-3)


def test_a_wrong_operator_token_is_refused(tmp_path):
    """A plaintext server with operator tokens (as behind a TLS-terminating proxy): the
    JVM client with a forged token gets the server's UNAUTHENTICATED message."""
    from crypten_lite.edge.messages import RoundInfo, RoundState, UpdateShare
    from crypten_lite.transport.grpc import GrpcCommunicator, issue_token

    class Job:
        def round_info(self, client_id: str) -> RoundInfo:
            return RoundInfo("jvm-token", 1, RoundState.OPEN, M, 32, QUANT, 2, 0, 1)

        def submit(self, client_id: str, share: UpdateShare) -> None:
            raise AssertionError("nothing may be counted")

    key = os.urandom(32)
    comms = [GrpcCommunicator(r, 2, session_id="tok", insecure_plaintext=True, timeout_s=5)
             for r in (0, 1)]
    try:
        for comm in comms:
            comm.set_edge_handler(Job(), token_key=key, token_job_id="jvm-token")
        good = issue_token(key, "client-7", "jvm-token", time.time() + 600)
        forged = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
        servers = ",".join(f"127.0.0.1:{c.port}" for c in comms)
        run = _jvm("aggregate", "--servers", servers, "--identities", "party-0,party-1",
                   "--plaintext", "--client-id", "client-7", "--token", forged,
                   "--update", str(_write(tmp_path / "u.json", [0.1] * M)), "--after", "0",
                   "--timeout", "20")
        assert run.returncode == 2, run.stderr
        assert "refused: unauthenticated" in run.stderr and "token" in run.stderr
    finally:
        for comm in comms:
            comm.abort("test over")
