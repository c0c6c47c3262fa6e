"""gRPC transport: the communicator between processes, the edge gateway for edge clients,
mutual TLS certificates, and the wire format (``crypten_lite/_proto``). The only package that
imports ``grpc``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crypten_lite.transport.grpc.communicator import GrpcCommunicator
    from crypten_lite.transport.grpc.edge_stub import EdgeStub
    from crypten_lite.transport.grpc.edge_wire import encode_submit_request
    from crypten_lite.transport.grpc.gateway import EdgeGateway, issue_token, verify_token
    from crypten_lite.transport.grpc.options import EDGE_SERVICE, PARTY_SERVICE, GrpcOptions
    from crypten_lite.transport.grpc.secagg_wire import (
        MAX_NEIGHBOURS,
        encode_advertise,
        encode_masked_upload,
        encode_share_keys,
        encode_state_reply,
        encode_state_request,
        encode_unmask,
    )
    from crypten_lite.transport.grpc.tls import (
        CertPaths,
        TlsIdentity,
        client_identity,
        client_of_identity,
        identity_name,
        load_identity,
        write_client_certs,
        write_job_certs,
    )

__all__ = [
    "EDGE_SERVICE",
    "MAX_NEIGHBOURS",
    "PARTY_SERVICE",
    "CertPaths",
    "EdgeGateway",
    "EdgeStub",
    "GrpcCommunicator",
    "GrpcOptions",
    "TlsIdentity",
    "client_identity",
    "client_of_identity",
    "encode_advertise",
    "encode_masked_upload",
    "encode_share_keys",
    "encode_state_reply",
    "encode_state_request",
    "encode_submit_request",
    "encode_unmask",
    "identity_name",
    "issue_token",
    "load_identity",
    "verify_token",
    "write_client_certs",
    "write_job_certs",
]

#: the submodule of each public name, imported on first use (PEP 562): an edge client that
#: needs the gateway stub and TLS does not load the party communicator
_LAZY = {
    "GrpcCommunicator": "communicator",
    "encode_submit_request": "edge_wire",
    "EdgeStub": "edge_stub",
    **dict.fromkeys(("EdgeGateway", "issue_token", "verify_token"), "gateway"),
    **dict.fromkeys(("EDGE_SERVICE", "PARTY_SERVICE", "GrpcOptions"), "options"),
    **dict.fromkeys(
        (
            "MAX_NEIGHBOURS",
            "encode_advertise",
            "encode_masked_upload",
            "encode_share_keys",
            "encode_state_reply",
            "encode_state_request",
            "encode_unmask",
        ),
        "secagg_wire",
    ),
    **dict.fromkeys(
        (
            "CertPaths",
            "TlsIdentity",
            "client_identity",
            "client_of_identity",
            "identity_name",
            "load_identity",
            "write_client_certs",
            "write_job_certs",
        ),
        "tls",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
