"""The client side of single-server secure aggregation (SecAgg, Bonawitz et al., CCS 2017;
SecAgg+, Bell et al., CCS 2020): one :class:`ServerLink` to the one server.

Per round (:meth:`SecAggClient.run_round`, or the four stage methods for a caller that drives
the stages itself): advertise two fresh X25519 public keys; Shamir-share (``t`` of ``d``) the
self-mask seed and the mask private key among the neighbours the server names, each pair of
shares sealed with AES-GCM for its neighbour; upload ``y = x + PRG(b) + Σ ±PRG(s_uv)`` over
the neighbours that shared keys; answer the unmasking with self-mask shares of surviving
neighbours and mask-key shares of dropped ones.

What the client refuses (``SecAggProtocolError``, nothing sent): a threshold that does not
satisfy ``d/2 < t <= d``, a neighbour list with itself or duplicates, an unmasking request
that names a neighbour as both survivor and dropped or one it never masked with, and a second
unmasking request in a round (a client reveals at most one kind of share per neighbour). A
relayed share that fails authentication is not used; its sender is reported to the server in
the masked upload (``complaints``) and the round goes on.

Cost (``d`` neighbours, ``m`` elements): ``2d`` X25519 exchanges, ``2d`` Shamir evaluations of
degree ``t-1``, ``d + 1`` keystreams of ``m·ring_bits/8`` bytes and ``d + 1`` vector additions;
upload ``m·ring_bits/8`` + ``~(SEALED_SIZE + 10)·d + 100`` bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite.client.config import ClientConfig
from crypten_lite.client.edge_client import connect_links, poll_round
from crypten_lite.client.links import ServerLink
from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, RoundInfo, RoundState
from crypten_lite.edge.secagg_crypto import (
    RoundKeys,
    ShareAuthenticationError,
    commit_seed,
    mask_sign,
    open_shares,
    pair_seed,
    round_context,
    seal_shares,
    share_key,
)
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
from crypten_lite.edge.shamir import SHARE_SIZE, decode_share, encode_share, share_secret
from crypten_lite.edge.shares import expand_seed
from crypten_lite.errors import ConfigError, EncodingError, PeerTimeoutError, ProtocolError
from crypten_lite.ring.prg import new_seed

__all__ = [
    "LONG_POLL_S",
    "SecAggClient",
    "SecAggProtocolError",
    "SecAggReport",
    "SecAggRoundFailed",
]

#: how long one state request asks the server to wait for the stage to change.
LONG_POLL_S = 10.0

class SecAggProtocolError(ProtocolError):
    """The server asked for something the protocol forbids; the client sent nothing."""


class SecAggRoundFailed(ProtocolError):
    """The round failed (or this client is out of it); the server's reason is the message."""


@dataclass(frozen=True)
class SecAggReport:
    """One round as this client saw it. ``cpu_seconds``: this thread's CPU time in the four
    stages (keys, sharing, masking, unmasking), without polling; bytes are serialized
    requests and state replies (no gRPC/TLS framing); ``polls``: state requests made by
    :meth:`SecAggClient.wait_for_stage`."""

    round: int
    index: int
    stage: SecAggStage
    neighbours: int
    upload_bytes: int
    masked_bytes: int
    download_bytes: int
    plaintext_bytes: int
    cpu_seconds: float
    complaints: tuple[int, ...]
    polls: int = 0


class _Secrets:
    """One round's secrets of this client (never printed)."""

    __slots__ = (
        "answered",
        "complaints",
        "context",
        "index",
        "info",
        "keys",
        "masked_with",
        "neighbours",
        "received",
        "seed",
        "threshold",
    )

    def __init__(self, info: RoundInfo) -> None:
        self.info = info
        self.context = round_context(info.job_id, info.round)
        self.keys = RoundKeys()
        self.seed = b""
        self.index = 0
        self.threshold = 0
        self.neighbours: dict[int, NeighbourKey] = {}
        self.received: dict[int, tuple[int, int]] = {}  # neighbour -> (seed share, key share)
        self.masked_with: tuple[int, ...] = ()
        self.complaints: tuple[int, ...] = ()
        self.answered = False

    def __repr__(self) -> str:
        return f"_Secrets(round={self.info.round}, <hidden>)"


class SecAggClient:
    """A client of one single-server job (``link`` reaches the server)."""

    def __init__(self, link: ServerLink, *, poll_s: float = 0.05) -> None:
        self.link = link
        self.poll_s = poll_s
        self._round: _Secrets | None = None
        self._cpu = 0.0
        self._sent = 0
        self._masked = 0
        self._received_at_start = 0
        self._polls = 0

    @classmethod
    def connect(cls, config: ClientConfig) -> SecAggClient:
        """Open the link to the job's one server (mutual TLS or token)."""
        if len(config.servers) != 1:
            raise ConfigError(
                f"single-server aggregation needs exactly 1 server, the config lists "
                f"{len(config.servers)} (use EdgeClient)"
            )
        return cls(connect_links(config)[0])

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> SecAggClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def round_info(self) -> RoundInfo:
        return self.link.round_info()

    def wait_for_round(self, after: int = -1, timeout: float = 60.0) -> RoundInfo:
        """Poll until a round ``> after`` is OPEN (keys being advertised) or the job FINISHED."""
        return poll_round(self.link.round_info, after, timeout, self.poll_s)

    # -- the four stages ----------------------------------------------------------------------
    def advertise(self, info: RoundInfo) -> int:
        """Make this round's keys and advertise them; request bytes."""
        started = time.thread_time()
        if info.num_servers != 1:
            raise ConfigError(
                f"the job is shared among {info.num_servers} servers; use EdgeClient"
            )
        if info.state is not RoundState.OPEN:
            raise SecAggRoundFailed(f"round {info.round} is not open for keys")
        secrets_ = _Secrets(info)
        self._round, self._cpu, self._sent, self._masked = secrets_, 0.0, 0, 0
        self._received_at_start = self._received()
        self._polls = 0
        advert = KeyAdvert(info.round, secrets_.keys.cipher_public, secrets_.keys.mask_public)
        self._cpu += time.thread_time() - started
        size = self._send(lambda: self.link.advertise(advert))
        self._sent += size
        return size

    def share_keys(self, state: SecAggState) -> int:
        """Shamir-share the self-mask seed and the mask key among the neighbours."""
        started = time.thread_time()
        own = self._expect(state, SecAggStage.SHARE_KEYS)
        neighbours = _check_neighbours(state)
        own.index, own.threshold = state.index, state.threshold
        own.neighbours = {n.index: n for n in neighbours}
        own.seed = new_seed()
        xs = [n.index for n in neighbours]
        seed_shares = share_secret(own.seed, xs, state.threshold)
        key_shares = share_secret(own.keys.mask_secret(), xs, state.threshold)
        shares = []
        for n, b_share, k_share in zip(neighbours, seed_shares, key_shares, strict=True):
            key = share_key(
                own.keys.cipher_private, n.cipher_public, own.context, own.index, n.index
            )
            sealed = seal_shares(
                key, own.context, own.index, n.index, encode_share(b_share) + encode_share(k_share)
            )
            shares.append(EncryptedShare(own.index, n.index, sealed))
        upload = ShareKeysUpload(
            state.round, commit_seed(own.context, own.index, own.seed), tuple(shares)
        )
        self._cpu += time.thread_time() - started
        size = self._send(lambda: self.link.share_keys(upload))
        self._sent += size
        return size

    def masked_input(self, state: SecAggState, x: npt.ArrayLike) -> int:
        """Open the relayed shares, mask the encoded update ``x`` and upload it."""
        started = time.thread_time()
        own = self._expect(state, SecAggStage.MASKED_INPUT)
        info = own.info
        shared = tuple(state.shared)
        if len(set(shared)) != len(shared) or not set(shared) <= set(own.neighbours):
            raise SecAggProtocolError("the server lists a sharing neighbour this client never had")
        if len(shared) < own.threshold:
            raise SecAggRoundFailed(
                f"only {len(shared)} neighbours shared keys, fewer than the threshold "
                f"{own.threshold}"
            )
        own.received, own.complaints = self._open_inbox(own, state, set(shared))
        ring = encode_update(x, info.quant, info.ring_bits)
        if ring.size != info.num_elements:
            raise EncodingError(
                f"x has {ring.size} values; round {info.round} expects {info.num_elements}"
            )
        masked = ring + expand_seed(own.seed, info.num_elements, info.ring_bits)
        mask_key = own.keys.mask_private
        for v in shared:
            seed = pair_seed(mask_key, own.neighbours[v].mask_public, own.context, own.index, v)
            mask = expand_seed(seed, info.num_elements, info.ring_bits)
            if mask_sign(own.index, v) > 0:
                np.add(masked, mask, out=masked)
            else:
                np.subtract(masked, mask, out=masked)
        own.masked_with = shared
        upload = MaskedUpload(
            state.round, info.num_elements, info.ring_bits, masked, own.complaints
        )
        self._cpu += time.thread_time() - started
        size = self._send(lambda: self.link.submit_masked(upload))
        self._sent += size
        self._masked = size
        return size

    def _open_inbox(
        self, own: _Secrets, state: SecAggState, shared: set[int]
    ) -> tuple[dict[int, tuple[int, int]], tuple[int, ...]]:
        received: dict[int, tuple[int, int]] = {}
        complaints: list[int] = []
        for item in state.inbox:
            sender = item.sender
            if sender not in shared or item.receiver != own.index or sender in received:
                raise SecAggProtocolError(f"the server relayed an unexpected share from {sender}")
            key = share_key(
                own.keys.cipher_private,
                own.neighbours[sender].cipher_public,
                own.context,
                own.index,
                sender,
            )
            try:
                plain = open_shares(key, own.context, sender, own.index, item.sealed)
                received[sender] = (
                    decode_share(plain[:SHARE_SIZE]),
                    decode_share(plain[SHARE_SIZE:]),
                )
            except (ShareAuthenticationError, ProtocolError):
                complaints.append(sender)  # not used; reported to the server
        return received, tuple(sorted(complaints))

    def unmask(self, state: SecAggState) -> int:
        """Reveal self-mask shares of surviving and mask-key shares of dropped neighbours
        (once per round; see the module doc for what is refused)."""
        started = time.thread_time()
        own = self._expect(state, SecAggStage.UNMASK)
        if own.answered:
            raise SecAggProtocolError(f"already answered the unmasking of round {state.round}")
        survivors, dropped = set(state.survivors), set(state.dropped)
        if survivors & dropped:
            raise SecAggProtocolError(
                f"the server names client(s) {sorted(survivors & dropped)[:8]} both survivor "
                "and dropped: refusing to reveal both shares"
            )
        if not (survivors | dropped) <= set(own.masked_with):
            raise SecAggProtocolError(
                "the server asks for shares of clients this client did not mask with"
            )
        if len(state.survivors) != len(survivors) or len(state.dropped) != len(dropped):
            raise SecAggProtocolError("the unmasking request repeats a client")
        own.answered = True
        upload = UnmaskUpload(
            state.round,
            seed_shares=_pick(own.received, survivors, 0),
            key_shares=_pick(own.received, dropped, 1),
        )
        self._cpu += time.thread_time() - started
        size = self._send(lambda: self.link.unmask(upload))
        self._sent += size
        return size

    def _send(self, call: Callable[[], int]) -> int:
        """One upload; a STALE refusal (the stage closed, or this client is out of the
        round) becomes :class:`SecAggRoundFailed` with the server's reason."""
        try:
            return call()
        except EdgeRequestError as err:
            if err.refusal is EdgeRefusal.STALE:
                raise SecAggRoundFailed(err.detail) from err
            raise

    def _expect(self, state: SecAggState, stage: SecAggStage) -> _Secrets:
        own = self._round
        if own is None or state.round != own.info.round:
            raise SecAggProtocolError(f"no keys were advertised for round {state.round}")
        if state.stage is SecAggStage.FAILED:
            raise SecAggRoundFailed(state.failure or f"round {state.round} failed")
        if state.stage is not stage:
            raise SecAggProtocolError(
                f"round {state.round} is at stage {state.stage.value}, not {stage.value}"
            )
        if state.failure:
            raise SecAggRoundFailed(state.failure)
        if state.index < 1 or (own.index and state.index != own.index):
            raise SecAggRoundFailed(f"this client is not part of round {state.round}")
        return own

    # -- driving a round ----------------------------------------------------------------------
    def wait_for_stage(self, round_number: int, stage: SecAggStage, timeout: float) -> SecAggState:
        """Long-poll until round ``round_number`` reaches ``stage`` (or later); FAILED raises.
        Each request asks the server to answer when the stage changes (at most
        :data:`LONG_POLL_S` later); a server that answers sooner without a change (its
        waiting budget is used up) is polled with backoff from ``poll_s`` to 0.5 s."""
        deadline = time.monotonic() + timeout
        delay = self.poll_s
        # stages advance in order: until told otherwise, the round is at the one before
        known: SecAggStage | None = stage.previous
        while True:
            asked = time.monotonic()
            wait_s = 0.0 if known is None else max(0.0, min(LONG_POLL_S, deadline - asked))
            state = self.link.secagg_state(round_number, known, wait_s)
            self._polls += 1
            if state.round != round_number:
                raise SecAggProtocolError(f"asked for round {round_number}, got {state.round}")
            if state.stage is SecAggStage.FAILED:
                raise SecAggRoundFailed(state.failure or f"round {round_number} failed")
            if state.stage.position > stage.position and stage is not SecAggStage.DONE:
                raise SecAggRoundFailed(
                    f"round {round_number} moved past {stage.value} without this client"
                    + (f": {state.failure}" if state.failure else "")
                )
            if state.stage is stage:
                return state
            now = time.monotonic()
            if now >= deadline:
                raise PeerTimeoutError(
                    f"round {round_number} did not reach {stage.value} within {timeout:g}s"
                )
            if known is not None and state.stage is known and now - asked < wait_s / 2:
                time.sleep(min(delay, max(0.0, deadline - now)))  # the server did not wait
                delay = min(2 * delay, 0.5)
            known = state.stage

    def run_round(
        self, x: npt.ArrayLike, info: RoundInfo, *, timeout: float = 120.0
    ) -> SecAggReport:
        """All four stages for ``info.round`` with update ``x``; returns when the server
        holds the aggregate (DONE). Raises :class:`SecAggRoundFailed` if the round fails."""
        self.advertise(info)
        number = info.round
        self.share_keys(self.wait_for_stage(number, SecAggStage.SHARE_KEYS, timeout))
        self.masked_input(self.wait_for_stage(number, SecAggStage.MASKED_INPUT, timeout), x)
        self.unmask(self.wait_for_stage(number, SecAggStage.UNMASK, timeout))
        final = self.wait_for_stage(number, SecAggStage.DONE, timeout)
        return self.report(final.stage)

    def _received(self) -> int:
        return self.link.received_bytes

    def report(self, stage: SecAggStage) -> SecAggReport:
        """What this round cost so far."""
        own = self._round
        if own is None:
            raise ConfigError("no round was started")
        info = own.info
        return SecAggReport(
            round=info.round,
            index=own.index,
            stage=stage,
            neighbours=len(own.neighbours),
            upload_bytes=self._sent,
            masked_bytes=self._masked,
            download_bytes=self._received() - self._received_at_start,
            plaintext_bytes=info.num_elements * info.ring_bits // 8,
            cpu_seconds=self._cpu,
            complaints=own.complaints,
            polls=self._polls,
        )


def _check_neighbours(state: SecAggState) -> list[NeighbourKey]:
    neighbours = list(state.neighbours)
    indices = [n.index for n in neighbours]
    if state.index in indices or len(set(indices)) != len(indices) or not neighbours:
        raise SecAggProtocolError("the neighbour list is empty, repeats a client or names this one")
    d, t = len(neighbours), state.threshold
    if isinstance(t, bool) or not isinstance(t, int) or t < 2 or not d < 2 * t <= 2 * d:
        raise SecAggProtocolError(
            f"threshold {t} with {d} neighbours is unsafe (needs 2 <= t, neighbours/2 < t <= "
            "neighbours: one neighbour alone must never hold enough shares)"
        )
    keys = [n.mask_public for n in neighbours] + [n.cipher_public for n in neighbours]
    if len(set(keys)) != len(keys):
        raise SecAggProtocolError("two neighbours share a public key")
    return neighbours


def _pick(
    received: dict[int, tuple[int, int]], wanted: set[int], which: int
) -> tuple[tuple[int, bytes], ...]:
    """The encoded shares (``which``: 0 self-mask seed, 1 mask key) held for ``wanted``."""
    return tuple((v, encode_share(received[v][which])) for v in sorted(wanted) if v in received)
