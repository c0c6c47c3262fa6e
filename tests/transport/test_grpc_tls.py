"""Mutual TLS: connections without a valid certificate, with a certificate from another CA,
or presenting another rank's identity are refused and logged; the server keeps serving."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import grpc
import numpy as np
import pytest

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.errors import PeerTimeoutError, TlsSetupError
from crypten_lite.transport.grpc import GrpcCommunicator, GrpcOptions, TlsIdentity, load_identity
from crypten_lite.transport.grpc.channels import open_link
from crypten_lite.transport.grpc.options import PARTY_SERVICE
from crypten_lite.transport.grpc.tls import (
    identity_name,
    inspect_identity,
    rank_of_identity,
    write_job_certs,
)
from crypten_lite.transport.grpc.wire import Header, encode_frames
from tests.transport.test_grpc_support import run_threads


@pytest.fixture
def job(tmp_path):
    """Party 0 of a 2-party job listening with TLS; certificates of the job and of a stranger."""
    certs = write_job_certs(tmp_path / "job", 2)
    stranger = write_job_certs(tmp_path / "other", 2)
    server = GrpcCommunicator(0, 2, session_id="S", tls=load_identity(certs[0]))
    yield server, certs, stranger
    server.abort("teardown")


def _hello(server: GrpcCommunicator, credentials, source: int = 1):
    channel = grpc.secure_channel(
        f"127.0.0.1:{server.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", identity_name(0, 2))],
    )
    try:
        return party_pb2.HelloReply.FromString(
            channel.unary_unary("/crypten_lite.v1.Party/Hello")(
                party_pb2.HelloRequest(
                    session_id="S", source=source, world_size=2
                ).SerializeToString(),
                timeout=3,
            )
        )
    finally:
        channel.close()


def _still_serves(server: GrpcCommunicator, certs) -> None:
    ident = load_identity(certs[1])
    good = grpc.ssl_channel_credentials(ident.ca_pem, ident.key_pem, ident.cert_pem)
    assert _hello(server, good).rank == 0


def test_identity_names_map_to_ranks():
    assert [identity_name(r, 3) for r in range(4)] == ["party-0", "party-1", "party-2", "dealer"]
    assert [rank_of_identity(n, 3) for n in ("party-0", "party-2", "dealer")] == [0, 2, 3]
    for name in ("party-3", "party-01", "party--1", "Party-1", "dealer2", ""):
        assert rank_of_identity(name, 3) is None


def test_a_client_without_a_certificate_is_refused_and_logged(job, capfd):
    server, certs, _ = job
    ca = load_identity(certs[1]).ca_pem
    with pytest.raises(grpc.RpcError) as info:
        _hello(server, grpc.ssl_channel_credentials(ca))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.1)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in capfd.readouterr().err
    _still_serves(server, certs)


def test_a_certificate_from_another_ca_is_refused_and_logged(job, capfd):
    server, certs, stranger = job
    own_ca = load_identity(certs[1]).ca_pem
    other = load_identity(stranger[1])  # right name "party-1", wrong CA
    with pytest.raises(grpc.RpcError) as info:
        _hello(server, grpc.ssl_channel_credentials(own_ca, other.key_pem, other.cert_pem))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.1)
    assert "CERTIFICATE_VERIFY_FAILED" in capfd.readouterr().err
    _still_serves(server, certs)


def test_plaintext_clients_are_refused(job):
    server, certs, _ = job
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary("/grpc.health.v1.Health/Check")(
                health_pb2.HealthCheckRequest(service=PARTY_SERVICE).SerializeToString(),
                timeout=3,
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
    _still_serves(server, certs)


def test_a_party_claiming_another_partys_rank_is_refused_and_logged(tmp_path, caplog):
    certs = write_job_certs(tmp_path, 3)
    server = GrpcCommunicator(0, 3, session_id="S", tls=load_identity(certs[0]))
    impostor: TlsIdentity = load_identity(certs[2])  # a valid party-2 certificate ...
    try:
        link = open_link(0, 3, f"127.0.0.1:{server.port}", impostor, GrpcOptions())
        _, frames = encode_frames(Header("S", 1, 0, 0), np.ones(3), 1 << 20)
        with caplog.at_level(logging.WARNING, logger="crypten_lite.transport.grpc"):
            with pytest.raises(grpc.RpcError) as info:  # ... sending as party 1
                link.transfer(frames, timeout=3)
            with pytest.raises(grpc.RpcError) as hello:
                link.party.Hello(party_pb2.HelloRequest(session_id="S", source=3, world_size=3))
        link.close()
        assert info.value.code() == hello.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "certificate identity 'party-2' may not speak for party 1" in info.value.details()
        assert "may not speak for dealer (rank 3)" in hello.value.details()
        assert "rank 0 refused Transfer" in caplog.text
        assert "'party-2' may not speak for party 1" in caplog.text
    finally:
        server.abort("teardown")


def test_a_server_presenting_another_ranks_identity_fails_the_barrier(tmp_path):
    certs = write_job_certs(tmp_path, 2)
    honest = GrpcCommunicator(0, 2, session_id="S", tls=load_identity(certs[0]))
    # listens where party 1 should be, but holds the dealer's certificate
    impostor = GrpcCommunicator(1, 2, session_id="S", tls=load_identity(certs[2]))
    try:
        with pytest.raises(PeerTimeoutError, match=r"not ready: party 1 at 127\.0\.0\.1"):
            honest.connect({1: f"127.0.0.1:{impostor.port}"}, timeout_s=1.5)
    finally:
        honest.abort("teardown")
        impostor.abort("teardown")


def test_job_certificates_pass_inspection_and_bad_ones_are_explained(tmp_path):
    certs = write_job_certs(tmp_path / "job", 2)
    stranger = write_job_certs(tmp_path / "other", 2)
    assert inspect_identity(certs[1], "party-1") == []
    assert certs[1].key.stat().st_mode & 0o077 == 0
    wrong_name = inspect_identity(certs[1], "party-0")
    assert any("names ['party-1'] but this rank is 'party-0'" in p for p in wrong_name)
    mixed = type(certs[1])(certs[1].ca, stranger[1].cert, certs[1].key)
    problems = inspect_identity(mixed, "party-1")
    assert any("not signed by the CA" in p for p in problems)
    assert any("is not the private key of" in p for p in problems)


def test_a_full_exchange_works_over_mutual_tls(tmp_path):
    certs = write_job_certs(tmp_path, 1)
    comms = [GrpcCommunicator(r, 1, session_id="S", tls=load_identity(certs[r])) for r in (0, 1)]
    try:
        run_threads(
            {
                c.rank: (lambda c=c: c.connect({1 - c.rank: f"127.0.0.1:{comms[1 - c.rank].port}"}))
                for c in comms
            }
        )
        out = run_threads(
            {
                c.rank: (lambda c=c: c.exchange({1 - c.rank: np.full(3, c.rank)}, [1 - c.rank]))
                for c in comms
            }
        )
        assert int(out[0][1][0]) == 1 and int(out[1][0][0]) == 0
    finally:
        for comm in comms:
            comm.abort("teardown")


def test_job_identities_live_in_memory_and_hold_no_ca_key(tmp_path, monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from crypten_lite.transport.grpc import tls as tls_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tls_module, "_write", lambda *a, **k: pytest.fail("wrote a file"))
    ranks, clients = tls_module.job_identities(2, 2)
    assert sorted(ranks) == [0, 1, 2] and sorted(clients) == ["client-0", "client-1"]
    assert list(tmp_path.iterdir()) == []
    ca = x509.load_pem_x509_certificate(ranks[0].ca_pem)
    ca_public = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = set()
    for identity in [*ranks.values(), *clients.values()]:
        cert = x509.load_pem_x509_certificate(identity.cert_pem)
        cert.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key(identity.key_pem, password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert public != ca_public  # nobody gets the CA key
        keys.add(identity.key_pem)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc < timedelta(days=2)
    assert len(keys) == 5


def test_written_keys_refuse_symlinks_existing_files_and_open_directories(tmp_path):
    import os
    import stat

    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    out = tmp_path / "certs"
    out.mkdir(mode=0o700)
    (out / "dealer.key").symlink_to(target)
    with pytest.raises(TlsSetupError, match=r"dealer\.key: it is a symbolic link"):
        write_job_certs(out, 1)
    with pytest.raises(TlsSetupError, match="symbolic link"):
        write_job_certs(out, 1, force=True)
    assert target.read_bytes() == b"keep"

    previous = os.umask(0o002)
    try:
        fresh = write_job_certs(tmp_path / "a" / "b", 1)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE(fresh[0].key.stat().st_mode) == 0o600
    with pytest.raises(TlsSetupError, match="refusing to overwrite"):
        write_job_certs(tmp_path / "a" / "b", 1)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o775)
    with pytest.raises(TlsSetupError, match="group or others can write"):
        write_job_certs(open_dir, 1)
