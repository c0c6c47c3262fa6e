"""``InferenceService``: one compute party's private-inference server (an
``InferenceHandler``).

Every server holds the same encrypted ``crypten_lite.nn`` models (``model.encrypt(src=0)`` on
all servers) and runs :meth:`InferenceService.serve` on its main thread; edge clients call
``infer`` (a gRPC worker thread per call), which validates and queues the query, then waits
for the serving loop to produce this server's output share.

The serving loop answers queries in micro-batches, in the same order on every server. One
step:

1. Server 0 (the leader) waits up to ``heartbeat_s`` for a pending query, then up to
   ``batch_window_s`` more for others to join, and takes the oldest pending queries of that
   query's model, in admission order, while their rows fit ``max_batch``. It broadcasts the
   control message ``int64[kind, count, digests]``: ``kind`` is ``IDLE`` (0) or ``QUERY``
   (1), then for each query the SHA-256 digest over (client id, query id, model, shape,
   frac_bits) as four little-endian words. A client that sent different metadata to
   different servers produces different digests and is caught here.
2. A follower waits up to ``match_timeout_s`` for pending queries with those digests.
3. ``all_gather`` of ``int64[stop, have_1 .. have_count]``: ``have_i`` = this server holds
   query ``i``; ``stop`` = this server wants the loop to end (:meth:`stop`,
   ``idle_timeout_s``, ``max_queries``). A query some server lacks is failed on every server
   that holds it (the waiting RPC gets ``STALE``: not every server received it). If any
   server votes stop, every server ends after the step, so no server is left waiting for a
   control message (the stop is in-band).
4. The queries every server holds run as ONE batch: every server stacks its input shares
   along the batch axis (``MPCTensor.from_shares``), runs the model once, adds a fresh
   zero-sharing (pairwise streams, no communication) to its share of ``[y]`` and answers each
   waiting RPC with its own rows: a client learns its ``y`` and nothing about the other
   queries of the batch or the servers' internal shares.

Admission is bounded: beyond ``max_pending`` waiting queries a server answers UNAVAILABLE
("busy, retry"; the client SDK retries with backoff), never a hang.

Input shapes are public and checked when a query is admitted (identically on every server),
so the model never sees a shape it does not accept and all servers decide alike.
Cost per step: 2 rounds (the leader sends ``16 + 32 q`` bytes to each follower for ``q``
queries, every server ``8 (q + 1)`` bytes to each other server) plus the model's rounds and
bytes for the whole batch; the re-randomization is local. While idle the same 2-round step
repeats every ``heartbeat_s`` (keeps followers' receive timeouts from firing and lets any
server stop the loop).
"""

from __future__ import annotations

import enum
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.messages import (
    SEED_SIZE,
    EdgeRefusal,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    check_client,
)
from crypten_lite.edge.shares import expand_seed
from crypten_lite.errors import CommunicationError, ConfigError
from crypten_lite.nn import Module
from crypten_lite.session import Session
from crypten_lite.tensor import MPCTensor

__all__ = ["CONTROL_IDLE", "CONTROL_QUERY", "InferenceService", "query_digest"]

#: control-message kinds (first word of the leader's ``int64[kind, count, digests]`` broadcast).
CONTROL_IDLE = 0
CONTROL_QUERY = 1

_LEADER = 0
_MAX_REMEMBERED = 1 << 16  # (client, query id) pairs kept for duplicate detection
_MISSING = (
    "not every server received this query (or a server saw different metadata); it was not run"
)
U64 = npt.NDArray[np.uint64]


def query_digest(client_id: str, query: InferenceQuery) -> bytes:
    """SHA-256 over the public metadata of a query (client id, query id, model, shape,
    frac_bits), length-prefixed field by field; identical on every server for an honest
    client."""
    h = hashlib.sha256(b"crypten-lite inference query v1")
    for part in (client_id.encode(), bytes(query.query_id), query.model.encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    h.update(np.asarray([len(query.shape), *query.shape, query.frac_bits], dtype="<i8").tobytes())
    return h.digest()


class _State(enum.Enum):
    PENDING = "pending"  # admitted, not yet taken by the serving loop
    CLAIMED = "claimed"  # the serving loop is computing it
    DONE = "done"  # answered or failed


@dataclass(eq=False)
class _Pending:
    key: tuple[str, bytes]
    digest: bytes
    model: str
    share: U64 = field(repr=False)
    state: _State = _State.PENDING
    result: InferenceShare | None = None
    error: EdgeRequestError | None = None
    done: threading.Event = field(default_factory=threading.Event)


class InferenceService:
    """Private inference on one server; install with ``comm.set_edge_handler(service)``.

    ``models`` maps public names to encrypted modules (the same on every server).
    ``input_shapes[name]`` is the public per-sample shape of ``name``; a query must have the
    shape ``(batch, *input_shapes[name])`` with ``1 <= batch <= max_batch`` (send ``x[None]``
    for one sample). ``query_timeout_s`` bounds how long an ``infer`` call waits for its
    output; ``match_timeout_s`` (default a third of it) how long a follower waits for a query
    the leader announced. ``allowed_clients``: client identities admitted (None: any).

    A client must send its ``k`` queries concurrently: no server can answer before all ``k``
    servers hold their part of the input.
    """

    def __init__(
        self,
        session: Session,
        models: Mapping[str, Module],
        *,
        input_shapes: Mapping[str, tuple[int, ...]],
        query_timeout_s: float = 30.0,
        match_timeout_s: float | None = None,
        heartbeat_s: float = 0.25,
        max_batch: int = 256,
        batch_window_s: float = 0.005,
        max_pending: int = 1024,
        allowed_clients: Collection[str] | None = None,
    ) -> None:
        if session.world_size < 2:
            raise ConfigError("private inference needs at least 2 servers")
        if not models:
            raise ConfigError("models must name at least one model")
        for name, model in models.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"model names must be non-empty str, got {name!r}")
            if not isinstance(model, Module) or not model.encrypted:
                raise ConfigError(
                    f"models[{name!r}] must be an encrypted crypten_lite.nn.Module "
                    "(call model.encrypt(src=...) on every server first)"
                )
            if name not in input_shapes:
                raise ConfigError(f"input_shapes has no entry for model {name!r}")
            shape = input_shapes[name]
            if not isinstance(shape, tuple) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
            ):
                raise ConfigError(
                    f"input_shapes[{name!r}] must be a tuple of positive ints, got {shape!r}"
                )
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch must be a positive int, got {max_batch!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError(f"max_pending must be a positive int, got {max_pending!r}")
        if not 0 <= batch_window_s < heartbeat_s:
            raise ConfigError(
                f"batch_window_s must lie in [0, heartbeat_s = {heartbeat_s:g}), "
                f"got {batch_window_s!r}"
            )
        if not query_timeout_s > 0:
            raise ConfigError(f"query_timeout_s must be positive, got {query_timeout_s!r}")
        match = query_timeout_s / 3 if match_timeout_s is None else match_timeout_s
        comm_timeout = session.comm.timeout_s
        if not 0 < match < comm_timeout:
            raise ConfigError(
                f"match_timeout_s must lie in (0, {comm_timeout:g}) (the communicator's "
                f"receive timeout), got {match!r}"
            )
        if not 0 < heartbeat_s < comm_timeout / 2:
            raise ConfigError(
                f"heartbeat_s must lie in (0, {comm_timeout / 2:g}), got {heartbeat_s!r}"
            )
        self.session = session
        self.models = dict(models)
        self.input_shapes = {name: tuple(input_shapes[name]) for name in self.models}
        self.query_timeout_s = float(query_timeout_s)
        self.match_timeout_s = float(match)
        self.heartbeat_s = float(heartbeat_s)
        self.max_batch = max_batch
        self.batch_window_s = float(batch_window_s)
        self.max_pending = max_pending
        self.allowed_clients = None if allowed_clients is None else frozenset(allowed_clients)
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, bytes], _Pending] = {}  # admission order
        self._by_digest: dict[bytes, _Pending] = {}
        self._seen: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._stop = threading.Event()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"InferenceService(rank={self.session.rank}, models={sorted(self.models)}, "
            f"pending={len(self._pending)})"
        )

    # -- InferenceHandler -------------------------------------------------------------------
    def infer(self, client_id: str, query: InferenceQuery) -> InferenceShare:
        """Validate and queue ``query``, then wait (at most ``query_timeout_s``) for this
        server's share of the output. Refusals: INVALID (unknown model, wrong shape,
        frac_bits or share part), DUPLICATE (same client and query id seen before), STALE
        (no output in time, or not every server received the query), UNAVAILABLE (the
        service has stopped)."""
        check_client(client_id, self.allowed_clients)
        share = self._input_share(query)
        entry = _Pending(
            key=(client_id, bytes(query.query_id)),
            digest=query_digest(client_id, query),
            model=query.model,
            share=share,
        )
        with self._cond:
            if self._closed:
                raise EdgeRequestError(
                    EdgeRefusal.UNAVAILABLE, "this server has stopped serving inference"
                )
            if entry.key in self._seen:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, "this client already sent a query with this id"
                )
            if len(self._pending) >= self.max_pending:
                raise EdgeRequestError(
                    EdgeRefusal.UNAVAILABLE,
                    f"server busy: {len(self._pending)} queries are queued; retry later",
                )
            self._seen[entry.key] = None
            if len(self._seen) > _MAX_REMEMBERED:
                self._seen.popitem(last=False)
            self._pending[entry.key] = entry
            self._by_digest[entry.digest] = entry
            self._cond.notify_all()
        if not entry.done.wait(self.query_timeout_s):
            with self._cond:
                if entry.state is _State.PENDING:
                    self._drop(entry)
                entry.state = _State.DONE
            raise EdgeRequestError(
                EdgeRefusal.STALE,
                f"no output within {self.query_timeout_s:g}s (the servers are busy or not "
                "every server received the query)",
            )
        if entry.error is not None:
            raise entry.error
        return cast(InferenceShare, entry.result)  # DONE without error: the result is set

    def _input_share(self, query: InferenceQuery) -> U64:
        """This server's share of the input, shaped, after checking the public metadata."""
        if not isinstance(query.query_id, bytes) or not 1 <= len(query.query_id) <= 64:
            raise EdgeRequestError(EdgeRefusal.INVALID, "query_id must be 1 to 64 bytes")
        sample = self.input_shapes.get(query.model)
        if sample is None:
            raise EdgeRequestError(
                EdgeRefusal.INVALID, f"unknown model {query.model!r}; served: {sorted(self.models)}"
            )
        shape = tuple(query.shape)
        if len(shape) != len(sample) + 1 or shape[1:] != sample:
            raise EdgeRequestError(
                EdgeRefusal.INVALID,
                f"model {query.model!r} takes inputs of shape (batch, *{sample}), got {shape}",
            )
        if not 1 <= shape[0] <= self.max_batch:
            raise EdgeRequestError(
                EdgeRefusal.INVALID, f"batch must lie in [1, {self.max_batch}], got {shape[0]}"
            )
        precision = self.session.config.precision
        if query.frac_bits != precision:
            raise EdgeRequestError(
                EdgeRefusal.INVALID,
                f"frac_bits must be {precision} (the servers' precision), got {query.frac_bits}",
            )
        size = math.prod(shape)
        seed_server = self.session.rank < self.session.world_size - 1
        if (query.seed is None) == (query.vector is None):
            raise EdgeRequestError(EdgeRefusal.INVALID, "exactly one of seed and vector is needed")
        if seed_server:
            if query.seed is None or len(query.seed) != SEED_SIZE:
                raise EdgeRequestError(
                    EdgeRefusal.INVALID,
                    f"server {self.session.rank} expects a {SEED_SIZE}-byte seed "
                    f"(the masked vector goes to server {self.session.world_size - 1})",
                )
            flat = np.asarray(expand_seed(bytes(query.seed), size, 64), dtype=np.uint64)
        else:
            vector = query.vector
            if (
                vector is None
                or not isinstance(vector, np.ndarray)
                or vector.dtype != np.uint64
                or vector.size != size
            ):
                raise EdgeRequestError(
                    EdgeRefusal.INVALID,
                    f"server {self.session.rank} expects the masked vector: {size} uint64 values",
                )
            flat = vector.reshape(-1).copy()
        return flat.reshape(shape)

    def _drop(self, entry: _Pending) -> None:  # caller holds the lock
        self._pending.pop(entry.key, None)
        if self._by_digest.get(entry.digest) is entry:
            del self._by_digest[entry.digest]

    def _finish(
        self,
        entry: _Pending,
        result: InferenceShare | None = None,
        error: EdgeRequestError | None = None,
    ) -> None:
        with self._cond:
            self._drop(entry)
            entry.result, entry.error, entry.state = result, error, _State.DONE
        entry.done.set()

    # -- serving loop -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the serving loop to end; every server ends after the current step (this
        server's vote reaches the others in-band). Thread-safe."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """How many admitted queries wait for the serving loop on this server."""
        with self._cond:
            return len(self._pending)

    def serve(self, max_queries: int | None = None, idle_timeout_s: float | None = None) -> int:
        """Serve queries in lockstep with the other servers until ``max_queries`` were
        answered, no query arrived for ``idle_timeout_s`` on some server, or :meth:`stop` was
        called on some server; returns how many queries were answered. Every server must
        call it (the leader, rank 0, chooses the order). A stop or idle timeout closes the
        service (later queries: UNAVAILABLE); reaching ``max_queries`` does not, so
        ``serve`` may be called again."""
        if max_queries is not None and (isinstance(max_queries, bool) or max_queries < 0):
            raise ConfigError(f"max_queries must be an int >= 0, got {max_queries!r}")
        served = 0
        last_busy = time.monotonic()
        if max_queries == 0:
            return 0
        try:
            while True:
                announced, entries = self._announce()
                if announced:
                    last_busy = time.monotonic()
                idle = idle_timeout_s is not None and time.monotonic() - last_busy >= idle_timeout_s
                closing = self._stop.is_set() or (idle and not announced)
                vote = np.asarray(
                    [int(closing), *(int(e is not None) for e in entries)], dtype=np.int64
                )
                votes = [np.asarray(v, dtype=np.int64) for v in self.session.comm.all_gather(vote)]
                if any(v.shape != vote.shape for v in votes):
                    raise CommunicationError("a server voted on another batch of queries")
                held = [all(int(v[1 + i]) == 1 for v in votes) for i in range(len(entries))]
                batch = [e for e, ok in zip(entries, held, strict=True) if e is not None and ok]
                for e, ok in zip(entries, held, strict=True):
                    if e is not None and not ok:
                        self._finish(e, error=_refusal(_MISSING))
                if batch:
                    served += self._run(batch)
                if any(int(v[0]) == 1 for v in votes):
                    self._close()
                    return served
                if max_queries is not None and served >= max_queries:
                    return served  # every server answered the same queries: all stop here
        except BaseException:
            self._close()
            raise

    def _announce(self) -> tuple[bool, list[_Pending | None]]:
        """Steps 1-2: the leader broadcasts a batch of pending queries (or IDLE); a follower
        receives it and claims its own copies. Returns (queries were announced, per announced
        query the claimed entry or None)."""
        comm = self.session.comm
        if self.session.rank == _LEADER:
            claimed = self._claim_batch()
            control = np.zeros(2 + 4 * len(claimed), dtype=np.int64)
            if claimed:
                control[0], control[1] = CONTROL_QUERY, len(claimed)
                for i, entry in enumerate(claimed):
                    control[2 + 4 * i : 6 + 4 * i] = np.frombuffer(entry.digest, dtype="<i8")
            comm.broadcast(control, _LEADER)
            return bool(claimed), list(claimed)
        control = np.asarray(comm.broadcast(None, _LEADER), dtype=np.int64)
        if (
            control.ndim != 1
            or control.size < 2
            or int(control[0]) not in (CONTROL_IDLE, CONTROL_QUERY)
            or control.size != 2 + 4 * int(control[1])
            or (int(control[0]) == CONTROL_QUERY) != (int(control[1]) > 0)
        ):
            raise CommunicationError("the leader sent a malformed inference control message")
        if int(control[0]) == CONTROL_IDLE:
            return False, []
        digests = [
            control[2 + 4 * i : 6 + 4 * i].astype("<i8").tobytes() for i in range(int(control[1]))
        ]
        return True, self._claim_digests(digests)

    def _claim_batch(self) -> list[_Pending]:
        """The leader's batch: the oldest pending query, then (after ``batch_window_s``)
        every later pending query of the same model while the rows fit ``max_batch``."""
        with self._cond:
            self._cond.wait_for(
                lambda: bool(self._pending) or self._stop.is_set(), self.heartbeat_s
            )
            if not self._pending or self.batch_window_s <= 0:
                return self._take_batch()
        time.sleep(self.batch_window_s)  # let concurrent queries join the batch
        with self._cond:
            return self._take_batch()

    def _take_batch(self) -> list[_Pending]:  # caller holds the lock
        batch: list[_Pending] = []
        rows = 0
        for entry in self._pending.values():
            if entry.state is not _State.PENDING:
                continue
            if batch and entry.model != batch[0].model:
                continue
            size = int(entry.share.shape[0])
            if rows + size > self.max_batch:
                break
            entry.state = _State.CLAIMED
            batch.append(entry)
            rows += size
        return batch

    def _claim_digests(self, digests: list[bytes]) -> list[_Pending | None]:
        deadline = time.monotonic() + self.match_timeout_s
        with self._cond:
            self._cond.wait_for(
                lambda: all(d in self._by_digest for d in digests) or self._stop.is_set(),
                max(0.0, deadline - time.monotonic()),
            )
            out: list[_Pending | None] = []
            for digest in digests:
                entry = self._by_digest.get(digest)
                if entry is None or entry.state is not _State.PENDING:
                    out.append(None)
                    continue
                entry.state = _State.CLAIMED
                out.append(entry)
            return out

    def _run(self, batch: list[_Pending]) -> int:
        """Step 4 for queries every server holds (one model): one model evaluation over the
        stacked inputs; each query answered with its own rows. Returns how many were
        answered."""
        session = self.session
        precision = session.config.precision
        try:
            stacked = np.concatenate([entry.share for entry in batch], axis=0)
            x = MPCTensor.from_shares(stacked, precision=precision, session=session)
            y = self.models[batch[0].model](x)
            if not isinstance(y, MPCTensor) or y.ptype != x.ptype or y.shape[0] != x.shape[0]:
                raise TypeError("the model did not return an arithmetic MPCTensor per sample")
            out = np.add(y.share, session.zeros.arithmetic(y.shape), dtype=np.uint64)
        except CommunicationError:
            for entry in batch:
                self._finish(entry, error=_refusal("a server was lost while running the model"))
            raise
        except Exception as err:  # the same on every server: shapes and types are public
            error = EdgeRequestError(
                EdgeRefusal.INVALID, f"the model failed on this input ({type(err).__name__})"
            )
            for entry in batch:
                self._finish(entry, error=error)
            return 0
        start = 0
        for entry in batch:
            rows = int(entry.share.shape[0])
            share = np.ascontiguousarray(out[start : start + rows])
            start += rows
            self._finish(
                entry,
                result=InferenceShare(
                    query_id=entry.key[1], shape=share.shape, frac_bits=y.precision, share=share
                ),
            )
        return len(batch)

    def _close(self) -> None:
        """Refuse new queries and fail the waiting ones (STALE)."""
        with self._cond:
            self._closed = True
            waiting = list(self._pending.values())
        for entry in waiting:
            self._finish(entry, error=_refusal("the servers stopped serving inference"))


def _refusal(message: str) -> EdgeRequestError:
    """A STALE refusal: not retried by the client SDK (a retry would be a DUPLICATE)."""
    return EdgeRequestError(EdgeRefusal.STALE, message)
