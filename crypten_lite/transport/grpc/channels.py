"""Client side plumbing shared by the communicator and the doctor: one channel (and stubs) per
peer, and the wording of gRPC failures in error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from crypten_lite._proto import health_pb2_grpc, party_pb2, party_pb2_grpc
from crypten_lite.transport.grpc.options import PARTY_SERVICE, GrpcOptions
from crypten_lite.transport.grpc.tls import TlsIdentity, identity_name

__all__ = [
    "PeerLink",
    "channel_credentials",
    "describe_rpc_error",
    "open_link",
    "server_credentials",
]


@dataclass
class PeerLink:
    """The channel to one peer rank and the stubs on it."""

    rank: int
    address: str
    channel: grpc.Channel
    party: Any = field(repr=False)
    health: Any = field(repr=False)
    transfer: Any = field(repr=False)

    def close(self) -> None:
        self.channel.close()


def open_link(
    rank: int, world_size: int, address: str, tls: TlsIdentity | None, options: GrpcOptions
) -> PeerLink:
    """A channel to ``rank`` at ``address``; with TLS the server must present ``rank``'s
    certificate identity (the channel pins it), and this side presents its own certificate."""
    if tls is None:
        channel = grpc.insecure_channel(address, options=options.channel_options(None))
    else:
        channel = grpc.secure_channel(
            address,
            channel_credentials(tls),
            options=options.channel_options(identity_name(rank, world_size)),
        )
    transfer = channel.stream_unary(
        f"/{PARTY_SERVICE}/Transfer",
        response_deserializer=party_pb2.TransferSummary.FromString,
    )
    return PeerLink(
        rank,
        address,
        channel,
        party_pb2_grpc.PartyStub(channel),
        health_pb2_grpc.HealthStub(channel),
        transfer,
    )


def channel_credentials(tls: TlsIdentity) -> grpc.ChannelCredentials:
    """Client credentials: this side's certificate, and the job's CA to verify the server."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
    )


def server_credentials(tls: TlsIdentity) -> grpc.ServerCredentials:
    """Server credentials that demand and verify a client certificate from the job's CA."""
    return grpc.ssl_server_credentials(
        [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem, require_client_auth=True
    )


def describe_rpc_error(err: grpc.RpcError) -> str:
    """``CODE: details`` of a failed call, bounded in length."""
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    name = code.name if code is not None else "ERROR"
    return f"{name}: {str(details or '')[:300]}"
