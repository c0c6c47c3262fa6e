"""``AggregationService``: one compute party's secure-aggregation server (an
``AggregationHandler``).

Round lifecycle, driven by the server script (every server runs the same loop in step):

1. :meth:`AggregationService.run_round` opens round ``r`` with the public global model;
   clients read it with ``round_info`` and upload their shares (``submit``).
2. The server waits until every expected client delivered *to it* or the collection deadline
   passes, then closes the round (later uploads are ``STALE``).
3. The servers agree on the clients every one of them holds a share from (1 round,
   :mod:`crypten_lite.fl.agreement`); a client that reached only some servers is excluded on
   all of them. Fewer than ``min_clients`` -> :class:`~crypten_lite.fl.agreement.TooFewClientsError`
   on every server; the round then changes nothing.
4. **Robust aggregation (default):** every agreed client's reconstructed update is
   range-checked in MPC (:func:`~crypten_lite.fl.aggregate.range_check`): every element in
   ``[-qmax, qmax]`` (the quantized clip range), the FedAvg weight slot (``weight_max``) in
   ``[0, wmax]``, and with the optional norm bound also the L2 norm. Only one accept bit per
   client is opened; every server gets the same bits, so a failing client is ``rejected``
   (named in the :class:`RoundResult`) on every server and the round goes on without it.
   Fewer than ``min_clients`` accepted -> ``TooFewClientsError`` on every server.
5. Each server sums its shares over the accepted clients and the servers open the sum among
   themselves only (1 round): the aggregate is the only value ever revealed, and only to the
   servers. It is decoded to float with the client SDK's ``decode_aggregate``.

The next round expects the clients that delivered to every server in this one, rejected
ones included (a client that dropped out is not waited for again, though it may still
deliver). :meth:`finish` tells clients to exit.
Cost per round: agreement 1 round (``8·n`` bytes), the range check ``3·ceil(2nm/2^16) + 4``
rounds (7 for ``2nm <= 2^16``; ~``26·nm`` bytes sent per server to each other server, and
~60 dealer words per element), the opened sum 1 round (``m·ring_bits/8`` bytes). Without the
check (``range_check=False``): 2 rounds.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.encode import decode_aggregate, quant_params
from crypten_lite.edge.messages import (
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
    check_client,
)
from crypten_lite.edge.shares import expand_seed
from crypten_lite.errors import ConfigError
from crypten_lite.fl.aggregate import norm_bound_units, range_check, reveal_sum
from crypten_lite.fl.agreement import TooFewClientsError, agree_on_clients
from crypten_lite.fl.job_config import check_job_fields, weight_units
from crypten_lite.fl.registry import ClosedRound, RoundRegistry, SeedExpander
from crypten_lite.session import Session

__all__ = ["AggregationConfig", "AggregationService", "RoundResult", "TooFewRangeCheckedError"]

F64 = npt.NDArray[np.float64]
Decoder = Callable[[npt.NDArray[np.unsignedinteger], QuantSpec, int], F64]


class TooFewRangeCheckedError(TooFewClientsError):
    """Fewer than ``min_clients`` clients passed the range check (raised alike on every
    server); ``rejected`` names the clients that failed it."""

    def __init__(self, accepted: int, min_clients: int, rejected: tuple[str, ...]) -> None:
        super().__init__(accepted, min_clients)
        self.args = (
            f"only {accepted} client(s) passed the range check, the round needs {min_clients}; "
            f"rejected: {', '.join(rejected) or 'none'}",
        )
        self.rejected = rejected


class _ShareRows:
    """This server's shares of the given clients, built one at a time (seeds expanded on
    demand) so that the check never holds all of them."""

    def __init__(self, closed: ClosedRound, clients: tuple[str, ...]) -> None:
        self._closed, self._clients = closed, clients

    def __len__(self) -> int:
        return len(self._clients)

    def __getitem__(self, index: int) -> npt.NDArray[np.uint64]:
        return self._closed.share_of(self._clients[index])


@dataclass(frozen=True)
class AggregationConfig:
    """Public parameters of a federated job (identical on every server).

    ``expected_clients``: how many clients the first round waits for (None: wait for the
    deadline). ``first_round_timeout_s`` bounds the first collection (clients are still
    starting), ``collect_timeout_s`` the later ones. ``norm_bound``: optional L2 bound on a
    client's float update, checked in MPC (needs ``ring_bits=64``).

    ``range_check`` (default on): every element of each client's reconstructed update must
    lie in the quantized clip range ``[-qmax, qmax]`` (:func:`quant_params`), checked in MPC
    before the update enters the sum; a failing client is rejected. ``weight_max``: the last
    element is a FedAvg weight (``[w·Δ, w]``, :mod:`crypten_lite.fl.fedavg`) that must lie in
    ``[0, weight_max]`` (public; quantized to ``floor(weight_max / scale + 0.5)`` units, at
    most ``qmax``). Turning the check off leaves only the format checks: one client can then
    move the aggregate by up to ``2^(ring_bits-1)`` units.
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
    range_check: bool = True
    weight_max: float | None = None

    def __post_init__(self) -> None:
        check_job_fields(
            job_id=self.job_id,
            num_elements=self.num_elements,
            ring_bits=self.ring_bits,
            quant=self.quant,
            timeouts={
                "collect_timeout_s": self.collect_timeout_s,
                "first_round_timeout_s": self.first_round_timeout_s,
            },
            weight_max=self.weight_max,
        )
        if isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int):
            raise ConfigError(f"min_clients must be an int, got {self.min_clients!r}")
        if self.min_clients < 1:
            raise ConfigError(f"min_clients must be >= 1, got {self.min_clients}")
        if self.expected_clients is not None and self.expected_clients < 1:
            raise ConfigError(f"expected_clients must be >= 1, got {self.expected_clients}")
        if self.norm_bound is not None and self.ring_bits != 64:
            raise ConfigError("norm_bound needs ring_bits=64 (the check squares in MPC)")
        self.norm_bound_units  # validates the bound now  # noqa: B018
        if self.range_check:
            _, qmax = quant_params(self.quant)
            if 2 * qmax >= 1 << (self.ring_bits - 1):
                raise ConfigError(
                    f"range_check: the clip range [-{qmax}, {qmax}] is too wide for a "
                    f"{self.ring_bits}-bit ring (use a 64-bit ring or a smaller clip)"
                )

    @functools.cached_property
    def value_bounds(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
        """``(lo, hi)`` per element, in quantization units, that the MPC check enforces
        (intersected with the norm bound's ``[-B, B]``); None if nothing is checked."""
        bound = self.norm_bound_units
        if not self.range_check and bound is None:
            return None
        _, qmax = quant_params(self.quant)
        limit = qmax if self.range_check else bound
        if bound is not None and limit is not None:
            limit = min(limit, bound)
        if limit is None:  # range_check or a bound was required above
            return None
        lo = np.full(self.num_elements, -limit, np.int64)
        hi = np.full(self.num_elements, limit, np.int64)
        if self.range_check and self.weight_max is not None:
            lo[-1] = 0
            hi[-1] = min(limit, weight_units(self.weight_max, self.quant))
        return lo, hi

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
    rejected: tuple[str, ...]  # failed the range check (or the norm bound): not aggregated
    aggregate: F64  # decoded sum of the accepted clients' updates
    payload_bytes: dict[str, int]  # bytes each client's share to this server carried
    collect_s: float
    aggregate_s: float
    check_s: float = 0.0  # of aggregate_s: the MPC range check


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

    # -- AggregationHandler -----------------------------------------------------------------
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
        bounds = self.config.value_bounds
        checked = time.monotonic()
        if bounds is not None and agreement.clients:
            rows = _ShareRows(closed, agreement.clients)
            ok = range_check(
                self.session,
                rows,
                *bounds,
                self.config.ring_bits,
                norm_bound=self.config.norm_bound_units,
            )
            accepted = tuple(c for c, good in zip(agreement.clients, ok, strict=True) if good)
            rejected = tuple(c for c, good in zip(agreement.clients, ok, strict=True) if not good)
            # every server opened the same bits: all raise alike, or none does
            if len(accepted) < self.config.min_clients:
                raise TooFewRangeCheckedError(len(accepted), self.config.min_clients, rejected)
        check_s = time.monotonic() - checked
        accepted = tuple(accepted)
        opened = reveal_sum(comm, closed.sum_over(accepted), self.config.ring_bits)
        aggregate = np.asarray(  # the decoder reduces the uint64 sum to the ring itself
            self._decode(opened, self.config.quant, self.config.ring_bits), dtype=np.float64
        )
        self._expected = max(len(agreement.clients), 1)  # rejected clients are still online
        return RoundResult(
            round=closed.round,
            clients=accepted,
            excluded=agreement.excluded,
            rejected=rejected,
            aggregate=aggregate,
            payload_bytes=closed.payload_bytes,
            collect_s=collected - start,
            aggregate_s=time.monotonic() - collected,
            check_s=check_s,
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
