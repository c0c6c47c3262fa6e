"""L5: a Session is one party's view of a job: rank, communicator, provider, pairwise streams,
config and stats. Protocol functions take it first. A context variable holds the session that
script-style code (``cl.cryptensor(x, src=0)``) uses; there is no module-level session.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
from collections.abc import Iterator

import numpy as np

from crypten_lite.config import SessionConfig
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import ProtocolError, SessionError, StoreError
from crypten_lite.providers import InsecureLocalDealer, Provider, TrustedDealer, run_dealer
from crypten_lite.providers.store import PROVIDER_NAME as STORE_PROVIDER
from crypten_lite.providers.store import PartyStore, StoreProvider
from crypten_lite.ring.prg import SEED_SIZE, AesCtrPrg
from crypten_lite.sharing import PairwiseStreams
from crypten_lite.transport.base import CommSnapshot, CommStats, Communicator

__all__ = ["Session", "current_session", "serve_dealer"]

_CURRENT: contextvars.ContextVar[Session] = contextvars.ContextVar("crypten_lite_session")


def _seed_message(seed: bytes) -> np.ndarray:
    return np.frombuffer(seed, dtype=np.uint8).copy()


def _seed_from(message: np.ndarray, peer: int) -> bytes:
    if message.dtype != np.uint8 or message.shape != (SEED_SIZE,):
        raise ProtocolError(f"malformed seed message from rank {peer}")
    return message.tobytes()


class Session:
    """One party's state for one job (see module docstring)."""

    def __init__(
        self,
        comm: Communicator,
        config: SessionConfig,
        provider: Provider,
        zeros: PairwiseStreams,
        setup_stats: CommSnapshot,
    ) -> None:
        self.comm = comm
        self.config = config
        self.provider = provider
        self.zeros = zeros
        self.encoder = FixedPointEncoder(precision=config.precision)
        self.setup_stats = setup_stats
        self.private = AesCtrPrg.generate()  # this party's own secret randomness
        self._closed = False

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.world_size

    @property
    def stats(self) -> CommStats:
        """This party's traffic (dealer requests and replies included)."""
        return self.comm.stats

    @classmethod
    def setup(cls, comm: Communicator, config: SessionConfig | None = None) -> Session:
        """Agree on pairwise seeds and the provider's seed; the dealer rank must be running
        :func:`serve_dealer` when ``config.provider == "TrustedDealer"``. Setup traffic is
        kept in ``setup_stats`` and the stats then start from zero."""
        config = config or SessionConfig()
        if comm.rank >= comm.world_size:
            raise SessionError("Session.setup is for party ranks; the dealer runs serve_dealer")
        pair_seeds: dict[int, bytes] = {}
        for peer in range(comm.rank + 1, comm.world_size):
            pair_seeds[peer] = secrets.token_bytes(SEED_SIZE)
            comm.send(peer, _seed_message(pair_seeds[peer]))
        for peer in range(comm.rank):
            pair_seeds[peer] = _seed_from(comm.recv(peer), peer)
        provider: Provider
        if config.provider == "TrustedDealer":
            provider = TrustedDealer(
                comm, _seed_from(comm.recv(comm.dealer_rank), comm.dealer_rank)
            )
        elif config.provider == STORE_PROVIDER and config.store is not None:
            store = PartyStore.open(config.store, comm.rank, comm.world_size, config.store_job)
            _agree_on_store(comm, store)
            provider = StoreProvider(store)
        else:
            common = secrets.token_bytes(SEED_SIZE) if comm.rank == 0 else None
            message = comm.broadcast(_seed_message(common) if common else None, 0)
            provider = InsecureLocalDealer(comm.rank, comm.world_size, _seed_from(message, 0))
        setup = comm.stats.snapshot()
        comm.stats.reset()
        return cls(
            comm, config, provider, PairwiseStreams(comm.rank, comm.world_size, pair_seeds), setup
        )

    def close(self) -> None:
        """Settle outstanding dealer requests and tell the dealer this party is done."""
        if not self._closed:
            self._closed = True
            self.provider.close()

    @contextlib.contextmanager
    def activate(self) -> Iterator[Session]:
        """Make this the current session for script-style calls inside the block."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def check_same(self, other: Session) -> None:
        """Raise unless ``other`` is this session."""
        if other is not self:
            raise SessionError("tensors from different sessions cannot be combined")

    def __repr__(self) -> str:
        return (
            f"Session(rank={self.rank}, world_size={self.world_size}, "
            f"provider={self.provider.name}, precision={self.config.precision})"
        )


def _agree_on_store(comm: Communicator, store: PartyStore) -> None:
    """One all-gather: every party's store must come from one generation of one job."""
    mine = np.frombuffer(store.fingerprint(), dtype=np.uint8)
    for rank, theirs in enumerate(comm.all_gather(mine)):
        if not np.array_equal(np.asarray(theirs), mine):
            raise StoreError(
                f"rank {rank}'s offline store belongs to another job or generation than rank "
                f"{comm.rank}'s (job {store.job_id!r}): every party needs the stores of one "
                "`crypten-lite offline generate`"
            )


def current_session() -> Session:
    """The session of the running party; raises if none is active."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise SessionError(
            "no active crypten_lite session: run inside run_parties(...) or the launcher, "
            "or use `with session.activate():`"
        ) from None


def serve_dealer(comm: Communicator) -> int:
    """The dealer rank's job: hand each party its seed, then serve corrections until closed."""
    if comm.rank != comm.dealer_rank:
        raise SessionError(f"serve_dealer must run on the dealer rank {comm.dealer_rank}")
    seeds = [secrets.token_bytes(SEED_SIZE) for _ in comm.parties]
    for party, seed in zip(comm.parties, seeds, strict=True):
        comm.send(party, _seed_message(seed))
    return run_dealer(comm, seeds)
