"""The servers agree on which clients to aggregate: those every server holds a share from.

Each server hashes the ids of the clients that delivered to it (SHA-256 of the UTF-8 id,
first 8 bytes as a big-endian ``uint64``), sorts them and all-gathers the arrays over the
session's communicator: **1 round, 8 bytes per delivered client sent to each other server**.
The intersection is the same list on every server, so a client that reached only some servers
is excluded everywhere. The client ids themselves never travel; two distinct ids of one server
hashing alike (probability ~n^2 / 2^65) is detected and refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import ProtocolError
from crypten_lite.transport.base import Communicator

__all__ = ["Agreement", "TooFewClientsError", "agree_on_clients", "client_hash"]


class TooFewClientsError(ProtocolError):
    """Fewer clients than the round's minimum delivered to every server (raised alike on
    every server, since they all see the same intersection)."""

    def __init__(self, agreed: int, min_clients: int) -> None:
        super().__init__(
            f"only {agreed} client(s) delivered to every server, the round needs {min_clients}"
        )
        self.agreed = agreed
        self.min_clients = min_clients


def client_hash(client_id: str) -> int:
    """The 64-bit tag of a client id exchanged between servers."""
    return int.from_bytes(hashlib.sha256(client_id.encode("utf-8")).digest()[:8], "big")


class Agreement:
    """The outcome: ``clients`` (sorted ids) delivered everywhere; ``excluded`` delivered to
    this server but not to every other one."""

    __slots__ = ("clients", "excluded")

    def __init__(self, clients: tuple[str, ...], excluded: tuple[str, ...]) -> None:
        self.clients = clients
        self.excluded = excluded

    def __repr__(self) -> str:
        return f"Agreement(clients={len(self.clients)}, excluded={list(self.excluded)})"


def _tags(client_ids: Iterable[str]) -> tuple[npt.NDArray[np.uint64], dict[int, str]]:
    by_tag: dict[int, str] = {}
    for cid in client_ids:
        tag = client_hash(cid)
        if tag in by_tag and by_tag[tag] != cid:
            raise ProtocolError("two client ids share a 64-bit tag; rename one of them")
        by_tag[tag] = cid
    return np.array(sorted(by_tag), dtype=np.uint64), by_tag


def agree_on_clients(
    comm: Communicator, client_ids: Iterable[str], min_clients: int = 1
) -> Agreement:
    """Intersect the delivered sets of all parties of ``comm`` (1 round; see module doc).

    Raises :class:`TooFewClientsError` on every server when fewer than ``min_clients``
    delivered to all of them.
    """
    if isinstance(min_clients, bool) or not isinstance(min_clients, int) or min_clients < 1:
        raise ValueError(f"min_clients must be a positive int, got {min_clients!r}")
    mine, by_tag = _tags(client_ids)
    common = mine
    for theirs in comm.all_gather(mine):
        if theirs.dtype != np.uint64 or theirs.ndim != 1:
            raise ProtocolError("a server sent a malformed client list")
        common = np.intersect1d(common, np.unique(theirs), assume_unique=True)
    agreed = {int(t) for t in common}
    clients = tuple(sorted(by_tag[t] for t in agreed))
    excluded = tuple(sorted(cid for t, cid in by_tag.items() if t not in agreed))
    if len(clients) < min_clients:
        raise TooFewClientsError(len(clients), min_clients)
    return Agreement(clients, excluded)
