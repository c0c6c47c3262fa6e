"""Ask a peer whether it is up and in the same job — for ``crypten-lite doctor``."""

from __future__ import annotations

import grpc

from crypten_lite._proto import health_pb2, party_pb2
from crypten_lite.errors import CommunicationError
from crypten_lite.transport.grpc.channels import describe_rpc_error, open_link
from crypten_lite.transport.grpc.options import PARTY_SERVICE, GrpcOptions
from crypten_lite.transport.grpc.tls import TlsIdentity, identity_name

__all__ = ["probe_peer"]


def probe_peer(
    address: str,
    peer: int,
    *,
    rank: int,
    world_size: int,
    session_id: str,
    tls: TlsIdentity | None,
    timeout_s: float = 5.0,
) -> str:
    """Health check and ``Hello`` against the rank listening at ``address``; returns what it
    answered, or raises :class:`CommunicationError` saying what went wrong."""
    link = open_link(peer, world_size, address, tls, GrpcOptions())
    try:
        health = link.health.Check(
            health_pb2.HealthCheckRequest(service=PARTY_SERVICE), timeout=timeout_s
        )
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
        reply = link.party.Hello(
            party_pb2.HelloRequest(session_id=session_id, source=rank, world_size=world_size),
            timeout=timeout_s,
        )
    except grpc.RpcError as err:
        detail = describe_rpc_error(err)
        hint = ""
        if "handshake" in detail.lower() or "ssl" in detail.lower():
            hint = (
                f" — the TLS handshake failed: the peer's certificate must be signed by this "
                f"job's CA and name {identity_name(peer, world_size)!r}, and it must accept ours"
            )
        raise CommunicationError(f"{detail}{hint}") from err
    finally:
        link.close()
    if reply.rank != peer:
        raise CommunicationError(f"it answers as rank {reply.rank}, not {peer}")
    return f"{status}, session {reply.session_id!r}, world size {reply.world_size}"
