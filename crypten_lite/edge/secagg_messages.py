"""Messages of single-server secure aggregation (SecAgg/SecAgg+), independent of the wire.

A round runs in stages (:class:`SecAggStage`); a client polls :class:`SecAggState` (what the
server tells *this* client in the current stage) and answers each stage once:

1. ``ADVERTISE``: :class:`KeyAdvert` (two X25519 public keys).
2. ``SHARE_KEYS``: the state lists the client's index and its neighbours with their keys; the
   client uploads :class:`ShareKeysUpload` (one sealed pair of Shamir shares per neighbour,
   and the commitment to its self-mask seed).
3. ``MASKED_INPUT``: the state lists the neighbours that shared (the client masks with
   exactly these) and relays their sealed shares addressed to it; the client uploads
   :class:`MaskedUpload` (the masked vector; the senders whose share failed authentication).
4. ``UNMASK``: the state lists, among those neighbours, the survivors (masked input received)
   and the dropped; the client uploads :class:`UnmaskUpload` (self-mask shares of survivors,
   mask-key shares of the dropped, never both for one neighbour).

Then ``DONE`` (the server holds the sum) or ``FAILED`` (``failure`` says why, alike for
every client). Clients are named by their round index (1..n, the Shamir x-coordinate).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "WORKING_STAGES",
    "EncryptedShare",
    "KeyAdvert",
    "MaskedUpload",
    "NeighbourKey",
    "SecAggStage",
    "SecAggState",
    "ShareKeysUpload",
    "UnmaskUpload",
]


class SecAggStage(enum.Enum):
    ADVERTISE = "advertise"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    UNMASK = "unmask"
    DONE = "done"
    FAILED = "failed"

    @property
    def position(self) -> int:
        """Where the stage falls in a round: 0..3 for the four working stages, 4 once the
        round ended (DONE or FAILED)."""
        return min(len(WORKING_STAGES), list(SecAggStage).index(self))

    @property
    def previous(self) -> SecAggStage | None:
        """The working stage a round is in just before it reaches this one (None for the
        first, and for FAILED, which may follow any stage)."""
        if self is SecAggStage.FAILED or self is SecAggStage.ADVERTISE:
            return None
        return WORKING_STAGES[self.position - 1]


#: the stages clients answer, in order (then DONE or FAILED).
WORKING_STAGES = (
    SecAggStage.ADVERTISE,
    SecAggStage.SHARE_KEYS,
    SecAggStage.MASKED_INPUT,
    SecAggStage.UNMASK,
)


@dataclass(frozen=True)
class NeighbourKey:
    """A neighbour's round index and public keys (cipher, mask)."""

    index: int
    cipher_public: bytes
    mask_public: bytes


@dataclass(frozen=True)
class EncryptedShare:
    """A sealed pair of Shamir shares (self-mask seed, mask key) from ``sender`` to
    ``receiver``; only the receiver can open it."""

    sender: int
    receiver: int
    sealed: bytes

    def __repr__(self) -> str:
        return f"EncryptedShare({self.sender} -> {self.receiver}, <sealed>)"


@dataclass(frozen=True)
class SecAggState:
    """What the server tells one client about round ``round`` (see the module doc).
    ``index`` is 0 while the client has no index (it did not advertise in time)."""

    round: int
    stage: SecAggStage
    index: int = 0
    threshold: int = 0
    neighbours: tuple[NeighbourKey, ...] = ()
    shared: tuple[int, ...] = ()
    inbox: tuple[EncryptedShare, ...] = ()
    survivors: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    failure: str = ""


@dataclass(frozen=True)
class KeyAdvert:
    round: int
    cipher_public: bytes
    mask_public: bytes


@dataclass(frozen=True)
class ShareKeysUpload:
    round: int
    seed_commitment: bytes
    shares: tuple[EncryptedShare, ...]


@dataclass(frozen=True)
class MaskedUpload:
    """The masked vector ``y_u`` (``uint32``/``uint64`` for a 32/64-bit ring)."""

    round: int
    num_elements: int
    ring_bits: int
    vector: npt.NDArray[np.unsignedinteger]
    complaints: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return (
            f"MaskedUpload(round={self.round}, num_elements={self.num_elements}, "
            f"ring_bits={self.ring_bits}, vector=<hidden>)"
        )


@dataclass(frozen=True)
class UnmaskUpload:
    """Shares the server asked for, as ``(neighbour index, 66-byte share)``."""

    round: int
    seed_shares: tuple[tuple[int, bytes], ...] = field(default=())
    key_shares: tuple[tuple[int, bytes], ...] = field(default=())

    def __repr__(self) -> str:
        return (
            f"UnmaskUpload(round={self.round}, seed_shares={len(self.seed_shares)}, "
            f"key_shares={len(self.key_shares)}, <hidden>)"
        )
