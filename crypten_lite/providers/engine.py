"""The dealer's computation, shared by the trusted dealer rank and the insecure local dealer.

For a request, every party ``i`` draws its share of each *free* component from the stream it
shares with the dealer, and parties ``0 .. N-2`` also draw their shares of each *derived*
component. The dealer replays all those draws, so it knows the free values (sum or XOR of the
draws), computes the derived values, and the last party's derived shares are the corrections
``value - sum(other shares)`` (or XOR). Draw order: free components, then derived ones, in
the order the kind lists them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import ProtocolError
from crypten_lite.providers.kinds import KINDS, Component, Params
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.sharing import ARITHMETIC, combine

__all__ = ["MAX_ELEMENTS", "DealerEngine", "layout_of", "split_off"]

U64 = npt.NDArray[np.uint64]
MAX_ELEMENTS = 1 << 28  # per component; a request above this is refused as malformed


def layout_of(kind: str, params: Params) -> tuple[list[Component], list[Component]]:
    """Free and derived components of a request, validated."""
    if kind not in KINDS:
        raise ProtocolError(f"unknown correlated-randomness kind {kind!r}")
    try:
        free, derived = KINDS[kind].layout(params)
    except (IndexError, ValueError, TypeError) as err:
        raise ProtocolError(f"malformed parameters for kind {kind!r}") from err
    for comp in (*free, *derived):
        if int(np.prod(comp.shape, dtype=np.int64)) > MAX_ELEMENTS:
            raise ProtocolError(f"request for kind {kind!r} exceeds {MAX_ELEMENTS} elements")
    return free, derived


def split_off(form: str, value: U64, others: list[U64]) -> U64:
    """The share that completes ``others`` to ``value``, computed in ``value``'s buffer
    (callers pass an array they own)."""
    out = value
    for share in others:
        if form == ARITHMETIC:
            np.subtract(out, share, out=out)
        else:
            np.bitwise_xor(out, share, out=out)
    return out


class DealerEngine:
    """Replays every party's dealer stream and computes the last party's corrections."""

    def __init__(self, party_streams: list[AesCtrPrg], private_stream: AesCtrPrg) -> None:
        self._streams = party_streams
        self._private = private_stream

    def corrections(self, kind: str, params: Params) -> dict[str, U64]:
        """The last party's shares of the derived components (the only data sent)."""
        free, derived = layout_of(kind, params)
        n = len(self._streams)
        free_draws = [{c.name: s.ring_elements(c.shape) for c in free} for s in self._streams]
        derived_draws = [
            {c.name: s.ring_elements(c.shape) for c in derived} for s in self._streams[: n - 1]
        ]
        values = {c.name: combine(c.form, [d[c.name] for d in free_draws]) for c in free}
        derived_values = KINDS[kind].derive(values, params, self._private)
        # derive may return a free value as is, or one array under two names: copy those
        # before the corrections are computed in place
        uses = Counter(id(a) for a in (*values.values(), *derived_values.values()))
        out = {}
        for c in derived:
            value = derived_values[c.name]
            own = value.shape == c.shape and value.dtype == np.uint64 and value.flags.writeable
            if not own or uses[id(value)] > 1:
                value = np.broadcast_to(value, c.shape).astype(np.uint64)
            out[c.name] = split_off(c.form, value, [d[c.name] for d in derived_draws])
        return out
