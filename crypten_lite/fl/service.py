"""``AggregationService``: one compute party's secure-aggregation server (an ``EdgeHandler``).

Round lifecycle, driven by the server script (every server runs the same loop in step):

1. :meth:`AggregationService.run_round` opens round ``r`` with the public global model;
   clients read it with ``round_info`` and upload their shares (``submit``).
2. The server waits until every expected client delivered *to it* or the collection deadline
   passes, then closes the round (later uploads are ``STALE``).
3. The servers agree on the clients every one of them holds a share from (1 round,
   :mod:`crypten_lite.fl.agreement`); a client that reached only some servers is excluded on
   all of them. Fewer than ``min_clients`` -> :class:`~crypten_lite.fl.agreement.TooFewClientsError`
   on every server; the round then changes nothing.
4. Optionally the norm bound is checked in MPC (:func:`~crypten_lite.fl.aggregate.norm_check`,
   8 rounds) and failing clients are dropped.
5. Each server sums its shares over the accepted clients and the servers open the sum among
   themselves only (1 round): the aggregate is the only value ever revealed, and only to the
   servers. It is decoded to float with the client SDK's ``decode_aggregate``.

The next round expects the clients accepted in this one (a client that dropped out is not
waited for again, though it may still deliver). :meth:`finish` tells clients to exit.
Cost per round without the norm bound: 2 rounds between servers; ``8·n`` bytes (agreement)
plus ``m·ring_bits/8`` bytes (the opened sum) sent by each server to each other server.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crypten_lite.client.encode import decode_aggregate
from crypten_lite.client.shares import expand_seed
from crypten_lite.errors import ConfigError
from crypten_lite.fl.aggregate import norm_bound_units, norm_check, reveal_sum
from crypten_lite.fl.agreement import TooFewClientsError, agree_on_clients
from crypten_lite.fl.registry import RoundRegistry, SeedExpander
from crypten_lite.session import Session
from crypten_lite.transport.edge import (
    RING_BITS,
    SCHEMES,
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
    check_client,
)

__all__ = ["AggregationConfig", "AggregationService", "RoundResult"]

F64 = npt.NDArray[np.float64]
Decoder = Callable[[npt.NDArray[np.unsignedinteger], QuantSpec, int], F64]


@dataclass(frozen=True)
class AggregationConfig:
    """Public parameters of a federated job (identical on every server).

    ``expected_clients``: how many clients the first round waits for (None: wait for the
    deadline). ``first_round_timeout_s`` bounds the first collection (clients are still
    starting), ``collect_timeout_s`` the later ones. ``norm_bound``: optional L2 bound on a
    client's float update, checked in MPC (needs ``ring_bits=64``).
    """

    job_id: str
    num_elements: int
    ring_bits: int = 32
    quant: QuantSpec = field(default_factory=QuantSpec)
    min_clients: int = 1
    expected_clients: int | None = None
    collect_timeout_s: float = 10.0
    first_round_timeout_s: float = 120.0
    norm_bound: float | None = None
    allowed_clients: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.job_id, str) or not self.job_id:
            raise ConfigError("job_id must be a non-empty str")
        if isinstance(self.num_elements, bool) or not isinstance(self.num_elements, int):
            raise ConfigError(f"num_elements must be an int, got {self.num_elements!r}")
        if self.num_elements < 1:
            raise ConfigError(f"num_elements must be >= 1, got {self.num_elements}")
        if self.ring_bits not in RING_BITS:
            raise ConfigError(f"ring_bits must be one of {RING_BITS}, got {self.ring_bits!r}")
        if self.quant.scheme not in SCHEMES:
            raise ConfigError(f"quant.scheme must be one of {SCHEMES}, got {self.quant.scheme!r}")
        if isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int):
            raise ConfigError(f"min_clients must be an int, got {self.min_clients!r}")
        if self.min_clients < 1:
            raise ConfigError(f"min_clients must be >= 1, got {self.min_clients}")
        if self.expected_clients is not None and self.expected_clients < 1:
            raise ConfigError(f"expected_clients must be >= 1, got {self.expected_clients}")
        for name in ("collect_timeout_s", "first_round_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.norm_bound is not None and self.ring_bits != 64:
            raise ConfigError("norm_bound needs ring_bits=64 (the check squares in MPC)")
        self.norm_bound_units  # validates the bound now  # noqa: B018

    @functools.cached_property
    def norm_bound_units(self) -> int | None:
        """The norm bound in quantization units (None without a bound)."""
        if self.norm_bound is None:
            return None
        return norm_bound_units(self.norm_bound, self.quant, self.num_elements)


@dataclass(frozen=True)
class RoundResult:
    """One finished round as this server saw it (all public to the servers)."""

    round: int
    clients: tuple[str, ...]  # aggregated (agreed by all servers, passed the norm bound)
    excluded: tuple[str, ...]  # delivered here but not to every server
    rejected: tuple[str, ...]  # failed the norm bound
    aggregate: F64  # decoded sum of the accepted clients' updates
    payload_bytes: dict[str, int]  # bytes each client's share to this server carried
    collect_s: float
    aggregate_s: float


class AggregationService:
    """Secure aggregation on one server; install with ``comm.set_edge_handler(service)``."""

    def __init__(
        self,
        session: Session,
        config: AggregationConfig,
        *,
        seed_expander: SeedExpander = expand_seed,
        decoder: Decoder = decode_aggregate,
    ) -> None:
        if session.world_size < 2:
            raise ConfigError("secure aggregation needs at least 2 servers")
        self.session = session
        self.config = config
        self._decode = decoder
        self._registry = RoundRegistry(
            num_elements=config.num_elements,
            ring_bits=config.ring_bits,
            server_index=session.rank,
            num_servers=session.world_size,
            expand_seed=seed_expander,
            allowed_clients=config.allowed_clients,
        )
        self._lock = threading.Lock()
        self._state = RoundState.CLOSED
        self._model = np.zeros(0, np.float32)
        self._expected = config.expected_clients

    # -- EdgeHandler ------------------------------------------------------------------------
    def round_info(self, client_id: str) -> RoundInfo:
        check_client(client_id, self._registry.allowed)
        with self._lock:
            state, number, model = self._state, self._registry.round, self._model
        return RoundInfo(
            job_id=self.config.job_id,
            round=number,
            state=state,
            num_elements=self.config.num_elements,
            ring_bits=self.config.ring_bits,
            quant=self.config.quant,
            num_servers=self.session.world_size,
            server_index=self.session.rank,
            min_clients=self.config.min_clients,
            model=model,
        )

    def submit(self, client_id: str, share: UpdateShare) -> None:
        self._registry.submit(client_id, share)  # checks the identity too

    def infer(self, client_id: str, query: InferenceQuery) -> InferenceShare:
        check_client(client_id, self._registry.allowed)
        raise EdgeRequestError(
            EdgeRefusal.INVALID, "this server runs secure aggregation; inference is not served"
        )

    # -- round lifecycle ----------------------------------------------------------------------
    @property
    def round(self) -> int:
        return self._registry.round

    @property
    def state(self) -> RoundState:
        return self._state

    def open_round(self, model: npt.ArrayLike) -> int:
        """Publish ``model`` and start accepting shares for the next round; returns its number."""
        public = np.array(model, dtype=np.float32).reshape(-1)
        public.setflags(write=False)
        with self._lock:
            if self._state is RoundState.FINISHED:
                raise ConfigError("the job is finished")
            number = self._registry.round + 1
            self._registry.open(number)  # before the state says OPEN: no STALE race
            self._model, self._state = public, RoundState.OPEN
        return number

    def close_and_aggregate(self, *, wait: bool = True) -> RoundResult:
        """Collect (until the expected clients delivered or the deadline), agree, check,
        sum and open the aggregate. Raises ``TooFewClientsError`` on every server alike."""
        start = time.monotonic()
        if wait:
            timeout = (
                self.config.first_round_timeout_s
                if self._registry.round == 1
                else self.config.collect_timeout_s
            )
            expected = self._expected if self._expected is not None else 1 << 62
            self._registry.wait_for(expected, start + timeout)
        with self._lock:
            if self._state is RoundState.OPEN:
                self._state = RoundState.CLOSED
        closed = self._registry.close()
        collected = time.monotonic()
        comm = self.session.comm
        agreement = agree_on_clients(comm, closed.delivered, self.config.min_clients)
        accepted: Iterable[str] = agreement.clients
        rejected: tuple[str, ...] = ()
        bound = self.config.norm_bound_units
        if bound is not None and agreement.clients:
            shares = np.stack([closed.share_of(c) for c in agreement.clients])
            ok = norm_check(self.session, shares, bound)
            accepted = tuple(c for c, good in zip(agreement.clients, ok, strict=True) if good)
            rejected = tuple(c for c, good in zip(agreement.clients, ok, strict=True) if not good)
            if len(accepted) < self.config.min_clients:
                raise TooFewClientsError(len(accepted), self.config.min_clients)
        accepted = tuple(accepted)
        opened = reveal_sum(comm, closed.sum_over(accepted), self.config.ring_bits)
        aggregate = np.asarray(  # the decoder reduces the uint64 sum to the ring itself
            self._decode(opened, self.config.quant, self.config.ring_bits), dtype=np.float64
        )
        self._expected = max(len(accepted), 1)
        return RoundResult(
            round=closed.round,
            clients=accepted,
            excluded=agreement.excluded,
            rejected=rejected,
            aggregate=aggregate,
            payload_bytes=closed.payload_bytes,
            collect_s=collected - start,
            aggregate_s=time.monotonic() - collected,
        )

    def run_round(self, model: npt.ArrayLike) -> RoundResult:
        """:meth:`open_round` then :meth:`close_and_aggregate`."""
        self.open_round(model)
        return self.close_and_aggregate()

    def finish(self, model: npt.ArrayLike | None = None) -> None:
        """End the job: ``round_info`` reports FINISHED (with the final model, if given)."""
        with self._lock:
            if self._registry.is_open:
                self._registry.close()
            if model is not None:
                public = np.array(model, dtype=np.float32).reshape(-1)
                public.setflags(write=False)
                self._model = public
            self._state = RoundState.FINISHED
