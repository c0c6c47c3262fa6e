"""Fixtures of the edge-gateway tests: a job CA with two ranks and eight edge clients, and
rank 0's gRPC server (mutual TLS) for one test."""

from __future__ import annotations

import pytest

from crypten_lite.transport.grpc import (
    GrpcCommunicator,
    load_identity,
    write_client_certs,
    write_job_certs,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs")
    ranks = write_job_certs(out, 2)
    ca = ((out / "ca.pem").read_bytes(), (out / "ca.key").read_bytes())
    clients = write_client_certs(out, 8, ca=ca)
    return ranks, clients


@pytest.fixture
def server(certs):
    ranks, _ = certs
    comm = GrpcCommunicator(0, 2, session_id="gw", tls=load_identity(ranks[0]), timeout_s=5)
    yield comm
    comm.abort("test over")
