"""Party side of every provider: draw shares from the stream shared with the dealer, and (on
the last party only) obtain the corrections for the derived components.

Requests are issued when a protocol asks for randomness and the corrections are collected
lazily, the first time a derived share is read, so the dealer's round trip overlaps the
protocol's own communication round instead of adding one. A large reply comes in parts
(``engine.reply_parts``) and a read waits only for the part holding its component, so a
protocol's first level runs while the last level's randomness is still in flight. Pending
requests are settled in the order they were made, which is the order the dealer answers them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque

import numpy as np
import numpy.typing as npt

from crypten_lite.providers.engine import layout_of, reply_parts
from crypten_lite.providers.kinds import Params
from crypten_lite.ring.prg import AesCtrPrg

__all__ = ["CorrectionSource", "Correlation", "Provider"]

U64 = npt.NDArray[np.uint64]


class CorrectionSource(ABC):
    """Where the last party's derived shares come from (the dealer rank, or a local engine)."""

    @abstractmethod
    def request(self, kind: str, params: Params) -> None:
        """Start producing the corrections of one request (non-blocking where possible)."""

    @abstractmethod
    def collect_part(self, kind: str, params: Params, part: int) -> dict[str, U64]:
        """Part ``part`` (``engine.reply_parts``) of the oldest outstanding request's
        corrections (must be ``(kind, params)``); parts are collected in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Tell the source no more requests will come."""


class Correlation:
    """One party's shares of one correlated-randomness request, by component name."""

    def __init__(self, provider: Provider, kind: str, params: Params, shares: dict[str, U64]):
        self._provider = provider
        self.kind = kind
        self.params = params
        self._shares = shares
        self._parts = len(reply_parts(kind, params)) if provider.source is not None else 0
        self.next_part = 0
        self.settled = self._parts == 0

    def has(self, name: str) -> bool:
        return name in self._shares

    def settle_part(self, corrections: dict[str, U64]) -> None:
        self._shares.update(corrections)
        self.next_part += 1
        self.settled = self.next_part == self._parts

    def __getitem__(self, name: str) -> U64:
        if name not in self._shares:
            self._provider.settle_through(self, name)
        return self._shares[name]

    def __repr__(self) -> str:
        return f"Correlation(kind={self.kind!r}, components={sorted(self._shares)}, <hidden>)"


class Provider:
    """Correlated randomness for one party (see module docstring)."""

    name = "provider"

    def __init__(
        self, rank: int, world_size: int, stream: AesCtrPrg, source: CorrectionSource | None
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        self._stream = stream
        self.source = source  # set on the last party only
        self._pending: deque[Correlation] = deque()
        self.requests = 0
        #: when a list, every request is appended to it (a dry run recording a plan)
        self.log: list[tuple[str, Params]] | None = None

    @property
    def is_corrected_party(self) -> bool:
        return self.rank == self.world_size - 1

    def get(self, kind: str, params: Params) -> Correlation:
        """Shares of a fresh ``kind`` correlation; see ``providers.kinds`` for the kinds."""
        free, derived = layout_of(kind, params)
        shares = {c.name: self._stream.ring_elements(c.shape) for c in free}
        self.requests += 1
        if self.log is not None:
            self.log.append((kind, params))
        if not self.is_corrected_party:
            shares.update({c.name: self._stream.ring_elements(c.shape) for c in derived})
            return Correlation(self, kind, params, shares)
        correlation = Correlation(self, kind, params, shares)
        if self.source is not None:
            self.source.request(kind, params)
            self._pending.append(correlation)
        return correlation

    def settle_through(self, target: Correlation, name: str) -> None:
        """Collect the corrections of every pending request older than ``target``, then
        ``target``'s parts up to the one holding ``name``."""
        source = self.source
        if source is None:
            raise KeyError("correlation component missing")  # pragma: no cover - invariant
        while self._pending:
            oldest = self._pending[0]
            while not oldest.settled and not (oldest is target and oldest.has(name)):
                part = source.collect_part(oldest.kind, oldest.params, oldest.next_part)
                oldest.settle_part(part)
            if oldest.settled:
                self._pending.popleft()
            if oldest is target:
                return

    def close(self) -> None:
        """Settle outstanding requests and release the source."""
        source = self.source
        if source is not None:
            while self._pending:
                oldest = self._pending.popleft()
                while not oldest.settled:
                    oldest.settle_part(
                        source.collect_part(oldest.kind, oldest.params, oldest.next_part)
                    )
            source.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, requests={self.requests})"
