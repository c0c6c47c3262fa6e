"""One round of single-server secure aggregation on the server: who answered which stage,
and every check on what they sent (the stages of :mod:`crypten_lite.edge.secagg_messages`).

Sets (Bonawitz et al., CCS 2017): ``U1`` advertised keys, ``U2`` shared keys, ``U3`` sent a
masked input, ``U4`` answered the unmasking. Each stage is closed by the round loop (after
everyone expected answered, or at the deadline); an answer for a closed stage is ``STALE``,
a second answer ``DUPLICATE``, a malformed one ``INVALID`` naming the problem. A refused
answer leaves the round as it was. When a stage closes with fewer than ``min_clients``
clients, or a client's secrets could no longer be rebuilt, the round is ``FAILED``: every
client's next state carries the same reason.

Rules that keep an individual update hidden:

* the masked input of a client is accepted only while ``MASKED_INPUT`` is open; after it
  closes ``U3`` is fixed, so a client is named *dropped* (its mask key may be rebuilt) only
  if its masked input never entered the sum — a late upload is refused, not added;
* a client is asked for self-mask shares of survivors and mask-key shares of dropped
  neighbours only, and an answer carrying any other share is refused;
* :meth:`SecAggRound.mask_key_points` refuses to hand out mask-key shares of a client in
  ``U3`` (a defence in depth against a bug in the sets above).

Thread-safe: gRPC worker threads answer, the round loop closes stages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, check_client, invalid
from crypten_lite.edge.messages import ring_dtype as ring_dtype_of
from crypten_lite.edge.secagg_crypto import KEY_SIZE, SEALED_SIZE, check_public_key
from crypten_lite.edge.secagg_messages import (
    EncryptedShare,
    KeyAdvert,
    MaskedUpload,
    NeighbourKey,
    SecAggStage,
    SecAggState,
    ShareKeysUpload,
    UnmaskUpload,
)
from crypten_lite.edge.secagg_params import SecAggParams, neighbour_graph
from crypten_lite.edge.shamir import SHARE_SIZE, decode_share
from crypten_lite.errors import ConfigError, ProtocolError

__all__ = ["Participant", "SecAggRound"]

U64 = npt.NDArray[np.uint64]


@dataclass
class Participant:
    """What the server holds about one client in one round (public keys, sealed shares it
    relays, the shares it was asked for)."""

    client_id: str
    cipher_public: bytes
    mask_public: bytes
    index: int = 0
    neighbours: tuple[int, ...] = ()
    commitment: bytes = b""
    outgoing: dict[int, bytes] = field(default_factory=dict)  # receiver -> sealed
    shared: tuple[int, ...] = ()  # neighbours in U2 (after SHARE_KEYS closed)
    masked: bool = False
    complaints: tuple[int, ...] = ()
    seed_shares: dict[int, int] = field(default_factory=dict)  # neighbour -> share value
    key_shares: dict[int, int] = field(default_factory=dict)
    unmasked: bool = False

    def __repr__(self) -> str:
        return f"Participant({self.client_id!r}, index={self.index})"


class SecAggRound:
    """The server side of one round (see the module doc)."""

    def __init__(
        self,
        *,
        round_number: int,
        num_elements: int,
        ring_bits: int,
        params: SecAggParams,
        min_clients: int,
        allowed_clients: frozenset[str] | None = None,
    ) -> None:
        self.round = round_number
        self.num_elements = num_elements
        self.ring_bits = ring_bits
        self.params = params
        self.min_clients = min_clients
        self.allowed = allowed_clients
        self._dtype = ring_dtype_of(ring_bits)
        mutex = threading.Lock()
        self._lock = threading.Condition(mutex)  # answers arrived (the round loop waits)
        self._stage_changed = threading.Condition(mutex)  # long polls of clients wait
        self.stage = SecAggStage.ADVERTISE
        self.failure = ""
        self.threshold = 0
        self.by_id: dict[str, Participant] = {}
        self.by_index: dict[int, Participant] = {}
        self.pruned: tuple[str, ...] = ()  # in U2 but with fewer than t neighbours in U2
        self.running_sum = np.zeros(num_elements, np.uint64)
        self.cpu_s = 0.0
        self.unmask_closed = False
        self._keys_seen: set[bytes] = set()

    # -- helpers ---------------------------------------------------------------------------
    def _expect(self, client_id: str, round_number: int, stage: SecAggStage) -> Participant | None:
        """Checks shared by every answer (caller holds the lock); the participant, if any."""
        check_client(client_id, self.allowed)
        if round_number != self.round or self.stage is not stage:
            raise EdgeRequestError(
                EdgeRefusal.STALE,
                f"round {self.round} is at stage {self.stage.value}; this answer is for "
                f"round {round_number}, stage {stage.value}",
            )
        return self.by_id.get(client_id)

    def _member(self, client_id: str, round_number: int, stage: SecAggStage) -> Participant:
        who = self._expect(client_id, round_number, stage)
        if who is None or who.index == 0:
            raise EdgeRequestError(
                EdgeRefusal.STALE, f"this client is not part of round {self.round}"
            )
        return who

    def _charge(self, started: float) -> None:
        self.cpu_s += time.thread_time() - started

    def in_set(self, stage: SecAggStage) -> list[Participant]:
        """The clients that answered ``stage`` (U1..U4), by index."""
        with self._lock:
            return self._in_set(stage)

    def _in_set(self, stage: SecAggStage) -> list[Participant]:
        people = sorted(self.by_index.values(), key=lambda p: p.index)
        if stage is SecAggStage.ADVERTISE:
            return sorted(self.by_id.values(), key=lambda p: p.client_id)
        if stage is SecAggStage.SHARE_KEYS:
            return [p for p in people if p.commitment]
        if stage is SecAggStage.MASKED_INPUT:
            return [p for p in people if p.masked]
        return [p for p in people if p.unmasked]

    def wait_for(self, stage: SecAggStage, count: int, deadline: float) -> int:
        """Block until ``count`` clients answered ``stage`` or the deadline passed."""
        with self._lock:
            while True:
                done = len(self._in_set(stage))
                left = deadline - time.monotonic()
                if done >= count or left <= 0 or self.stage is not stage:
                    return done
                self._lock.wait(left)

    def fail(self, reason: str) -> None:
        with self._lock:
            if self.stage is not SecAggStage.DONE:
                self.stage, self.failure = SecAggStage.FAILED, reason
            self._lock.notify_all()
            self._stage_changed.notify_all()

    def _advance(self, stage: SecAggStage) -> None:
        self.stage = stage
        self._lock.notify_all()
        self._stage_changed.notify_all()

    # -- stage 1: advertise ----------------------------------------------------------------
    def advertise(self, client_id: str, advert: KeyAdvert) -> None:
        started = time.thread_time()
        try:
            cipher = check_public_key(advert.cipher_public, "cipher_public")
            mask = check_public_key(advert.mask_public, "mask_public")
        except ProtocolError as err:
            raise invalid(str(err)) from None
        if cipher == mask:
            raise invalid("the cipher and mask public keys must differ")
        with self._lock:
            if self._expect(client_id, advert.round, SecAggStage.ADVERTISE) is not None:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, f"already advertised keys for round {self.round}"
                )
            if cipher in self._keys_seen or mask in self._keys_seen:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, "a public key another client already advertised"
                )
            self._keys_seen.update((cipher, mask))
            self.by_id[client_id] = Participant(client_id, cipher, mask)
            self._charge(started)
            self._lock.notify_all()

    def close_advertise(self) -> None:
        """Fix ``U1``: indices 1..n (by client id), the neighbour graph and ``t``."""
        started = time.thread_time()
        with self._lock:
            if self.stage is not SecAggStage.ADVERTISE:
                return
            people = self._in_set(SecAggStage.ADVERTISE)
            if len(people) < max(self.min_clients, 3):
                self._fail_locked(
                    f"only {len(people)} client(s) advertised keys, the round needs "
                    f"{max(self.min_clients, 3)}"
                )
                return
            try:
                degree = self.params.degree(len(people))
                self.threshold = self.params.threshold_for(degree)
            except ConfigError as err:
                self._fail_locked(str(err))
                return
            for index, person in enumerate(people, start=1):
                person.index = index
                self.by_index[index] = person
            graph = neighbour_graph(list(self.by_index), degree)
            for index, person in self.by_index.items():
                person.neighbours = graph[index]
            self._charge(started)
            self._advance(SecAggStage.SHARE_KEYS)

    # -- stage 2: share keys ---------------------------------------------------------------
    def share_keys(self, client_id: str, upload: ShareKeysUpload) -> None:
        started = time.thread_time()
        if not isinstance(upload.seed_commitment, bytes) or len(upload.seed_commitment) != KEY_SIZE:
            raise invalid(f"seed_commitment must be {KEY_SIZE} bytes")
        with self._lock:
            who = self._member(client_id, upload.round, SecAggStage.SHARE_KEYS)
            if who.commitment:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, f"already shared keys for round {self.round}"
                )
            outgoing = _check_shares(who, upload.shares)
            who.outgoing, who.commitment = outgoing, upload.seed_commitment
            self._charge(started)
            self._lock.notify_all()

    def close_share_keys(self) -> None:
        """Fix ``U2``; drop (repeatedly) clients with fewer than ``t`` neighbours in it."""
        started = time.thread_time()
        with self._lock:
            if self.stage is not SecAggStage.SHARE_KEYS:
                return
            alive = {p.index for p in self._in_set(SecAggStage.SHARE_KEYS)}
            pruned: list[str] = []
            first = ""
            changed = True
            while changed:
                changed = False
                for index in sorted(alive):
                    person = self.by_index[index]
                    live = sum(1 for v in person.neighbours if v in alive)
                    if live < self.threshold:
                        first = first or (
                            f"client {index} kept {live} of its {len(person.neighbours)} "
                            f"neighbours, fewer than the threshold {self.threshold}"
                        )
                        alive.discard(index)
                        person.commitment = b""  # out of U2: nobody masks with it
                        pruned.append(person.client_id)
                        changed = True
            self.pruned = tuple(sorted(pruned))
            for index in alive:
                person = self.by_index[index]
                person.shared = tuple(v for v in person.neighbours if v in alive)
            if len(alive) < self.min_clients:
                why = f"too many clients dropped before sharing keys: {first}; " if first else ""
                self._fail_locked(
                    f"{why}only {len(alive)} client(s) shared keys with enough neighbours, "
                    f"the round needs {self.min_clients}"
                )
                return
            self._charge(started)
            self._advance(SecAggStage.MASKED_INPUT)

    # -- stage 3: masked input -------------------------------------------------------------
    def submit_masked(self, client_id: str, upload: MaskedUpload) -> None:
        started = time.thread_time()
        vector = self._check_vector(upload)
        with self._lock:
            who = self._member(client_id, upload.round, SecAggStage.MASKED_INPUT)
            if not who.commitment:
                raise EdgeRequestError(
                    EdgeRefusal.STALE,
                    f"this client's keys were not shared in round {self.round}; its masked "
                    "input cannot be unmasked",
                )
            if who.masked:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, f"already sent a masked input for round {self.round}"
                )
            complaints = tuple(upload.complaints)
            if not set(complaints) <= set(who.shared) or len(set(complaints)) != len(complaints):
                raise invalid("complaints must name distinct neighbours that shared keys")
            np.add(self.running_sum, vector, out=self.running_sum)
            who.masked, who.complaints = True, complaints
            self._charge(started)
            self._lock.notify_all()

    def _check_vector(self, upload: MaskedUpload) -> npt.NDArray[np.unsignedinteger]:
        if upload.ring_bits != self.ring_bits:
            raise invalid(f"ring_bits is {upload.ring_bits!r}, this job uses {self.ring_bits}")
        if upload.num_elements != self.num_elements:
            raise invalid(
                f"num_elements is {upload.num_elements!r}, this job expects {self.num_elements}"
            )
        vector = upload.vector
        if not isinstance(vector, np.ndarray) or vector.dtype != self._dtype:
            got = vector.dtype if isinstance(vector, np.ndarray) else type(vector).__name__
            raise invalid(f"vector dtype is {got}, expected {self._dtype} for this ring")
        if vector.shape != (self.num_elements,):
            raise invalid(f"vector has shape {vector.shape}, expected ({self.num_elements},)")
        return vector

    def close_masked(self) -> None:
        """Fix ``U3``: from now on a masked input is refused (STALE)."""
        with self._lock:
            if self.stage is not SecAggStage.MASKED_INPUT:
                return
            survivors = self._in_set(SecAggStage.MASKED_INPUT)
            if len(survivors) < self.min_clients:
                self._fail_locked(
                    f"only {len(survivors)} client(s) sent a masked input, the round needs "
                    f"{self.min_clients}"
                )
                return
            self._advance(SecAggStage.UNMASK)

    # -- stage 4: unmask -------------------------------------------------------------------
    def unmask(self, client_id: str, upload: UnmaskUpload) -> None:
        started = time.thread_time()
        with self._lock:
            who = self._member(client_id, upload.round, SecAggStage.UNMASK)
            if self.unmask_closed:
                raise EdgeRequestError(
                    EdgeRefusal.STALE, f"the unmasking of round {self.round} is closed"
                )
            if not who.masked:
                raise EdgeRequestError(
                    EdgeRefusal.STALE, f"this client sent no masked input in round {self.round}"
                )
            if who.unmasked:
                raise EdgeRequestError(
                    EdgeRefusal.DUPLICATE, f"already answered the unmasking of round {self.round}"
                )
            survivors = {v for v in who.shared if self.by_index[v].masked}
            dropped = set(who.shared) - survivors
            # both checked before either is kept: a refused answer leaves no shares behind
            seed = _check_unmask_shares(upload.seed_shares, survivors, "self-mask")
            key = _check_unmask_shares(upload.key_shares, dropped, "mask-key")
            who.seed_shares, who.key_shares, who.unmasked = seed, key, True
            self._charge(started)
            self._lock.notify_all()

    def close_unmask(self) -> None:
        """Fix ``U4``: later answers are refused; the round is DONE once unmasked
        (:meth:`complete`)."""
        with self._lock:
            if self.stage is SecAggStage.UNMASK:
                self.unmask_closed = True

    def complete(self) -> None:
        """The aggregate is computed: clients see DONE."""
        with self._lock:
            if self.stage is SecAggStage.UNMASK:
                self._advance(SecAggStage.DONE)

    def seed_points(self, v: Participant) -> list[tuple[int, int]]:
        """The self-mask shares of survivor ``v`` its neighbours sent."""
        return [
            (u, self.by_index[u].seed_shares[v.index])
            for u in v.shared
            if self.by_index[u].unmasked and v.index in self.by_index[u].seed_shares
        ]

    def mask_key_points(self, v: Participant) -> list[tuple[int, int]]:
        """The mask-key shares of dropped ``v``; refused for a client whose masked input is
        in the sum (rebuilding its key would reveal its update)."""
        if v.masked:
            raise ProtocolError(
                f"refusing to rebuild the mask key of client {v.index}: its masked input was "
                "received"
            )
        return [
            (u, self.by_index[u].key_shares[v.index])
            for u in v.shared
            if self.by_index[u].unmasked and v.index in self.by_index[u].key_shares
        ]

    def _fail_locked(self, reason: str) -> None:
        self._advance(SecAggStage.FAILED)
        self.failure = reason

    # -- what each client sees -------------------------------------------------------------
    def state_for(
        self, client_id: str, known: SecAggStage | None = None, wait_s: float = 0.0
    ) -> SecAggState:
        """What ``client_id`` sees now; with ``known`` (the stage it last saw), wait up to
        ``wait_s`` seconds for the stage to change first (a long poll: one call per stage
        instead of a poll every few hundred milliseconds)."""
        with self._lock:
            if known is not None and wait_s > 0:
                deadline = time.monotonic() + wait_s
                while self.stage is known and (left := deadline - time.monotonic()) > 0:
                    self._stage_changed.wait(left)
            started = time.thread_time()
            stage, who = self.stage, self.by_id.get(client_id)
            base = SecAggState(round=self.round, stage=stage, failure=self.failure)
            if who is None or who.index == 0 or stage in (SecAggStage.ADVERTISE,):
                return base
            state = self._view(who, base)
            self._charge(started)
            return state

    def _view(self, who: Participant, base: SecAggState) -> SecAggState:
        stage = base.stage
        neighbours = tuple(
            NeighbourKey(v, self.by_index[v].cipher_public, self.by_index[v].mask_public)
            for v in who.neighbours
        )
        if stage is not SecAggStage.SHARE_KEYS and not who.commitment:
            return SecAggState(
                round=self.round,
                stage=stage,
                index=who.index,
                failure=self.failure
                or f"this client is out of round {self.round}: its keys were not shared in "
                "time, or too few of its neighbours shared theirs",
            )
        if stage is SecAggStage.SHARE_KEYS:
            return SecAggState(
                round=self.round,
                stage=stage,
                index=who.index,
                threshold=self.threshold,
                neighbours=neighbours,
                failure=self.failure,
            )
        inbox = tuple(
            EncryptedShare(v, who.index, self.by_index[v].outgoing[who.index]) for v in who.shared
        )
        survivors: tuple[int, ...] = ()
        dropped: tuple[int, ...] = ()
        if stage in (SecAggStage.UNMASK, SecAggStage.DONE):
            survivors = tuple(v for v in who.shared if self.by_index[v].masked)
            dropped = tuple(v for v in who.shared if not self.by_index[v].masked)
        return SecAggState(
            round=self.round,
            stage=stage,
            index=who.index,
            threshold=self.threshold,
            neighbours=neighbours,
            shared=who.shared,
            inbox=inbox,
            survivors=survivors,
            dropped=dropped,
            failure=self.failure,
        )

    def ids(self, people: Iterable[Participant]) -> tuple[str, ...]:
        return tuple(sorted(p.client_id for p in people))


def _check_shares(who: Participant, shares: tuple[EncryptedShare, ...]) -> dict[int, bytes]:
    """One sealed share from ``who`` to each of its neighbours, nothing else."""
    outgoing: dict[int, bytes] = {}
    wanted = set(who.neighbours)
    for share in shares:
        if share.sender != who.index:
            raise invalid(f"a share names sender {share.sender}; this client is {who.index}")
        if share.receiver not in wanted:
            raise invalid(f"a share for client {share.receiver}, which is not a neighbour")
        if share.receiver in outgoing:
            raise invalid(f"two shares for neighbour {share.receiver}")
        if not isinstance(share.sealed, bytes) or len(share.sealed) != SEALED_SIZE:
            raise invalid(f"a sealed share must be {SEALED_SIZE} bytes")
        outgoing[share.receiver] = share.sealed
    missing = wanted - set(outgoing)
    if missing:
        raise invalid(f"no share for neighbour(s) {sorted(missing)[:8]}")
    return outgoing


def _check_unmask_shares(
    shares: tuple[tuple[int, bytes], ...], allowed: set[int], kind: str
) -> dict[int, int]:
    out: dict[int, int] = {}
    for index, data in shares:
        if index not in allowed:
            raise invalid(
                f"a {kind} share for client {index}, which the server did not ask for"
            )
        if index in out:
            raise invalid(f"two {kind} shares for client {index}")
        if not isinstance(data, bytes) or len(data) != SHARE_SIZE:
            raise invalid(f"a {kind} share must be {SHARE_SIZE} bytes")
        try:
            out[index] = decode_share(data)
        except ProtocolError as err:
            raise invalid(f"the {kind} share for client {index}: {err}") from None
    return out
