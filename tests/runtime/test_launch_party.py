"""Real deployments: ``crypten-lite certs`` for a party table, ``party.toml`` files,
``crypten-lite-party`` processes (one per rank, as on N machines), and ``crypten-lite doctor``
naming exactly what is wrong."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crypten_lite.errors import ConfigError
from crypten_lite.runtime import doctor, load_party_config
from crypten_lite.transport.grpc import GrpcCommunicator, load_identity
from launcher.cli import main as cli_main

PARTY_CLI = "import sys; from launcher.cli import party_main; sys.exit(party_main())"
SCRIPT = """
import sys
import numpy as np
import crypten_lite as cl

s = cl.current_session()
x = cl.cryptensor(np.array([1.5, -2.0, 3.25]), src=0)
y = cl.cryptensor(np.array([2.0, 2.0, -1.0]), src=1)
print("result", sys.argv[1], np.round((x * y).relu().get_plain_text(), 3).tolist())
"""


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _write_configs(
    root: Path, ports: list[int], session: str = "job-1", *, connect_s: int = 20, recv_s: int = 10
) -> list[Path]:
    """party-0.toml, party-1.toml, dealer.toml for two parties + dealer on 127.0.0.1."""
    names = ["party-0", "party-1", "dealer"]
    table = "\n".join(
        f'{"dealer" if r == 2 else r} = "127.0.0.1:{port}"' for r, port in enumerate(ports)
    )
    paths = []
    for rank, name in enumerate(names):
        text = f"""
            session_id = "{session}"
            rank = {'"dealer"' if rank == 2 else rank}
            listen = "127.0.0.1:{ports[rank]}"

            [parties]
            {table}

            [tls]
            ca = "certs/ca.pem"
            cert = "certs/{name}.pem"
            key = "certs/{name}.key"

            [timeouts]
            connect_s = {connect_s}
            recv_s = {recv_s}
        """
        path = root / f"{name}.toml"
        path.write_text(textwrap.dedent(text).replace("\n            ", "\n"))
        paths.append(path)
    return paths


@pytest.fixture
def deployment(tmp_path):
    configs = _write_configs(tmp_path, _free_ports(3))
    assert cli_main(["certs", "--config", str(configs[0]), "--out", str(tmp_path / "certs")]) == 0
    return tmp_path, configs


def test_three_rank_processes_run_one_job_from_their_config_files(deployment):
    root, configs = deployment
    (root / "job.py").write_text(SCRIPT)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PARTY_CLI,
                "--config",
                str(config),
                *([] if config.stem == "dealer" else [str(root / "job.py"), config.stem]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for config in configs
    ]
    try:
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    assert outputs[0][0].strip() == "result party-0 [3.0, 0.0, 0.0]"
    assert outputs[1][0].strip() == "result party-1 [3.0, 0.0, 0.0]"


def test_doctor_reports_unreachable_peers_by_name(deployment):
    _, configs = deployment
    out = io.StringIO()
    assert doctor(configs[1], out, timeout_s=1.0) == 1
    text = out.getvalue()
    assert "[ ok ] tls: " in text and "'party-1', signed by the CA" in text
    assert "[ ok ] listen 127.0.0.1:" in text
    assert "party 0 at 127.0.0.1:" in text and "dealer (rank 2) at 127.0.0.1:" in text
    assert text.count("connection refused: nothing listens there") == 2


def test_doctor_passes_when_every_peer_is_up(deployment):
    _, configs = deployment
    peers = [load_party_config(configs[r]) for r in (0, 2)]
    servers = [
        GrpcCommunicator(
            c.rank,
            c.world_size,
            session_id=c.session_id,
            listen=c.listen,
            tls=load_identity(c.certs),
        )
        for c in peers
    ]
    try:
        out = io.StringIO()
        code = doctor(configs[1], out, timeout_s=3.0)
        assert code == 0, out.getvalue()
        assert out.getvalue().count("reachable, TLS ok, SERVING, session 'job-1'") == 2
    finally:
        for server in servers:
            server.abort("teardown")


def test_doctor_explains_certificate_and_session_problems(deployment):
    root, configs = deployment
    wrong = configs[1].read_text().replace("certs/party-1.pem", "certs/party-0.pem")
    (root / "wrong.toml").write_text(wrong)
    out = io.StringIO()
    assert doctor(root / "wrong.toml", out) == 1
    assert "names ['party-0'] but this rank is 'party-1'" in out.getvalue()
    assert "is not the private key of" in out.getvalue()

    peer = load_party_config(configs[0])
    other_job = GrpcCommunicator(
        0, 2, session_id="another-job", listen=peer.listen, tls=load_identity(peer.certs)
    )
    try:
        out = io.StringIO()
        assert doctor(configs[1], out, timeout_s=2.0) == 1
        assert "unknown session id 'job-1'" in out.getvalue()
    finally:
        other_job.abort("teardown")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('session_id = "job-1"', ""), "session_id must be"),
        (lambda t: "bogus = 1\n" + t, "unknown top-level key(s) ['bogus']"),
        (lambda t: t + "\nbogus = 1\n", "unknown key(s) in [timeouts]: ['bogus']"),
        (lambda t: t.replace("rank = 1", "rank = 7"), "rank must be one of"),
        (lambda t: t.replace('key = "certs/party-1.key"', ""), "[tls] needs ['key']"),
        (
            lambda t: t.replace("recv_s = 10", "recv_s = -1"),
            "timeouts.recv_s must be a positive number",
        ),
        (lambda t: "insecure_plaintext = true\n" + t, "not both"),
        (lambda t: t.replace("dealer = ", "#"), "needs a 'dealer' address"),
        (lambda t: t + "\n[protocol]\nprovider = 'Nope'\n", "provider must be one of"),
        (lambda t: t + "\n[edge]\nmax_calls = 3\n", "unknown key(s) in [edge]"),
        (
            lambda t: t + "\n[edge]\nmax_concurrent_calls = 0\n",
            "edge.max_concurrent_calls must be a positive number",
        ),
    ],
)
def test_config_errors_name_the_key(deployment, edit, message):
    root, configs = deployment
    bad = root / "bad.toml"
    bad.write_text(edit(configs[1].read_text()))
    with pytest.raises(ConfigError) as info:
        load_party_config(bad)
    assert message in str(info.value)


def test_certs_rotate_leaf_certificates_under_the_same_ca(deployment):
    root, _ = deployment
    ca_pem = (root / "certs" / "ca.pem").read_bytes()
    old_leaf = (root / "certs" / "party-1.pem").read_bytes()
    code = cli_main(
        [
            "certs",
            "-n",
            "2",
            "--out",
            str(root / "rotated"),
            "--ca-cert",
            str(root / "certs" / "ca.pem"),
            "--ca-key",
            str(root / "certs" / "ca.key"),
        ]
    )
    assert code == 0
    assert (root / "rotated" / "ca.pem").read_bytes() == ca_pem
    assert not (root / "rotated" / "ca.key").exists()  # the CA key is never copied
    assert (root / "rotated" / "party-1.pem").read_bytes() != old_leaf
    assert oct((root / "rotated" / "party-1.key").stat().st_mode & 0o777) == "0o600"


def test_certs_issue_edge_client_certificates_under_the_job_ca(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from crypten_lite.transport.grpc.tls import client_of_identity

    out = tmp_path / "certs"
    assert cli_main(["certs", "-n", "2", "--clients", "3", "--out", str(out)]) == 0
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    for index in range(3):
        cert = x509.load_pem_x509_certificate((out / f"client-{index}.pem").read_bytes())
        name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert client_of_identity(str(name)) == f"client-{index}"
        cert.verify_directly_issued_by(ca)
        assert (out / f"client-{index}.key").stat().st_mode & 0o077 == 0
    assert not (out / "client-3.pem").exists()


def test_edge_limits_come_from_the_config(deployment):
    root, configs = deployment
    tuned = root / "tuned.toml"
    tuned.write_text(
        configs[1].read_text() + "\n[edge]\nmax_concurrent_calls = 64\nmax_calls_per_client = 9\n"
    )
    config = load_party_config(tuned)
    assert (config.grpc.edge_max_concurrent_calls, config.grpc.edge_max_calls_per_client) == (64, 9)
    assert load_party_config(configs[1]).grpc.edge_max_concurrent_calls == 8
