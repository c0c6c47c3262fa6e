"""gRPC transport: the communicator between processes, mutual TLS certificates, and the
wire format (``crypten_lite/_proto``). The only package that imports ``grpc``."""

from __future__ import annotations

from crypten_lite.transport.grpc.communicator import GrpcCommunicator
from crypten_lite.transport.grpc.options import PARTY_SERVICE, GrpcOptions
from crypten_lite.transport.grpc.tls import (
    CertPaths,
    TlsIdentity,
    identity_name,
    load_identity,
    write_job_certs,
)

__all__ = [
    "PARTY_SERVICE",
    "CertPaths",
    "GrpcCommunicator",
    "GrpcOptions",
    "TlsIdentity",
    "identity_name",
    "load_identity",
    "write_job_certs",
]
