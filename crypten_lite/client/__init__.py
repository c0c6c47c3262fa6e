"""The edge client SDK: what a phone or small device runs to take part in a job without being
an MPC party. Needs only numpy, grpcio and cryptography (and works with
``CRYPTEN_LITE_PURE=1``); imports nothing from the MPC layers.

- :class:`EdgeClient`: round info, update upload (quantize, share with seed compression,
  one request per server), private inference;
- :class:`SecAggClient` (imported on first use): single-server secure aggregation (SecAgg+);
- :func:`encode_update` / :func:`decode_aggregate` / :func:`max_clients`: the encodings;
- :func:`expand_seed` / :func:`split_update`: the sharing (servers rebuild seed shares with
  ``expand_seed``);
- :class:`ClientConfig` (``ClientConfig.from_environment()`` in launched client processes);
- :class:`GrpcServerLink` / :class:`DirectServerLink`: how a client reaches one server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crypten_lite.client.config import CLIENT_ENV, CLIENTS_ENV, ClientConfig
from crypten_lite.client.edge_client import EdgeClient, UploadReport
from crypten_lite.client.fedavg import pack_weighted_update
from crypten_lite.client.links import DirectServerLink, GrpcServerLink, ServerLink
from crypten_lite.edge.encode import (
    check_capacity,
    decode_aggregate,
    encode_update,
    max_clients,
    quant_params,
)
from crypten_lite.edge.shares import expand_seed, ring_dtype, split_update

if TYPE_CHECKING:
    from crypten_lite.client.secagg_client import (
        SecAggClient,
        SecAggProtocolError,
        SecAggReport,
        SecAggRoundFailed,
    )

#: loaded on first use: a multi-server client never pays for X25519, Shamir and AES-GCM
_LAZY = {"SecAggClient", "SecAggProtocolError", "SecAggReport", "SecAggRoundFailed"}

__all__ = [
    "CLIENTS_ENV",
    "CLIENT_ENV",
    "ClientConfig",
    "DirectServerLink",
    "EdgeClient",
    "GrpcServerLink",
    "SecAggClient",
    "SecAggProtocolError",
    "SecAggReport",
    "SecAggRoundFailed",
    "ServerLink",
    "UploadReport",
    "check_capacity",
    "decode_aggregate",
    "encode_update",
    "expand_seed",
    "max_clients",
    "pack_weighted_update",
    "quant_params",
    "ring_dtype",
    "split_update",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from crypten_lite.client import secagg_client

        return getattr(secagg_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
