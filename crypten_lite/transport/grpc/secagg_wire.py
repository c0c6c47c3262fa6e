"""SecAgg stages on the wire: the dataclasses of :mod:`crypten_lite.edge.secagg_messages` to
and from the serialized protobuf messages of ``edge.proto`` (``SecAggState``, ``Advertise``,
``ShareKeys``, ``SubmitMasked``, ``Unmask``).

One set of checks serves both directions: public keys and the seed commitment are 32 bytes,
sealed shares :data:`SEALED_SIZE`, Shamir shares :data:`SHARE_SIZE`, client indices lie in
``[1, 2^32)``, a repeated field holds at most :data:`MAX_NEIGHBOURS` entries, the masked
vector is exactly ``num_elements * ring_bits / 8`` little-endian bytes (checked on a view of
the request: :func:`scan_masked_upload` copies nothing until the gateway compared the sizes
with the job).

Encoding or decoding a request raises :class:`EdgeRequestError` ``INVALID`` naming the bad
field; encoding a state reply raises ``ValueError`` (a handler bug, ``INTERNAL`` on the
wire); decoding a reply from a server raises :class:`CommunicationError`. Messages never show
keys, shares or vectors, only sizes and indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from crypten_lite._proto import edge_pb2
from crypten_lite.edge.messages import RING_BITS, EdgeRequestError, invalid, ring_dtype
from crypten_lite.edge.secagg_crypto import KEY_SIZE, SEALED_SIZE
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
from crypten_lite.edge.shamir import SHARE_SIZE
from crypten_lite.errors import CommunicationError, MessageRejectedError
from crypten_lite.transport.grpc.wire import clean, split_bytes_field

__all__ = [
    "MAX_NEIGHBOURS",
    "MAX_WAIT_MS",
    "ScannedMasked",
    "decode_advertise",
    "decode_masked_upload",
    "decode_share_keys",
    "decode_state_reply",
    "decode_state_request",
    "decode_unmask",
    "encode_advertise",
    "encode_masked_upload",
    "encode_share_keys",
    "encode_state_reply",
    "encode_state_request",
    "encode_unmask",
    "scan_masked_upload",
]

#: at most this many entries in any repeated field (neighbours, shares, indices).
MAX_NEIGHBOURS = 4096
#: the longest a state request may ask the server to wait for a stage change.
MAX_WAIT_MS = 30_000
_COMMITMENT_SIZE = 32
_MAX_FAILURE = 400  # characters of a failure message that travel
_VECTOR_FIELD = 4  # MaskedInputRequest.vector
_U32 = (1 << 32, "2^32")
_U64 = (1 << 64, "2^64")


# -- checks (INVALID naming the field) -------------------------------------------------------


def _integer(value: object, low: int, high: tuple[int, str], what: str) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        if low <= int(value) < high[0]:
            return int(value)
    raise invalid(f"{what} must be an integer in [{low}, {high[1]})")


def _index(value: object, what: str) -> int:
    return _integer(value, 1, _U32, what)


def _round(value: object) -> int:
    return _integer(value, 0, _U64, "round")


def _bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise invalid(f"{what} must be {size} bytes, got {type(value).__name__}")
    if len(value) != size:
        raise invalid(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _entries(items: Sequence[Any], what: str) -> Sequence[Any]:
    if len(items) > MAX_NEIGHBOURS:
        raise invalid(f"{what} has {len(items)} entries; at most {MAX_NEIGHBOURS}")
    return items


def _indices(items: Sequence[Any], what: str) -> tuple[int, ...]:
    return tuple(_index(i, f"an index in {what}") for i in _entries(items, what))


def _width(ring_bits: object) -> int:
    if isinstance(ring_bits, bool) or not isinstance(ring_bits, int) or ring_bits not in RING_BITS:
        raise invalid(f"ring_bits must be one of {RING_BITS}, got {clean(repr(ring_bits), 20)}")
    return ring_bits // 8


def _neighbour(index: object, cipher_public: object, mask_public: object) -> NeighbourKey:
    return NeighbourKey(
        _index(index, "a neighbour index"),
        _bytes(cipher_public, KEY_SIZE, "a neighbour's cipher_public"),
        _bytes(mask_public, KEY_SIZE, "a neighbour's mask_public"),
    )


def _encrypted(sender: object, receiver: object, sealed: object) -> EncryptedShare:
    return EncryptedShare(
        _index(sender, "an encrypted share's sender"),
        _index(receiver, "an encrypted share's receiver"),
        _bytes(sealed, SEALED_SIZE, "an encrypted share's sealed"),
    )


def _indexed(pairs: Sequence[Any], what: str) -> tuple[tuple[int, bytes], ...]:
    return tuple(
        (_index(i, f"an index in {what}"), _bytes(s, SHARE_SIZE, f"a share in {what}"))
        for i, s in _entries(pairs, what)
    )


def _parse(kind: Any, data: bytes) -> Any:
    try:
        return kind.FromString(data)
    except DecodeError as err:
        raise invalid("the request is not a valid protobuf message") from err


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


# -- state ------------------------------------------------------------------------------------


def encode_state_request(
    round_number: int, known: SecAggStage | None = None, wait_s: float = 0.0
) -> bytes:
    """The serialized ``SecAggStateRequest`` for ``round_number``; with ``known`` (the stage
    the client last saw) and ``wait_s``, a long poll (capped at :data:`MAX_WAIT_MS`)."""
    if known is not None and not isinstance(known, SecAggStage):
        raise invalid("known_stage must be a SecAggStage")
    if not 0.0 <= wait_s < float("inf"):
        raise invalid(f"wait_s must be a non-negative number, got {wait_s!r}")
    return _serialize(
        edge_pb2.SecAggStateRequest(
            round=_round(round_number),
            known_stage="" if known is None else known.value,
            wait_ms=min(MAX_WAIT_MS, int(1000 * wait_s)),
        )
    )


def decode_state_request(data: bytes) -> tuple[int, SecAggStage | None, float]:
    """``(round, known stage or None, wait seconds)`` of a ``SecAggStateRequest``."""
    request = _parse(edge_pb2.SecAggStateRequest, data)
    known: SecAggStage | None = None
    if request.known_stage:
        try:
            known = SecAggStage(request.known_stage)
        except ValueError:
            raise invalid(f"unknown stage {clean(request.known_stage, 40)!r}") from None
    if request.wait_ms > MAX_WAIT_MS:
        raise invalid(f"wait_ms is {request.wait_ms}; at most {MAX_WAIT_MS}")
    return int(request.round), known, request.wait_ms / 1000.0


def _state_from(source: Any, stage: SecAggStage, failure: str) -> SecAggState:
    """A checked :class:`SecAggState` from anything with its fields: the handler's state or a
    parsed ``SecAggStateReply`` (the same checks on both ends)."""
    return SecAggState(
        round=_round(source.round),
        stage=stage,
        index=_integer(source.index, 0, _U32, "index"),
        threshold=_integer(source.threshold, 0, _U32, "threshold"),
        neighbours=tuple(
            _neighbour(n.index, n.cipher_public, n.mask_public)
            for n in _entries(source.neighbours, "neighbours")
        ),
        shared=_indices(source.shared, "shared"),
        inbox=tuple(
            _encrypted(s.sender, s.receiver, s.sealed) for s in _entries(source.inbox, "inbox")
        ),
        survivors=_indices(source.survivors, "survivors"),
        dropped=_indices(source.dropped, "dropped"),
        failure=failure,
    )


def _checked_state(state: SecAggState) -> SecAggState:
    if not isinstance(state.stage, SecAggStage):
        raise invalid("stage must be a SecAggStage")
    if not isinstance(state.failure, str):
        raise invalid("failure must be a str")
    return _state_from(state, state.stage, state.failure[:_MAX_FAILURE])


def encode_state_reply(state: SecAggState) -> bytes:
    """The serialized ``SecAggStateReply`` of ``state`` (``failure`` cut to 400 characters);
    ``ValueError`` if the handler's state would not pass the client's checks."""
    try:
        state = _checked_state(state)
    except EdgeRequestError as err:
        raise ValueError(f"the handler's SecAgg state is malformed: {err.detail}") from None
    reply = edge_pb2.SecAggStateReply(
        round=state.round,
        stage=state.stage.value,
        index=state.index,
        threshold=state.threshold,
        neighbours=[
            edge_pb2.NeighbourKey(
                index=n.index, cipher_public=n.cipher_public, mask_public=n.mask_public
            )
            for n in state.neighbours
        ],
        shared=state.shared,
        inbox=[
            edge_pb2.EncryptedShare(sender=s.sender, receiver=s.receiver, sealed=s.sealed)
            for s in state.inbox
        ],
        survivors=state.survivors,
        dropped=state.dropped,
        failure=state.failure,
    )
    return _serialize(reply)


def _state_of(reply: Any) -> SecAggState:
    try:
        stage = SecAggStage(reply.stage)
    except ValueError:
        raise invalid(f"unknown stage {clean(reply.stage, 40)!r}") from None
    return _state_from(reply, stage, clean(reply.failure, _MAX_FAILURE))


def decode_state_reply(data: bytes) -> SecAggState:
    """A server's ``SecAggStateReply``; :class:`CommunicationError` (never a refusal) naming
    the problem if it is malformed. ``failure`` comes back as printable ASCII."""
    try:
        reply = edge_pb2.SecAggStateReply.FromString(data)
    except DecodeError:
        raise CommunicationError("server sent a SecAgg state that is not valid protobuf") from None
    try:
        return _state_of(reply)
    except EdgeRequestError as err:
        raise CommunicationError(f"server sent a malformed SecAgg state: {err.detail}") from None


# -- advertise and share keys -----------------------------------------------------------------


def _advert(round_number: object, cipher_public: object, mask_public: object) -> KeyAdvert:
    return KeyAdvert(
        _round(round_number),
        _bytes(cipher_public, KEY_SIZE, "cipher_public"),
        _bytes(mask_public, KEY_SIZE, "mask_public"),
    )


def encode_advertise(advert: KeyAdvert) -> bytes:
    """The serialized ``AdvertiseRequest`` of ``advert``."""
    advert = _advert(advert.round, advert.cipher_public, advert.mask_public)
    return _serialize(
        edge_pb2.AdvertiseRequest(
            round=advert.round, cipher_public=advert.cipher_public, mask_public=advert.mask_public
        )
    )


def decode_advertise(data: bytes) -> KeyAdvert:
    """Validate an ``AdvertiseRequest`` into a KeyAdvert."""
    request = _parse(edge_pb2.AdvertiseRequest, data)
    return _advert(request.round, request.cipher_public, request.mask_public)


def _share_keys(round_number: object, commitment: object, shares: Sequence[Any]) -> ShareKeysUpload:
    return ShareKeysUpload(
        _round(round_number),
        _bytes(commitment, _COMMITMENT_SIZE, "seed_commitment"),
        tuple(_encrypted(s.sender, s.receiver, s.sealed) for s in _entries(shares, "shares")),
    )


def encode_share_keys(upload: ShareKeysUpload) -> bytes:
    """The serialized ``ShareKeysRequest`` of ``upload``."""
    upload = _share_keys(upload.round, upload.seed_commitment, upload.shares)
    request = edge_pb2.ShareKeysRequest(
        round=upload.round,
        seed_commitment=upload.seed_commitment,
        shares=[
            edge_pb2.EncryptedShare(sender=s.sender, receiver=s.receiver, sealed=s.sealed)
            for s in upload.shares
        ],
    )
    return _serialize(request)


def decode_share_keys(data: bytes) -> ShareKeysUpload:
    """Validate a ``ShareKeysRequest`` into a ShareKeysUpload."""
    request = _parse(edge_pb2.ShareKeysRequest, data)
    return _share_keys(request.round, request.seed_commitment, request.shares)


# -- masked input -----------------------------------------------------------------------------


def _to_ring(data: memoryview, ring_bits: int) -> npt.NDArray[np.unsignedinteger]:
    native = ring_dtype(ring_bits)
    return np.frombuffer(data, dtype=native.newbyteorder("<")).astype(native)  # a writable copy


@dataclass(frozen=True)
class ScannedMasked:
    """A ``MaskedInputRequest`` whose fields are checked and whose vector is still a view of
    the request bytes: :meth:`check_job`, then :meth:`upload` copies it."""

    round: int
    num_elements: int
    ring_bits: int
    vector: memoryview = field(repr=False)
    complaints: tuple[int, ...]

    def check_job(self, num_elements: int, ring_bits: int) -> None:
        """Refuse (INVALID) an upload whose length or ring differs from the job's."""
        if (self.num_elements, self.ring_bits) != (num_elements, ring_bits):
            raise invalid(
                f"the masked input declares {self.num_elements} elements in a "
                f"{self.ring_bits}-bit ring; this job takes {num_elements} in a "
                f"{ring_bits}-bit ring"
            )

    def upload(self) -> MaskedUpload:
        """The MaskedUpload (the vector copied into a writable native array)."""
        vector = _to_ring(self.vector, self.ring_bits)
        return MaskedUpload(
            self.round, self.num_elements, self.ring_bits, vector, self.complaints
        )


def encode_masked_upload(upload: MaskedUpload) -> bytes:
    """The serialized ``MaskedInputRequest`` of ``upload`` (its wire size is ``len``)."""
    _width(upload.ring_bits)
    n = _integer(upload.num_elements, 1, _U64, "num_elements")
    expected = ring_dtype(upload.ring_bits)
    vector = upload.vector
    if not isinstance(vector, np.ndarray) or vector.dtype != expected:
        raise invalid(f"vector must be a numpy {expected.name} array")
    if vector.size != n:
        raise invalid(f"vector has {vector.size} elements; num_elements = {n}")
    request = edge_pb2.MaskedInputRequest(
        round=_round(upload.round),
        num_elements=n,
        ring_bits=upload.ring_bits,
        vector=np.ascontiguousarray(vector, dtype=expected.newbyteorder("<")).tobytes(),
        complaints=_indices(upload.complaints, "complaints"),
    )
    return _serialize(request)


def scan_masked_upload(data: bytes, max_bytes: int) -> ScannedMasked:
    """Check a serialized ``MaskedInputRequest`` without copying its vector: every field,
    ``num_elements`` against ``max_bytes``, the vector's length against ``num_elements``."""
    try:
        rest, vector = split_bytes_field(data, _VECTOR_FIELD)
        head = edge_pb2.MaskedInputRequest.FromString(rest)
    except (MessageRejectedError, DecodeError) as err:
        raise invalid("the request is not a valid protobuf message") from err
    width = _width(head.ring_bits)
    n = int(head.num_elements)
    if not 0 < n <= max_bytes // width:
        raise invalid(f"num_elements must lie in [1, {max_bytes // width}], got {n}")
    if len(vector) != n * width:
        raise invalid(
            f"vector has {len(vector)} bytes; num_elements = {n} in a "
            f"{head.ring_bits}-bit ring needs {n * width}"
        )
    complaints = _indices(head.complaints, "complaints")
    return ScannedMasked(int(head.round), n, int(head.ring_bits), vector, complaints)


def decode_masked_upload(data: bytes, max_bytes: int) -> MaskedUpload:
    """:func:`scan_masked_upload`, then the copy (no job to check against)."""
    return scan_masked_upload(data, max_bytes).upload()


# -- unmask -----------------------------------------------------------------------------------


def _unmask(round_number: object, seed: Sequence[Any], key: Sequence[Any]) -> UnmaskUpload:
    return UnmaskUpload(
        _round(round_number), _indexed(seed, "seed_shares"), _indexed(key, "key_shares")
    )


def encode_unmask(upload: UnmaskUpload) -> bytes:
    """The serialized ``UnmaskRequest`` of ``upload``."""
    upload = _unmask(upload.round, upload.seed_shares, upload.key_shares)
    request = edge_pb2.UnmaskRequest(
        round=upload.round,
        seed_shares=[edge_pb2.IndexedShare(index=i, share=s) for i, s in upload.seed_shares],
        key_shares=[edge_pb2.IndexedShare(index=i, share=s) for i, s in upload.key_shares],
    )
    return _serialize(request)


def decode_unmask(data: bytes) -> UnmaskUpload:
    """Validate an ``UnmaskRequest`` into an UnmaskUpload."""
    request = _parse(edge_pb2.UnmaskRequest, data)
    return _unmask(
        request.round,
        [(s.index, s.share) for s in _entries(request.seed_shares, "seed_shares")],
        [(s.index, s.share) for s in _entries(request.key_shares, "key_shares")],
    )
