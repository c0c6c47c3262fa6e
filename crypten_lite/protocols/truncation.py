"""Division of an arithmetic sharing by ``2^bits`` (fixed-point rescaling).

``local`` (2 parties; SecureML, Mohassel & Zhang 2017): party 0 shifts its share, party 1
negates, shifts and negates. 0 rounds, 0 bytes. Result within 1 unit of ``x / 2^bits`` except
with probability about ``|x| / 2^63`` per element (then it is wildly wrong); keep ``|x| < 2^40``.

``dealer`` (any N; the wrap of a masked opening is read off the mask's top bit):
1. dealer gives ``[r]``, ``[r >> bits]`` (logical) and ``[msb(r)]`` for uniform ``r``;
2. ``x' = x + 2^62`` (in ``[0, 2^63)`` when ``|x| < 2^62``); open ``c = x' + r``;
3. ``x' = c - r + 2^64 w`` with ``w = msb(r) (1 - msb(c))``, so
   ``[x' >> bits] = (c >> bits) - [r >> bits] + 2^(64-bits) (1 - msb(c)) [msb(r)]``;
4. subtract ``2^(62-bits)``.
1 round; ``(N-1) n`` ring elements sent per party. Error in ``{0, +1}`` units, never more, for
every ``|x| < 2^62``: no probabilistic failure (unlike CrypTen's 3-party truncation).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.errors import ProtocolError
from crypten_lite.protocols.context import ProtocolContext, open_arith

__all__ = ["truncate", "truncate_dealer", "truncate_local", "truncation_method"]

U64 = npt.NDArray[np.uint64]
_BIAS_BITS = 62


def truncation_method(ctx: ProtocolContext) -> str:
    """The method in force: the configured one, ``auto`` resolved by party count."""
    method = ctx.config.truncation
    if method == "auto":
        return "local" if ctx.world_size == 2 else "dealer"
    if method == "local" and ctx.world_size != 2:
        raise ProtocolError(f"local truncation needs exactly 2 parties, not {ctx.world_size}")
    return method


def truncate_local(ctx: ProtocolContext, x: U64, bits: int) -> U64:
    """2-party local truncation (see module doc). 0 rounds."""
    if ctx.rank == 0:
        return ring.arshift(x, bits)
    return ring.neg(ring.arshift(ring.neg(x), bits))


def truncate_dealer(ctx: ProtocolContext, x: U64, bits: int) -> U64:
    """Dealer-assisted truncation exact to one unit (see module doc). 1 round."""
    if not 1 <= bits < _BIAS_BITS:
        raise ProtocolError(f"truncation bits must lie in [1, {_BIAS_BITS - 1}], got {bits}")
    pair = ctx.provider.get("trunc", (x.shape, (bits,)))
    masked = x + pair["r"]
    if ctx.rank == 0:
        masked = masked + np.uint64(1 << _BIAS_BITS)
    (c,) = open_arith(ctx, masked)
    c_top_clear = np.uint64(1) - (c >> np.uint64(63))  # public 1 - msb(c)
    wrap = (pair["r_msb"] * c_top_clear) << np.uint64(64 - bits)
    y: U64 = wrap - pair["r_shifted"]
    if ctx.rank == 0:
        y = y + (c >> np.uint64(bits)) - np.uint64(1 << (_BIAS_BITS - bits))
    return y


def truncate(ctx: ProtocolContext, x: U64, bits: int) -> U64:
    """``[x / 2^bits]`` by the session's method."""
    if bits == 0:
        return x
    if truncation_method(ctx) == "local":
        return truncate_local(ctx, x, bits)
    return truncate_dealer(ctx, x, bits)
