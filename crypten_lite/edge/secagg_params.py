"""Security parameters of single-server secure aggregation and the neighbour graph.

**Graph** (SecAgg+, Bell et al., CCS 2020): the server shuffles the ``n`` clients that
advertised keys (a fresh random permutation per round) and connects each to the ``k/2``
clients before and after it on that cycle (a Harary graph: ``k``-regular, connected), or to
every other client (SecAgg, Bonawitz et al., CCS 2017). A client masks with, and Shamir-shares
its secrets among, its ``d`` neighbours only: per-client cost ``O(d·m)``, server cost per
dropped client ``O(d·m)``.

**Threshold** ``t`` (shares needed to rebuild a secret), with ``d/2 < t <= d``:

* the server learns the sum of the surviving clients' updates and nothing else, as long as
  it follows the protocol and fewer than ``t`` of any client's neighbours collude with it: a
  client's update is hidden by its self mask ``b_u`` and its pairwise masks; recovering it
  needs both ``b_u`` (``t`` shares) and the mask key ``s_u`` (``t`` shares) or every
  neighbour's key. Clients never reveal both shares for one neighbour, and ``t > d/2`` keeps
  a server that tells clients different stories from collecting ``t`` of each kind from
  honest clients;
* a round completes while every surviving client keeps at least ``t`` live neighbours at
  the unmasking stage; below that it fails on every client with the stage and the client
  that could not be recovered named (nothing is revealed: the server never holds enough
  shares);
* a client's privacy against ``c`` colluding clients plus the server holds if fewer than
  ``t`` of them are its neighbours; with ``auto`` (``k = 2·ceil(log2 n)``, ``t = ceil(0.6k)``)
  and ``n = 500``: ``k = 18``, ``t = 11``, so 8 of a client's 18 neighbours may drop.

Not covered (as in SecAgg's semi-honest variant and Flower's SecAgg+): a server that
actively lies about the survivor sets to different clients beyond what ``t > d/2`` stops
(SecAgg's signed consistency round is not implemented), and input validity (see
``crypten_lite.fl.secagg``: the aggregate is clipped to the honest range; the multi-server
mode's MPC range check is the robust option).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from crypten_lite.errors import ConfigError
from crypten_lite.ring.prg import AesCtrPrg, new_seed

__all__ = ["Neighbours", "SecAggParams", "neighbour_graph"]

#: ``"auto"``: all pairs up to 16 clients, else ``2·ceil(log2 n)`` neighbours; ``"all"``:
#: all pairs; an even int ``k``: a ``k``-regular graph (all pairs when ``k >= n - 1``).
Neighbours = int | Literal["auto", "all"]
_AUTO_ALL_PAIRS = 16


@dataclass(frozen=True)
class SecAggParams:
    """``neighbours``: see :data:`Neighbours`. ``threshold``: an int ``t``, or a fraction
    ``f`` in ``(0.5, 1]`` giving ``t = max(floor(d/2) + 1, ceil(f·d))`` for degree ``d``."""

    neighbours: Neighbours = "auto"
    threshold: int | float = 0.6

    def __post_init__(self) -> None:
        k = self.neighbours
        if isinstance(k, bool) or not (k in ("auto", "all") or isinstance(k, int)):
            raise ConfigError(f"neighbours must be 'auto', 'all' or an even int, got {k!r}")
        if isinstance(k, int) and (k < 2 or k % 2):
            raise ConfigError(f"neighbours must be an even int >= 2, got {k}")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise ConfigError(f"threshold must be an int or a fraction, got {t!r}")
        if isinstance(t, float) and not 0.5 < t <= 1.0:
            raise ConfigError(f"a fractional threshold must lie in (0.5, 1], got {t}")
        if isinstance(t, int) and t < 2:
            raise ConfigError(f"threshold must be >= 2, got {t}")
        if isinstance(k, int) and isinstance(t, int) and not k < 2 * t <= 2 * k:
            raise ConfigError(f"threshold {t} must satisfy neighbours/2 < t <= neighbours ({k})")

    def degree(self, num_clients: int) -> int:
        """The number of neighbours each of ``num_clients`` clients gets."""
        n = num_clients
        k = self.neighbours
        if k == "auto":
            k = n - 1 if n <= _AUTO_ALL_PAIRS else 2 * math.ceil(math.log2(n))
        elif k == "all":
            k = n - 1
        return min(int(k), n - 1)

    def threshold_for(self, degree: int) -> int:
        """``t`` for a graph of this degree; ConfigError if it cannot satisfy ``d/2 < t <= d``."""
        t = self.threshold
        t = max(degree // 2 + 1, math.ceil(t * degree)) if isinstance(t, float) else t
        if not degree < 2 * t <= 2 * degree:
            raise ConfigError(
                f"threshold {t} does not fit {degree} neighbours (need neighbours/2 < t <= "
                "neighbours): too few clients advertised keys"
            )
        return int(t)


def neighbour_graph(indices: list[int], degree: int) -> dict[int, tuple[int, ...]]:
    """Each index's neighbours (sorted): all pairs when ``degree >= n - 1``, else a Harary
    cycle of even ``degree`` over a fresh random permutation."""
    n = len(indices)
    if len(set(indices)) != n:
        raise ValueError("client indices must be distinct")
    if degree >= n - 1:
        return {u: tuple(v for v in indices if v != u) for u in indices}
    if degree < 2 or degree % 2:
        raise ConfigError(f"a regular neighbour graph needs an even degree >= 2, got {degree}")
    draws = AesCtrPrg.from_seed(new_seed()).random_uint8(8 * n).view("<u8")
    order = [indices[i] for i in np.argsort(draws, kind="stable")]
    half = degree // 2
    graph: dict[int, tuple[int, ...]] = {}
    for pos, u in enumerate(order):
        near = {order[(pos + step) % n] for step in range(-half, half + 1) if step}
        graph[u] = tuple(sorted(near))
    return graph
