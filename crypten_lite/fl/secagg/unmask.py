"""The server's last step: rebuild the secrets it is entitled to and remove the masks.

For every survivor ``v`` (``U3``) the self-mask seed ``b_v`` is rebuilt from ``t`` shares and
checked against ``v``'s commitment; for every client that shared keys but sent no masked
input (``U2 \\ U3``) the mask key ``s_v`` is rebuilt and checked against its advertised public
key, and its pairwise masks with the survivors are regenerated. Then

    sum = Σ_{u∈U3} y_u - Σ_{v∈U3} PRG(b_v) - Σ_{v∈U2\\U3} Σ_{u∈U3∩N(v)} sign(u, v)·PRG(s_uv)

mod ``2^ring_bits``: the survivors' pairwise masks cancel among themselves. With more than
``t`` shares, a combination that fails the check is skipped (a neighbour sent a bad share)
and the next is tried (at most :data:`MAX_TRIES`). Cost: ``|U3| + d·|U2 \\ U3|`` keystreams of
``m·ring_bits/8`` bytes, ``|U2|`` interpolations (``O(t^2)`` field operations each), one X25519
exchange per dropped client and live neighbour.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.secagg_crypto import (
    commit_seed,
    mask_sign,
    pair_seed,
    private_key,
    public_key_of,
)
from crypten_lite.edge.secagg_messages import SecAggStage
from crypten_lite.edge.shamir import ShamirError, reconstruct
from crypten_lite.edge.shares import expand_seed
from crypten_lite.errors import ProtocolError
from crypten_lite.fl.secagg.state import Participant, SecAggRound

__all__ = ["MAX_TRIES", "UnmaskError", "rebuild_secret", "unmasked_sum"]

U64 = npt.NDArray[np.uint64]
#: share combinations tried per secret before giving up on bad shares.
MAX_TRIES = 64


class UnmaskError(ProtocolError):
    """A secret the server needs could not be rebuilt (too few or bad shares)."""


def rebuild_secret(
    points: list[tuple[int, int]], threshold: int, check: Callable[[bytes], bool], what: str
) -> bytes:
    """The secret behind ``points`` that passes ``check``; :class:`UnmaskError` naming
    ``what`` if fewer than ``threshold`` shares arrived or no combination checks out."""
    if len(points) < threshold:
        raise UnmaskError(
            f"{what}: {len(points)} of the {threshold} shares needed arrived (too many of its "
            "neighbours dropped before unmasking)"
        )
    for combo in itertools.islice(itertools.combinations(points, threshold), MAX_TRIES):
        try:
            secret = reconstruct(combo)
        except ShamirError:
            continue
        if check(secret):
            return secret
    raise UnmaskError(f"{what}: the shares do not rebuild the committed secret (bad shares)")


def _self_mask_seed(rnd: SecAggRound, v: Participant, context: bytes) -> bytes:
    return rebuild_secret(
        rnd.seed_points(v),
        rnd.threshold,
        lambda s: commit_seed(context, v.index, s) == v.commitment,
        f"the self mask of client {v.index}",
    )


def _mask_key(rnd: SecAggRound, v: Participant) -> bytes:
    return rebuild_secret(
        rnd.mask_key_points(v),
        rnd.threshold,
        lambda s: public_key_of(s) == v.mask_public,
        f"the mask key of dropped client {v.index}",
    )


def unmasked_sum(rnd: SecAggRound, context: bytes) -> U64:
    """The sum of the survivors' updates mod ``2^ring_bits`` (as ``uint64``); raises
    :class:`UnmaskError` if a needed secret cannot be rebuilt. Call after UNMASK closed."""
    m, bits = rnd.num_elements, rnd.ring_bits
    total = rnd.running_sum.copy()
    shared = rnd.in_set(SecAggStage.SHARE_KEYS)
    for v in shared:
        if v.masked:
            seed = _self_mask_seed(rnd, v, context)
            np.subtract(total, expand_seed(seed, m, bits), out=total, casting="unsafe")
    for v in shared:
        if v.masked:
            continue
        key = private_key(_mask_key(rnd, v))
        for u in v.shared:
            peer = rnd.by_index[u]
            if not peer.masked:
                continue
            mask = expand_seed(pair_seed(key, peer.mask_public, context, u, v.index), m, bits)
            if mask_sign(u, v.index) > 0:  # y_u holds +PRG(s_uv): take it out
                np.subtract(total, mask, out=total, casting="unsafe")
            else:
                np.add(total, mask, out=total, casting="unsafe")
    if bits == 32:
        np.bitwise_and(total, np.uint64(0xFFFFFFFF), out=total)
    return total
