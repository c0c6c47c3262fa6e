"""Messages between edge clients and the servers that aggregate or compute for them.

Independent of the wire: ``transport.grpc.gateway`` carries them over gRPC (mutual TLS), the
client SDK (:mod:`crypten_lite.client`) builds them, and the services in
:mod:`crypten_lite.fl` answer them through an :class:`EdgeHandler`. Every server of a job
runs one handler; a client talks to all of them.

A model update travels as an additive sharing in ``Z_2^ring_bits`` with seed compression:
servers ``0..k-2`` receive a 32-byte seed each (their share is the seed's AES-CTR stream),
server ``k-1`` receives the masked vector ``q - sum(streams) mod 2^ring_bits``. One upload
carries the same ``nonce`` to every server; the pair ``(client id, round)`` may be accepted
at most once per server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import CommunicationError, RingShapeError

if TYPE_CHECKING:
    from crypten_lite.edge.secagg_messages import (
        KeyAdvert,
        MaskedUpload,
        SecAggStage,
        SecAggState,
        ShareKeysUpload,
        UnmaskUpload,
    )

__all__ = [
    "DUPLICATE_SAME_UPLOAD",
    "NONCE_SIZE",
    "RING_BITS",
    "SCHEMES",
    "SEED_SIZE",
    "AggregationHandler",
    "EdgeHandler",
    "EdgeRefusal",
    "EdgeRequestError",
    "InferenceHandler",
    "InferenceQuery",
    "InferenceShare",
    "QuantSpec",
    "RoundInfo",
    "RoundSource",
    "RoundState",
    "SecAggHandler",
    "UpdateShare",
    "as_aggregation",
    "as_inference",
    "as_round_source",
    "as_secagg",
    "check_client",
    "invalid",
    "ring_dtype",
]

#: ring widths an update may be shared in.
RING_BITS = (32, 64)
#: update encodings: int8/int16 are symmetric quantization of ``clip(x, -clip, clip)`` with
#: scale ``clip / 127`` or ``clip / 32767``; ``fixed16`` is fixed point with 16 fractional bits.
SCHEMES = ("int8", "int16", "fixed16")
SEED_SIZE = 32
NONCE_SIZE = 16
#: how a server's ``DUPLICATE`` refusal message starts when the refused share repeats the
#: upload this client already delivered for the round (same client, round AND nonce): a
#: retried submit whose first attempt landed. Any other ``DUPLICATE`` (a second, different
#: upload, or a nonce another client or round already used) does not start with it. Rides
#: in the refusal's detail text, so the wire needs no new field.
DUPLICATE_SAME_UPLOAD = "same upload already stored"


class RoundState(enum.Enum):
    OPEN = "open"  # accepting updates for ``RoundInfo.round``
    CLOSED = "closed"  # aggregating; the next round opens soon
    FINISHED = "finished"  # the job is over; clients should exit


class EdgeRefusal(enum.Enum):
    """Why a server refused a request; the gateway maps each to a gRPC status code."""

    INVALID = "invalid"  # malformed or wrong-length request (INVALID_ARGUMENT)
    DUPLICATE = "duplicate"  # already delivered this round, or nonce reused (ALREADY_EXISTS)
    STALE = "stale"  # wrong round, or the round is not open (FAILED_PRECONDITION)
    UNAUTHENTICATED = "unauthenticated"  # no or unknown client identity (UNAUTHENTICATED)
    UNAVAILABLE = "unavailable"  # the service is not ready yet; retry (UNAVAILABLE)


class EdgeRequestError(CommunicationError):
    """A server refused an edge request. Raised by handlers (server side) and re-raised by
    the client SDK with the server's message; never carries secret data."""

    def __init__(self, refusal: EdgeRefusal, message: str) -> None:
        super().__init__(f"{refusal.value}: {message}")
        self.refusal = refusal
        self.detail = message


def invalid(message: str) -> EdgeRequestError:
    """An ``INVALID`` refusal with ``message``."""
    return EdgeRequestError(EdgeRefusal.INVALID, message)


def check_client(client_id: str, allowed: frozenset[str] | None) -> None:
    """Refuse (UNAUTHENTICATED) a missing identity, or one outside ``allowed`` (None: any)."""
    if not isinstance(client_id, str) or not client_id:
        raise EdgeRequestError(EdgeRefusal.UNAUTHENTICATED, "no client identity")
    if allowed is not None and client_id not in allowed:
        raise EdgeRequestError(EdgeRefusal.UNAUTHENTICATED, "unknown client identity")


def ring_dtype(ring_bits: int) -> np.dtype[np.unsignedinteger]:
    """The numpy dtype of a ``ring_bits`` ring (``uint32`` or ``uint64``); RingShapeError
    for any other width."""
    if isinstance(ring_bits, bool) or ring_bits not in RING_BITS:
        raise RingShapeError(f"ring_bits must be one of {RING_BITS}, got {ring_bits!r}")
    return np.dtype(np.uint32) if ring_bits == 32 else np.dtype(np.uint64)


@dataclass(frozen=True)
class QuantSpec:
    """How a client encodes its float update before sharing (see :data:`SCHEMES`)."""

    scheme: str = "int16"
    clip: float = 1.0


@dataclass(frozen=True)
class RoundInfo:
    """What a server tells a client about the job's current round (all public)."""

    job_id: str
    round: int
    state: RoundState
    num_elements: int
    ring_bits: int
    quant: QuantSpec
    num_servers: int
    server_index: int
    min_clients: int
    #: the public global model the round starts from (float32, may be empty).
    model: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass(frozen=True)
class UpdateShare:
    """One server's part of one client's update for ``round``: exactly one of ``seed``
    (``SEED_SIZE`` bytes) or ``vector`` (``num_elements`` ring elements, ``uint32`` for a
    32-bit ring, ``uint64`` for 64) is set."""

    round: int
    nonce: bytes
    num_elements: int
    ring_bits: int
    seed: bytes | None = None
    vector: npt.NDArray[np.unsignedinteger] | None = None

    def __repr__(self) -> str:  # never show share material
        part = "seed" if self.seed is not None else "vector"
        return (
            f"UpdateShare(round={self.round}, num_elements={self.num_elements}, "
            f"ring_bits={self.ring_bits}, {part}=<hidden>)"
        )


@dataclass(frozen=True)
class InferenceQuery:
    """One server's part of a private-inference input (64-bit ring, fixed point with
    ``frac_bits``): a seed or the masked vector, as for updates."""

    query_id: bytes
    model: str
    shape: tuple[int, ...]
    frac_bits: int
    seed: bytes | None = None
    vector: npt.NDArray[np.uint64] | None = None

    def __repr__(self) -> str:
        return (
            f"InferenceQuery(model={self.model!r}, shape={self.shape}, "
            f"frac_bits={self.frac_bits}, <hidden>)"
        )


@dataclass(frozen=True)
class InferenceShare:
    """One server's share of the output (64-bit ring, fixed point with ``frac_bits``)."""

    query_id: bytes
    shape: tuple[int, ...]
    frac_bits: int
    share: npt.NDArray[np.uint64]

    def __repr__(self) -> str:
        return f"InferenceShare(shape={self.shape}, frac_bits={self.frac_bits}, <hidden>)"


@runtime_checkable
class AggregationHandler(Protocol):
    """A secure-aggregation server behind the gateway: round info and update uploads.
    ``client_id`` is the authenticated identity (never taken from the request body).
    Methods raise :class:`EdgeRequestError` to refuse; any other exception is reported to the
    client as an internal error without its text. Called from gRPC worker threads:
    implementations must be thread-safe."""

    def round_info(self, client_id: str) -> RoundInfo: ...

    def submit(self, client_id: str, share: UpdateShare) -> None: ...


@runtime_checkable
class InferenceHandler(Protocol):
    """A private-inference server behind the gateway (same rules as
    :class:`AggregationHandler`)."""

    def infer(self, client_id: str, query: InferenceQuery) -> InferenceShare: ...


@runtime_checkable
class SecAggHandler(Protocol):
    """A single-server secure-aggregation service (SecAgg/SecAgg+, the stages of
    :mod:`crypten_lite.edge.secagg_messages`), same rules as :class:`AggregationHandler`."""

    def round_info(self, client_id: str) -> RoundInfo: ...

    def secagg_state(
        self,
        client_id: str,
        round_number: int,
        known: SecAggStage | None = None,
        wait_s: float = 0.0,
    ) -> SecAggState: ...

    def advertise(self, client_id: str, advert: KeyAdvert) -> None: ...

    def share_keys(self, client_id: str, upload: ShareKeysUpload) -> None: ...

    def submit_masked(self, client_id: str, upload: MaskedUpload) -> None: ...

    def unmask(self, client_id: str, upload: UnmaskUpload) -> None: ...


#: what a server installs: one service, of one kind (none stubs another's calls)
EdgeHandler = AggregationHandler | InferenceHandler | SecAggHandler
#: a service that answers ``round_info``
RoundSource = AggregationHandler | SecAggHandler


def as_aggregation(handler: EdgeHandler) -> AggregationHandler:
    """``handler`` if it serves secure aggregation, else the refusal a client gets."""
    if not isinstance(handler, AggregationHandler):
        what = (
            "single-server secure aggregation: shared uploads (Submit) are not served"
            if isinstance(handler, SecAggHandler)
            else "private inference: round info and uploads are not served"
        )
        raise EdgeRequestError(EdgeRefusal.INVALID, f"this server runs {what}")
    return handler


def as_secagg(handler: EdgeHandler) -> SecAggHandler:
    """``handler`` if it serves single-server secure aggregation, else the refusal."""
    if not isinstance(handler, SecAggHandler):
        raise EdgeRequestError(
            EdgeRefusal.INVALID,
            "this server does not run single-server secure aggregation (SecAgg stages are "
            "not served)",
        )
    return handler


def as_round_source(handler: EdgeHandler) -> RoundSource:
    """``handler`` if it answers ``round_info`` (either kind of aggregation)."""
    if isinstance(handler, SecAggHandler | AggregationHandler):
        return handler
    return as_aggregation(handler)  # raises the inference refusal


def as_inference(handler: EdgeHandler) -> InferenceHandler:
    """``handler`` if it serves private inference, else the refusal a client gets."""
    if not isinstance(handler, InferenceHandler):
        raise EdgeRequestError(
            EdgeRefusal.INVALID,
            "this server runs secure aggregation: inference queries are not served",
        )
    return handler
