"""The dealer's computation, shared by the trusted dealer rank and the insecure local dealer.

For a request, every party ``i`` draws its share of each *free* component from the stream it
shares with the dealer, and parties ``0 .. N-2`` also draw their shares of each *derived*
component. The dealer replays all those draws, so it knows the free values (sum or XOR of the
draws), computes the derived values, and the last party's derived shares are the corrections
``value - sum(other shares)`` (or XOR). Draw order: free components, then derived ones, in
the order the kind lists them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import ProtocolError
from crypten_lite.providers.kinds import KINDS, Component, Params
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.sharing import ARITHMETIC, combine

__all__ = [
    "MAX_ELEMENTS",
    "REPLY_PART_WORDS",
    "DealerEngine",
    "Layout",
    "layout_of",
    "reply_parts",
    "split_components",
]

U64 = npt.NDArray[np.uint64]
MAX_ELEMENTS = 1 << 28  # per component; a request above this is refused as malformed
#: A dealer reply is cut into messages at component boundaries once a message holds this
#: many words (1 MiB): party N-1 starts on the first components while the rest are in flight.
REPLY_PART_WORDS = 1 << 17


Layout = tuple[tuple[Component, ...], tuple[Component, ...]]


def layout_of(kind: str, params: Params) -> Layout:
    """Free and derived components of a request, validated (cached per request shape: a
    provider, the dealer and each reply part ask for the same layout)."""
    if kind not in KINDS:
        raise ProtocolError(f"unknown correlated-randomness kind {kind!r}")
    return _layout(kind, params)


@functools.lru_cache(maxsize=512)
def _layout(kind: str, params: Params) -> Layout:
    try:
        free, derived = KINDS[kind].layout(params)
    except (IndexError, ValueError, TypeError) as err:
        raise ProtocolError(f"malformed parameters for kind {kind!r}") from err
    for comp in (*free, *derived):
        if int(np.prod(comp.shape, dtype=np.int64)) > MAX_ELEMENTS:
            raise ProtocolError(f"request for kind {kind!r} exceeds {MAX_ELEMENTS} elements")
    return tuple(free), tuple(derived)


@functools.lru_cache(maxsize=512)
def reply_parts(kind: str, params: Params) -> tuple[tuple[Component, ...], ...]:
    """The derived components of a reply, grouped into the messages that carry them:
    consecutive components, a message closed once it holds ``REPLY_PART_WORDS`` words (the
    same rule on the dealer and on party N-1, from the request alone)."""
    _, derived = layout_of(kind, params)
    parts: list[list[Component]] = [[]]
    words = 0
    for comp in derived:
        if words >= REPLY_PART_WORDS:
            parts.append([])
            words = 0
        parts[-1].append(comp)
        words += _size(comp)
    return tuple(tuple(part) for part in parts) if derived else ()


def _size(comp: Component) -> int:
    return int(np.prod(comp.shape, dtype=np.int64))


def split_components(kind: str, components: Sequence[Component], flat: U64) -> dict[str, U64]:
    """Views of a flat uint64 reply as ``components`` (in order), or :class:`ProtocolError`
    if its size or dtype does not match them."""
    sizes = [_size(c) for c in components]
    if flat.dtype != np.uint64 or flat.ndim != 1 or flat.size != sum(sizes):
        raise ProtocolError(f"dealer reply for {kind!r} has the wrong size or dtype")
    out: dict[str, U64] = {}
    start = 0
    for comp, size in zip(components, sizes, strict=True):
        out[comp.name] = flat[start : start + size].reshape(comp.shape)
        start += size
    return out


class DealerEngine:
    """Replays every party's dealer stream and computes the last party's corrections."""

    def __init__(self, party_streams: list[AesCtrPrg], private_stream: AesCtrPrg) -> None:
        self._streams = party_streams
        self._private = private_stream

    def corrections(self, kind: str, params: Params) -> dict[str, U64]:
        """The last party's shares of the derived components (the only data sent), as views
        of :meth:`corrections_flat`."""
        _, derived = layout_of(kind, params)
        return split_components(kind, derived, self.corrections_flat(kind, params))

    def corrections_flat(self, kind: str, params: Params) -> U64:
        """The corrections of every derived component, concatenated in layout order (the
        dealer's reply as one array)."""
        parts = list(self.corrections_parts(kind, params))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def corrections_parts(self, kind: str, params: Params) -> Iterator[U64]:
        """The reply in the messages of :func:`reply_parts`, each computed when asked for
        (the dealer sends the first part before it computes the next); every party's draws
        are taken up front, so the streams advance exactly as on the parties."""
        free, derived = layout_of(kind, params)
        n = len(self._streams)
        free_draws = [{c.name: s.ring_elements(c.shape) for c in free} for s in self._streams]
        derived_draws = [
            {c.name: s.ring_elements(c.shape) for c in derived} for s in self._streams[: n - 1]
        ]
        values = {c.name: combine(c.form, [d[c.name] for d in free_draws]) for c in free}
        return self._parts(kind, params, values, derived_draws)

    def _parts(
        self, kind: str, params: Params, values: dict[str, U64], draws: list[dict[str, U64]]
    ) -> Iterator[U64]:
        spec = KINDS[kind]
        parts = reply_parts(kind, params)
        if spec.corrections is not None and parts:
            fused = spec.corrections(values, params, self._private, draws, _names(parts[0]))
            if fused is not None:
                yield fused
                for part in parts[1:]:
                    out = spec.corrections(values, params, self._private, draws, _names(part))
                    if out is None:
                        raise ProtocolError(f"kind {kind!r} computed only part of a reply")
                    yield out
                return
        derived_values = spec.derive(values, params, self._private)
        for part in parts:
            sizes = [_size(c) for c in part]
            flat = np.empty(sum(sizes), dtype=np.uint64)
            start = 0
            for c, size in zip(part, sizes, strict=True):
                target = flat[start : start + size].reshape(c.shape)
                value = np.broadcast_to(np.asarray(derived_values[c.name], np.uint64), c.shape)
                _complete(c.form, value, [d[c.name] for d in draws], target)
                start += size
            yield flat


def _names(part: Sequence[Component]) -> tuple[str, ...]:
    return tuple(c.name for c in part)


def _complete(form: str, value: U64, others: list[U64], out: U64) -> None:
    """``out = value - sum(others)`` (or XOR), without touching ``value``."""
    if not others:
        np.copyto(out, value)
        return
    combine_op = np.subtract if form == ARITHMETIC else np.bitwise_xor
    combine_op(value, others[0], out=out)
    for share in others[1:]:
        combine_op(out, share, out=out)
