"""The edge contract: everything an edge client and the servers must agree on, independent
of the wire and below both the client SDK (:mod:`crypten_lite.client`) and the services
(:mod:`crypten_lite.fl`), so the two sides cannot drift apart.

- :mod:`.messages`: round info, update shares, inference queries and replies, refusals, the
  handler protocols a server implements, ring widths and quantization specs;
- :mod:`.encode`: update encodings (int8/int16/fixed16 with clipping) and their decoding;
- :mod:`.shares`: the seed-compressed additive split and the seed expansion (AES-CTR).
"""

from __future__ import annotations

from crypten_lite.edge.encode import (
    check_capacity,
    decode_aggregate,
    encode_update,
    max_clients,
    quant_params,
)
from crypten_lite.edge.messages import (
    NONCE_SIZE,
    RING_BITS,
    SCHEMES,
    SEED_SIZE,
    EdgeHandler,
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
    ring_dtype,
)
from crypten_lite.edge.shares import expand_seed, split_update

__all__ = [
    "NONCE_SIZE",
    "RING_BITS",
    "SCHEMES",
    "SEED_SIZE",
    "EdgeHandler",
    "EdgeRefusal",
    "EdgeRequestError",
    "InferenceQuery",
    "InferenceShare",
    "QuantSpec",
    "RoundInfo",
    "RoundState",
    "UpdateShare",
    "check_capacity",
    "decode_aggregate",
    "encode_update",
    "expand_seed",
    "max_clients",
    "quant_params",
    "ring_dtype",
    "split_update",
]
