"""``SecAggService``: secure aggregation with ONE server (SecAgg, Bonawitz et al., CCS 2017;
SecAgg+ neighbourhoods, Bell et al., CCS 2020), a ``SecAggHandler`` behind the edge gateway.

The server runs the round loop (:meth:`SecAggService.run_round`): it opens a round with the
public model (``round_info`` says OPEN while keys are advertised), then walks the four stages
of :mod:`crypten_lite.edge.secagg_messages`, closing each when every client still in the
round answered or ``collect_timeout_s`` passed (the first round's key advertisement waits up
to ``first_round_timeout_s``). It learns the sum of the updates of the clients whose masked
input arrived (``U3``) and nothing else about any one of them (see
:mod:`crypten_lite.edge.secagg_params` for the threshold, collusion and dropout bounds).

**Input validity.** One server cannot check a masked update's range. A client that encodes
an out-of-range value can move the ring sum anywhere; what the server does check is the
*aggregate*: each decoded element of the sum of ``n`` clients must lie in
``[-n·qmax, n·qmax]`` (the FedAvg weight slot in ``[0, n·wmax]``), where any sum of clipped
updates lies. Elements outside are clipped to that range (``out_of_range="clip"``, counted in
the result) or fail the round (``"fail"``): a wrapped value is never worse than ``n`` clients
at the clip. A single client can still bias each element of the mean by up to
``2·clip``; the multi-server mode's MPC range check
(:class:`crypten_lite.fl.AggregationService`) rejects such a client and is the robust option.

Cost per round (``n`` clients, ``m`` elements, ``d`` neighbours, ``b = ring_bits/8``):
client upload ``m·b`` + ~``200·d`` + 64 bytes, download ~``(68 + 150)·d`` bytes; server
``n`` additions of ``m`` elements, ``n`` self-mask keystreams, ``d`` keystreams per client
dropped after sharing keys, ``n`` Shamir interpolations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.encode import check_capacity, decode_aggregate, quant_params
from crypten_lite.edge.messages import (
    EdgeRefusal,
    EdgeRequestError,
    QuantSpec,
    RoundInfo,
    RoundState,
    check_client,
)
from crypten_lite.edge.secagg_crypto import round_context
from crypten_lite.edge.secagg_messages import (
    WORKING_STAGES,
    KeyAdvert,
    MaskedUpload,
    SecAggStage,
    SecAggState,
    ShareKeysUpload,
    UnmaskUpload,
)
from crypten_lite.edge.secagg_params import SecAggParams
from crypten_lite.errors import ConfigError
from crypten_lite.fl.agreement import TooFewClientsError
from crypten_lite.fl.job_config import check_job_fields, weight_units
from crypten_lite.fl.secagg.state import SecAggRound
from crypten_lite.fl.secagg.unmask import UnmaskError, unmasked_sum

__all__ = [
    "MAX_STATE_WAIT_S",
    "SecAggAbortedError",
    "SecAggConfig",
    "SecAggRoundResult",
    "SecAggService",
]

F64 = npt.NDArray[np.float64]
Decoder = Callable[[npt.NDArray[np.unsignedinteger], QuantSpec, int], F64]
OutOfRange = Literal["clip", "fail"]
#: the longest one state request waits for the stage to change.
MAX_STATE_WAIT_S = 30.0


class SecAggAbortedError(TooFewClientsError):
    """The round failed (too few clients at a stage, a secret that cannot be rebuilt, or an
    aggregate out of range with ``out_of_range="fail"``); every client sees the same reason."""

    def __init__(self, round_number: int, reason: str, agreed: int, min_clients: int) -> None:
        super().__init__(agreed, min_clients)
        self.args = (f"round {round_number} failed: {reason}",)
        self.reason = reason


@dataclass(frozen=True)
class SecAggConfig:
    """Public parameters of a single-server job (see the module doc).

    ``params``: neighbours and threshold (:class:`SecAggParams`); ``min_clients`` (>= 3): the
    fewest clients a stage may close with; ``expected_clients``: how many the key
    advertisement waits for (None: the deadline); ``weight_max``: the last element is a
    FedAvg weight in ``[0, weight_max]``."""

    job_id: str
    num_elements: int
    ring_bits: int = 32
    quant: QuantSpec = field(default_factory=QuantSpec)
    params: SecAggParams = field(default_factory=SecAggParams)
    min_clients: int = 3
    expected_clients: int | None = None
    collect_timeout_s: float = 10.0
    first_round_timeout_s: float = 120.0
    allowed_clients: tuple[str, ...] | None = None
    weight_max: float | None = None
    out_of_range: OutOfRange = "clip"

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
        if not isinstance(self.params, SecAggParams):
            raise ConfigError("params must be a SecAggParams")
        if isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int):
            raise ConfigError(f"min_clients must be an int, got {self.min_clients!r}")
        if self.min_clients < 3:
            raise ConfigError(
                f"min_clients must be >= 3 (with 2 clients each learns the other's update "
                f"from the sum), got {self.min_clients}"
            )
        if self.expected_clients is not None and self.expected_clients < self.min_clients:
            raise ConfigError("expected_clients must be >= min_clients")
        if self.out_of_range not in ("clip", "fail"):
            raise ConfigError(f"out_of_range must be 'clip' or 'fail', got {self.out_of_range!r}")
        check_capacity(self.quant, self.ring_bits, self.expected_clients or self.min_clients)


@dataclass(frozen=True)
class SecAggRoundResult:
    """One finished round (all public to the server). ``dropped`` maps a stage to the clients
    that answered the one before but not it; ``complaints`` are ``(client, neighbour)`` pairs
    whose relayed share failed authentication; ``clipped``: aggregate elements outside the
    honest range (see the module doc)."""

    round: int
    clients: tuple[str, ...]
    dropped: dict[str, tuple[str, ...]]
    excluded: tuple[str, ...]
    complaints: tuple[tuple[str, str], ...]
    aggregate: F64
    clipped: int
    payload_bytes: dict[str, int]
    stage_s: dict[str, float]
    server_cpu_s: float
    collect_s: float
    aggregate_s: float


class SecAggService:
    """Single-server secure aggregation; install with ``comm.set_edge_handler(service)``."""

    def __init__(self, config: SecAggConfig, *, decoder: Decoder = decode_aggregate) -> None:
        self.config = config
        self._decode = decoder
        allowed = config.allowed_clients
        self._allowed = None if allowed is None else frozenset(allowed)
        self._lock = threading.Lock()
        self._number = 0
        self._state = RoundState.CLOSED
        self._model = np.zeros(0, np.float32)
        self._rounds: dict[int, SecAggRound] = {}
        self._expected = config.expected_clients

    # -- SecAggHandler ------------------------------------------------------------------------
    def round_info(self, client_id: str) -> RoundInfo:
        check_client(client_id, self._allowed)
        with self._lock:
            number, state, model = self._number, self._state, self._model
            current = self._rounds.get(number)
        advertising = current is not None and current.stage is SecAggStage.ADVERTISE
        if state is RoundState.OPEN and not advertising:
            state = RoundState.CLOSED  # keys can no longer be advertised for this round
        return RoundInfo(
            job_id=self.config.job_id,
            round=number,
            state=state,
            num_elements=self.config.num_elements,
            ring_bits=self.config.ring_bits,
            quant=self.config.quant,
            num_servers=1,
            server_index=0,
            min_clients=self.config.min_clients,
            model=model,
        )

    def _round(self, client_id: str, number: int) -> SecAggRound:
        check_client(client_id, self._allowed)
        with self._lock:
            rnd = self._rounds.get(number)
            current = self._number
        if rnd is None:
            raise EdgeRequestError(
                EdgeRefusal.STALE, f"round {number} is not known (current round {current})"
            )
        return rnd

    def secagg_state(
        self,
        client_id: str,
        round_number: int,
        known: SecAggStage | None = None,
        wait_s: float = 0.0,
    ) -> SecAggState:
        """This client's view of the round; a long poll with ``known`` and ``wait_s``
        (capped at :data:`MAX_STATE_WAIT_S`)."""
        rnd = self._round(client_id, round_number)
        return rnd.state_for(client_id, known, min(max(wait_s, 0.0), MAX_STATE_WAIT_S))

    def advertise(self, client_id: str, advert: KeyAdvert) -> None:
        self._round(client_id, advert.round).advertise(client_id, advert)

    def share_keys(self, client_id: str, upload: ShareKeysUpload) -> None:
        self._round(client_id, upload.round).share_keys(client_id, upload)

    def submit_masked(self, client_id: str, upload: MaskedUpload) -> None:
        self._round(client_id, upload.round).submit_masked(client_id, upload)

    def unmask(self, client_id: str, upload: UnmaskUpload) -> None:
        self._round(client_id, upload.round).unmask(client_id, upload)

    # -- round lifecycle ----------------------------------------------------------------------
    @property
    def round(self) -> int:
        return self._number

    @property
    def current(self) -> SecAggRound | None:
        """The round in progress (or the last one)."""
        with self._lock:
            return self._rounds.get(self._number)

    def open_round(self, model: npt.ArrayLike) -> int:
        """Publish ``model`` and start the key advertisement of the next round."""
        public = np.array(model, dtype=np.float32).reshape(-1)
        public.setflags(write=False)
        with self._lock:
            if self._state is RoundState.FINISHED:
                raise ConfigError("the job is finished")
            number = self._number + 1
            self._rounds[number] = SecAggRound(
                round_number=number,
                num_elements=self.config.num_elements,
                ring_bits=self.config.ring_bits,
                params=self.config.params,
                min_clients=self.config.min_clients,
                allowed_clients=self._allowed,
            )
            self._rounds.pop(number - 2, None)  # keep the last round for late pollers
            self._number, self._model, self._state = number, public, RoundState.OPEN
        return number

    def close_stage(self) -> SecAggStage:
        """Close the current stage of the current round now; the stage it moved to."""
        rnd = self._require_round()
        closers = {
            SecAggStage.ADVERTISE: rnd.close_advertise,
            SecAggStage.SHARE_KEYS: rnd.close_share_keys,
            SecAggStage.MASKED_INPUT: rnd.close_masked,
            SecAggStage.UNMASK: rnd.close_unmask,
        }
        close = closers.get(rnd.stage)
        if close is not None:
            close()
        if rnd.stage is not SecAggStage.ADVERTISE:
            with self._lock:
                if self._state is RoundState.OPEN:
                    self._state = RoundState.CLOSED
        return rnd.stage

    def _require_round(self) -> SecAggRound:
        rnd = self.current
        if rnd is None:
            raise ConfigError("no round was opened")
        return rnd

    def close_and_aggregate(self, *, wait: bool = True) -> SecAggRoundResult:
        """Walk the stages (waiting for the clients still in, up to the deadlines) and return
        the aggregate. Raises :class:`SecAggAbortedError` if the round fails."""
        rnd = self._require_round()
        start = time.monotonic()
        stage_s: dict[str, float] = {}
        if rnd.stage is SecAggStage.FAILED:
            raise self._aborted(rnd, rnd.failure)
        for stage in WORKING_STAGES:
            if rnd.stage is not stage or rnd.unmask_closed:  # passed (closed by hand)
                continue
            begun = time.monotonic()
            if wait:
                deadline = begun + self._timeout(rnd, stage)
                rnd.wait_for(stage, self._waiting_for(rnd, stage), deadline)
            self.close_stage()
            stage_s[stage.value] = time.monotonic() - begun
            if rnd.failure:  # the stage closed with too few clients
                raise self._aborted(rnd, rnd.failure)
        collected = time.monotonic()
        return self.finish_round(start=start, collected=collected, stage_s=stage_s)

    def _waiting_for(self, rnd: SecAggRound, stage: SecAggStage) -> int:
        before = stage.previous
        if before is None:  # the key advertisement: the clients expected (or the deadline)
            return self._expected if self._expected is not None else 1 << 62
        return len(rnd.in_set(before))

    def _timeout(self, rnd: SecAggRound, stage: SecAggStage) -> float:
        first = stage is SecAggStage.ADVERTISE and rnd.round == 1
        return self.config.first_round_timeout_s if first else self.config.collect_timeout_s

    def _aborted(self, rnd: SecAggRound, reason: str) -> SecAggAbortedError:
        alive = len(rnd.in_set(SecAggStage.MASKED_INPUT))
        return SecAggAbortedError(rnd.round, reason, alive, self.config.min_clients)

    def finish_round(
        self,
        *,
        start: float | None = None,
        collected: float | None = None,
        stage_s: dict[str, float] | None = None,
    ) -> SecAggRoundResult:
        """Unmask and decode (the round must have passed its UNMASK stage)."""
        rnd = self._require_round()
        if rnd.stage is not SecAggStage.UNMASK or not rnd.unmask_closed:
            raise ConfigError(f"round {rnd.round} is at stage {rnd.stage.value}, not unmasked")
        now = time.monotonic()
        start = now if start is None else start
        collected = now if collected is None else collected
        cpu = time.thread_time()
        context = round_context(self.config.job_id, rnd.round)
        try:
            total = unmasked_sum(rnd, context)
        except UnmaskError as err:
            rnd.fail(str(err))
            raise self._aborted(rnd, str(err)) from None
        sets = [rnd.in_set(stage) for stage in WORKING_STAGES]  # U1..U4
        survivors = sets[2]
        aggregate = np.asarray(
            self._decode(total, self.config.quant, self.config.ring_bits), dtype=np.float64
        )
        clipped = self._clip(aggregate, len(survivors))
        if clipped and self.config.out_of_range == "fail":
            reason = f"{clipped} aggregate element(s) outside the range clipped updates allow"
            rnd.fail(reason)
            raise self._aborted(rnd, reason)
        rnd.complete()
        self._expected = max(len(survivors), self.config.min_clients)  # those still in
        dropped = {
            stage.value: tuple(sorted({p.client_id for p in before} - {p.client_id for p in after}))
            for stage, before, after in zip(
                WORKING_STAGES[1:], sets[:-1], sets[1:], strict=True
            )
        }
        complaints = tuple(
            (p.client_id, rnd.by_index[v].client_id) for p in survivors for v in p.complaints
        )
        item = self.config.ring_bits // 8
        return SecAggRoundResult(
            round=rnd.round,
            clients=rnd.ids(survivors),
            dropped=dropped,
            excluded=rnd.pruned,
            complaints=complaints,
            aggregate=aggregate,
            clipped=clipped,
            payload_bytes={p.client_id: self.config.num_elements * item for p in survivors},
            stage_s=stage_s or {},
            server_cpu_s=rnd.cpu_s + time.thread_time() - cpu,
            collect_s=collected - start,
            aggregate_s=time.monotonic() - collected,
        )

    def _clip(self, aggregate: F64, num_clients: int) -> int:
        """Clip ``aggregate`` in place to what ``num_clients`` clipped updates can sum to."""
        scale, qmax = quant_params(self.config.quant)
        hi = np.full(aggregate.size, num_clients * qmax * scale)
        lo = -hi
        if self.config.weight_max is not None:
            lo[-1] = 0.0
            hi[-1] = num_clients * weight_units(self.config.weight_max, self.config.quant) * scale
        outside = int(np.count_nonzero((aggregate < lo) | (aggregate > hi)))
        np.clip(aggregate, lo, hi, out=aggregate)
        return outside

    def run_round(self, model: npt.ArrayLike) -> SecAggRoundResult:
        """:meth:`open_round` then :meth:`close_and_aggregate`."""
        self.open_round(model)
        return self.close_and_aggregate()

    def finish(self, model: npt.ArrayLike | None = None) -> None:
        """End the job: ``round_info`` reports FINISHED (with the final model, if given)."""
        with self._lock:
            if model is not None:
                public = np.array(model, dtype=np.float32).reshape(-1)
                public.setflags(write=False)
                self._model = public
            self._state = RoundState.FINISHED
            current = self._rounds.get(self._number)
        if current is not None and current.stage not in (SecAggStage.DONE, SecAggStage.FAILED):
            current.fail("the job finished")
