"""Edge messages on the wire: the dataclasses of :mod:`crypten_lite.edge.messages` to and from
the protobuf messages of ``edge.proto``, validating every size, dtype and length before any
allocation (vectors are raw little-endian bytes; nothing is unpickled).

Decoding a request raises :class:`EdgeRequestError` ``INVALID`` naming the bad field;
decoding a reply from a server raises :class:`CommunicationError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from crypten_lite._proto import edge_pb2
from crypten_lite.edge.messages import (
    NONCE_SIZE,
    RING_BITS,
    SCHEMES,
    SEED_SIZE,
    EdgeRequestError,
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
    invalid,
    ring_dtype,
)
from crypten_lite.errors import CommunicationError, MessageRejectedError
from crypten_lite.transport.grpc.wire import clean, split_bytes_field

__all__ = [
    "clean",
    "decode_infer_request",
    "decode_submit_request",
    "encode_infer_request",
    "encode_submit_request",
    "infer_reply",
    "inference_share",
    "invalid",
    "round_info",
    "round_reply",
    "scan_submit_request",
]

_MAX_DIMS = 8
_MAX_QUERY_ID = 64
_MAX_MODEL_NAME = 128
_VECTOR_FIELD = 6  # SubmitRequest.vector


def _width(ring_bits: int) -> int:
    if ring_bits not in RING_BITS:
        raise invalid(f"ring_bits must be one of {RING_BITS}, got {ring_bits}")
    return ring_bits // 8


def _to_ring(data: bytes | memoryview, ring_bits: int) -> npt.NDArray[np.unsignedinteger]:
    native = ring_dtype(ring_bits)
    return np.frombuffer(data, dtype=native.newbyteorder("<")).astype(native)  # a writable copy


def _ring_bytes(vector: npt.NDArray[np.unsignedinteger], ring_bits: int, what: str) -> bytes:
    expected = ring_dtype(ring_bits)
    if not isinstance(vector, np.ndarray) or vector.dtype != expected:
        raise invalid(f"{what} must be a numpy {expected.name} array")
    return np.ascontiguousarray(vector, dtype=expected.newbyteorder("<")).tobytes()


def _part(share: UpdateShare | InferenceQuery) -> tuple[bytes | None, Any]:
    if (share.seed is None) == (share.vector is None):
        raise invalid("exactly one of seed and vector must be set")
    if share.seed is not None and len(share.seed) != SEED_SIZE:
        raise invalid(f"seed must be {SEED_SIZE} bytes, got {len(share.seed)}")
    return share.seed, share.vector


def encode_submit_request(share: UpdateShare) -> bytes:
    """The serialized ``SubmitRequest`` of ``share`` (its exact wire size is ``len``)."""
    width = _width(share.ring_bits)
    if len(share.nonce) != NONCE_SIZE:
        raise invalid(f"nonce must be {NONCE_SIZE} bytes, got {len(share.nonce)}")
    seed, vector = _part(share)
    request = edge_pb2.SubmitRequest(
        round=share.round,
        nonce=share.nonce,
        num_elements=share.num_elements,
        ring_bits=share.ring_bits,
    )
    if seed is not None:
        request.seed = seed
    else:
        data = _ring_bytes(vector, share.ring_bits, "vector")
        if len(data) != share.num_elements * width:
            raise invalid(f"vector must hold num_elements = {share.num_elements} elements")
        request.vector = data
    return bytes(request.SerializeToString())


def decode_submit_request(request: edge_pb2.SubmitRequest, max_bytes: int) -> UpdateShare:
    """Validate a ``SubmitRequest`` (sizes before any allocation) into an UpdateShare."""
    width = _width(request.ring_bits)
    if len(request.nonce) != NONCE_SIZE:
        raise invalid(f"nonce must be {NONCE_SIZE} bytes, got {len(request.nonce)}")
    n = int(request.num_elements)
    if not 0 < n <= max_bytes // width:
        raise invalid(f"num_elements must lie in [1, {max_bytes // width}], got {n}")
    part = request.WhichOneof("part")
    if part == "seed":
        if len(request.seed) != SEED_SIZE:
            raise invalid(f"seed must be {SEED_SIZE} bytes, got {len(request.seed)}")
        return UpdateShare(
            int(request.round), bytes(request.nonce), n, request.ring_bits, seed=bytes(request.seed)
        )
    if part != "vector":
        raise invalid("the request carries neither a seed nor a vector")
    if len(request.vector) != n * width:
        raise invalid(
            f"vector has {len(request.vector)} bytes; num_elements = {n} in a "
            f"{request.ring_bits}-bit ring needs {n * width}"
        )
    return UpdateShare(
        int(request.round),
        bytes(request.nonce),
        n,
        request.ring_bits,
        vector=_to_ring(request.vector, request.ring_bits),
    )


@dataclass(frozen=True)
class ScannedSubmit:
    """A ``SubmitRequest`` whose fields are checked and whose vector is still a view of the
    request bytes (nothing copied): :meth:`check_job`, then :meth:`share` copies it."""

    round: int
    nonce: bytes
    num_elements: int
    ring_bits: int
    seed: bytes | None
    vector: memoryview | None

    def check_job(self, num_elements: int, ring_bits: int) -> None:
        """Refuse (INVALID) an upload whose length or ring differs from the job's."""
        if (self.num_elements, self.ring_bits) != (num_elements, ring_bits):
            raise invalid(
                f"the upload declares {self.num_elements} elements in a {self.ring_bits}-bit "
                f"ring; this job takes {num_elements} in a {ring_bits}-bit ring"
            )

    def share(self) -> UpdateShare:
        """The UpdateShare (the vector copied into a writable native array)."""
        if self.seed is not None:
            return UpdateShare(
                self.round, self.nonce, self.num_elements, self.ring_bits, seed=self.seed
            )
        vector = cast(memoryview, self.vector)  # a seed or a vector, checked on parse
        return UpdateShare(
            self.round,
            self.nonce,
            self.num_elements,
            self.ring_bits,
            vector=_to_ring(vector, self.ring_bits),
        )


def scan_submit_request(data: bytes, max_bytes: int) -> ScannedSubmit:
    """Check a serialized ``SubmitRequest`` without copying its vector: every field and size
    (``max_bytes`` bounds the vector), the vector's length against ``num_elements``."""
    try:
        rest, vector = split_bytes_field(data, _VECTOR_FIELD)
        head = edge_pb2.SubmitRequest.FromString(rest)
    except (MessageRejectedError, DecodeError) as err:
        raise invalid("the request is not a valid protobuf message") from err
    has_vector = len(rest) != len(data)
    width = _width(head.ring_bits)
    if len(head.nonce) != NONCE_SIZE:
        raise invalid(f"nonce must be {NONCE_SIZE} bytes, got {len(head.nonce)}")
    n = int(head.num_elements)
    if not 0 < n <= max_bytes // width:
        raise invalid(f"num_elements must lie in [1, {max_bytes // width}], got {n}")
    seed = head.seed if head.WhichOneof("part") == "seed" else None
    if seed is None and not has_vector:
        raise invalid("the request carries neither a seed nor a vector")
    if seed is not None and has_vector:
        raise invalid("the request carries both a seed and a vector")
    if seed is not None:
        if len(seed) != SEED_SIZE:
            raise invalid(f"seed must be {SEED_SIZE} bytes, got {len(seed)}")
        return ScannedSubmit(int(head.round), bytes(head.nonce), n, head.ring_bits, seed, None)
    if len(vector) != n * width:
        raise invalid(
            f"vector has {len(vector)} bytes; num_elements = {n} in a "
            f"{head.ring_bits}-bit ring needs {n * width}"
        )
    return ScannedSubmit(int(head.round), bytes(head.nonce), n, head.ring_bits, None, vector)


def _checked_shape(shape: Any, max_bytes: int) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if len(dims) > _MAX_DIMS:
        raise invalid(f"shape has {len(dims)} dimensions; at most {_MAX_DIMS}")
    if math.prod(dims) > max_bytes // 8:
        raise invalid(f"shape {dims} exceeds the message limit of {max_bytes} bytes")
    return dims


def _check_query_fields(query_id: bytes, model: str, frac_bits: int) -> None:
    if not 0 < len(query_id) <= _MAX_QUERY_ID:
        raise invalid(f"query_id must be 1-{_MAX_QUERY_ID} bytes")
    if not 0 < len(model) <= _MAX_MODEL_NAME or not (model.isascii() and model.isprintable()):
        raise invalid(f"model must be 1-{_MAX_MODEL_NAME} printable ASCII characters")
    if not 0 <= frac_bits <= 52:
        raise invalid(f"frac_bits must lie in [0, 52], got {frac_bits}")


def encode_infer_request(query: InferenceQuery) -> bytes:
    """The serialized ``InferRequest`` of ``query``."""
    _check_query_fields(query.query_id, query.model, query.frac_bits)
    seed, vector = _part(query)
    request = edge_pb2.InferRequest(
        query_id=query.query_id,
        model=query.model,
        shape=list(query.shape),
        frac_bits=query.frac_bits,
    )
    if seed is not None:
        request.seed = seed
    else:
        data = _ring_bytes(vector, 64, "vector")
        if len(data) != 8 * math.prod(query.shape):
            raise invalid(f"vector must hold prod(shape) = {math.prod(query.shape)} elements")
        request.vector = data
    return bytes(request.SerializeToString())


def decode_infer_request(request: edge_pb2.InferRequest, max_bytes: int) -> InferenceQuery:
    """Validate an ``InferRequest`` into an InferenceQuery."""
    _check_query_fields(request.query_id, request.model, request.frac_bits)
    shape = _checked_shape(request.shape, max_bytes)
    part = request.WhichOneof("part")
    fields = (bytes(request.query_id), request.model, shape, int(request.frac_bits))
    if part == "seed":
        if len(request.seed) != SEED_SIZE:
            raise invalid(f"seed must be {SEED_SIZE} bytes, got {len(request.seed)}")
        return InferenceQuery(*fields, seed=bytes(request.seed))
    if part != "vector":
        raise invalid("the request carries neither a seed nor a vector")
    if len(request.vector) != 8 * math.prod(shape):
        raise invalid(
            f"vector has {len(request.vector)} bytes; shape {shape} needs {8 * math.prod(shape)}"
        )
    return InferenceQuery(*fields, vector=_to_ring(request.vector, 64).astype(np.uint64))


def round_reply(info: RoundInfo) -> edge_pb2.RoundInfoReply:
    model = np.ascontiguousarray(info.model, dtype="<f4").tobytes()
    return edge_pb2.RoundInfoReply(
        job_id=info.job_id,
        round=info.round,
        state=info.state.value,
        num_elements=info.num_elements,
        ring_bits=info.ring_bits,
        quant_scheme=info.quant.scheme,
        quant_clip=info.quant.clip,
        num_servers=info.num_servers,
        server_index=info.server_index,
        min_clients=info.min_clients,
        model=model,
    )


def round_info(reply: edge_pb2.RoundInfoReply) -> RoundInfo:
    try:
        state = RoundState(reply.state)
    except ValueError as err:
        raise CommunicationError(
            f"server sent unknown round state {clean(reply.state, 80)!r}"
        ) from err
    if reply.ring_bits not in RING_BITS or reply.quant_scheme not in SCHEMES:
        raise CommunicationError(
            f"server sent ring_bits={reply.ring_bits}, scheme={clean(reply.quant_scheme, 80)!r}"
        )
    if len(reply.model) % 4:
        raise CommunicationError("server sent a model whose size is not a multiple of 4 bytes")
    return RoundInfo(
        job_id=reply.job_id,
        round=int(reply.round),
        state=state,
        num_elements=int(reply.num_elements),
        ring_bits=int(reply.ring_bits),
        quant=QuantSpec(reply.quant_scheme, float(reply.quant_clip)),
        num_servers=int(reply.num_servers),
        server_index=int(reply.server_index),
        min_clients=int(reply.min_clients),
        model=np.frombuffer(reply.model, dtype="<f4").astype(np.float32),
    )


def infer_reply(share: InferenceShare) -> edge_pb2.InferReply:
    out = share.share
    if not isinstance(out, np.ndarray) or out.dtype != np.uint64:
        raise TypeError("the handler's output share must be a uint64 array")
    data = np.ascontiguousarray(out, dtype="<u8").tobytes()
    if len(data) != 8 * math.prod(share.shape):
        raise ValueError("the handler's output share does not match its shape")
    return edge_pb2.InferReply(
        query_id=share.query_id, shape=list(share.shape), frac_bits=share.frac_bits, share=data
    )


def inference_share(reply: edge_pb2.InferReply, max_bytes: int) -> InferenceShare:
    try:
        shape = _checked_shape(reply.shape, max_bytes)
    except EdgeRequestError as err:
        raise CommunicationError(f"server sent a bad output share: {err.detail}") from err
    if len(reply.share) != 8 * math.prod(shape):
        raise CommunicationError(f"server sent {len(reply.share)} share bytes for shape {shape}")
    return InferenceShare(
        bytes(reply.query_id),
        shape,
        int(reply.frac_bits),
        np.frombuffer(reply.share, dtype="<u8").astype(np.uint64),
    )
