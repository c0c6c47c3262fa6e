"""Arrays to frames and back: raw little-endian bytes + dtype + shape, chunked.

A frame is the protobuf encoding of one ``Envelope`` (``protos/crypten_lite/_proto``). The
header fields go through the generated class; the payload field is appended to / sliced out
of the encoding directly, because building an ``Envelope`` object and serializing it would
copy every chunk twice more on each side (measured: ~1 s extra per 256 MiB). Any protobuf
encoder produces frames this decoder accepts, and the generated parser reads ours.

Nothing here unpickles or interprets peer data beyond the header: the dtype must be one of
:data:`WIRE_DTYPES`, the shape must describe exactly the bytes that arrive, and a message may
not exceed the receiver's size limit. Every violation raises :class:`MessageRejectedError`
naming the field (never a payload value).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from crypten_lite._proto import party_pb2
from crypten_lite.errors import MessageRejectedError, MessageTooLargeError
from crypten_lite.transport.base import ALLOWED_DTYPES

__all__ = [
    "WIRE_DTYPES",
    "Assembler",
    "Header",
    "clean",
    "decode_frame",
    "encode_announce",
    "encode_frames",
    "split_bytes_field",
    "wire_dtype",
]

#: wire dtype string -> explicit little-endian dtype; exactly the transport's ALLOWED_DTYPES.
WIRE_DTYPES: dict[str, np.dtype[np.generic]] = {
    np.dtype(t).newbyteorder("<").str: np.dtype(t).newbyteorder("<") for t in ALLOWED_DTYPES
}
_MAX_NDIM = 32
_PAYLOAD_FIELD = 9
_PAYLOAD_KEY = bytes([(_PAYLOAD_FIELD << 3) | 2])
_SMALL_FRAME = 64 * 1024


def clean(text: str, limit: int = 120) -> str:
    """A peer-supplied string made safe to log or show: printable ASCII, bounded length."""
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:limit])


def wire_dtype(dtype: np.dtype[np.generic]) -> str:
    """The wire name of an allowed dtype (``"<u8"``, ``"|u1"``, ...)."""
    name: str = dtype.newbyteorder("<").str
    if name not in WIRE_DTYPES:
        raise MessageRejectedError(f"dtype {dtype} cannot travel; allowed: {sorted(WIRE_DTYPES)}")
    return name


@dataclass(frozen=True)
class Header:
    """The routing fields every chunk of one message repeats."""

    session_id: str
    source: int
    destination: int
    tag: int


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(pos, min(pos + 10, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise MessageRejectedError("malformed envelope: bad varint")


def encode_frames(
    header: Header, array: npt.NDArray[np.generic], chunk_bytes: int
) -> tuple[int, Iterator[bytes]]:
    """``(chunk_count, frames)`` for ``array``. Every frame is built now, straight from the
    array (one copy of the data, into the frames' bytes), so the caller may reuse the array
    as soon as this returns. (Before: a snapshot copy, then each frame joined lazily on gRPC's
    thread: two copies of every byte.)"""
    name = wire_dtype(array.dtype)
    flat = np.ascontiguousarray(array, dtype=WIRE_DTYPES[name]).reshape(-1).view(np.uint8)
    count = max(1, -(-flat.size // chunk_bytes))
    shape = [int(d) for d in array.shape]

    def frame(index: int) -> bytes:
        head = party_pb2.Envelope(
            session_id=header.session_id,
            source=header.source,
            destination=header.destination,
            tag=header.tag,
            dtype=name,
            shape=shape,
            chunk_index=index,
            chunk_count=count,
        ).SerializeToString()
        piece = flat[index * chunk_bytes : (index + 1) * chunk_bytes]
        return b"".join((head, _PAYLOAD_KEY, _varint(piece.size), piece.data))

    return count, iter([frame(index) for index in range(count)])


def encode_announce(session_id: str, source: int, destination: int) -> bytes:
    """The opening frame of a stream: routing fields, ``chunk_count`` 0, no data. It names the
    sender at once, so a receiver without TLS (which knows the sender only from a first frame,
    and waits ``request_timeout_s`` for it) keeps a stream to a rank that has nothing to send
    yet, such as a party that never asks the dealer for anything."""
    envelope = party_pb2.Envelope(
        session_id=session_id, source=source, destination=destination, chunk_count=0
    )
    return bytes(envelope.SerializeToString())


def decode_frame(frame: bytes) -> tuple[party_pb2.Envelope, memoryview]:
    """Split one encoded ``Envelope`` into its header and a view of its payload; raise
    :class:`MessageRejectedError` if malformed. Small frames go through the generated parser
    (faster there); large ones are scanned so the payload is never copied."""
    if len(frame) <= _SMALL_FRAME:
        try:
            envelope = party_pb2.Envelope.FromString(frame)
        except DecodeError as err:
            raise MessageRejectedError(f"malformed envelope: {err}") from err
        return envelope, memoryview(envelope.payload)
    header_bytes, payload = split_bytes_field(frame, _PAYLOAD_FIELD)
    try:
        header = party_pb2.Envelope.FromString(header_bytes)
    except DecodeError as err:
        raise MessageRejectedError(f"malformed envelope: {err}") from err
    return header, payload


def split_bytes_field(data: bytes, field: int) -> tuple[bytes, memoryview]:
    """Split a protobuf encoding into the encoding of every field but ``field`` and a view of
    ``field``'s (length-delimited) value, without copying it; the last occurrence wins, as
    in protobuf. Raise :class:`MessageRejectedError` if malformed."""
    view = memoryview(data)
    header_parts: list[memoryview] = []
    payload = view[0:0]
    pos, end = 0, len(view)
    while pos < end:
        start = pos
        key, pos = _read_varint(view, pos)
        wire_type = key & 7
        if wire_type == 0:
            _, pos = _read_varint(view, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _read_varint(view, pos)
            if key >> 3 == field:
                payload = view[pos : pos + length]
                pos += length
                if pos > end:
                    raise MessageRejectedError("malformed message: truncated payload")
                continue
            pos += length
        else:
            raise MessageRejectedError(f"malformed message: wire type {wire_type}")
        if pos > end:
            raise MessageRejectedError("malformed message: truncated field")
        header_parts.append(view[start:pos])
    return b"".join(header_parts), payload


class Assembler:
    """Validates the chunks of one message, in order, and builds the array.

    Construct it from the first chunk's header, feed every chunk (the first too) to
    :meth:`add`; once :attr:`complete`, :meth:`finish` returns the writable, native-endian
    array. Later chunks must repeat the first header exactly.
    """

    def __init__(self, first: party_pb2.Envelope, max_message_bytes: int) -> None:
        self.source = int(first.source)
        self.tag = int(first.tag)
        self._where = f"message {self.tag} from rank {self.source}"
        self._first = first
        dtype = WIRE_DTYPES.get(first.dtype)
        if dtype is None:
            raise MessageRejectedError(
                f"{self._where}: dtype {first.dtype[:16]!r} is not allowed "
                f"(allowed: {sorted(WIRE_DTYPES)})"
            )
        if len(first.shape) > _MAX_NDIM:
            raise MessageRejectedError(
                f"{self._where}: {len(first.shape)} dimensions (at most {_MAX_NDIM})"
            )
        self._dtype = dtype
        self._shape = tuple(int(d) for d in first.shape)
        nbytes = dtype.itemsize
        for dim in self._shape:
            nbytes *= dim
            if nbytes > max_message_bytes:
                raise MessageTooLargeError(
                    f"{self._where}: shape {self._shape} of {dtype.name} exceeds the limit "
                    f"of {max_message_bytes} bytes"
                )
        if nbytes == 0:  # an empty array: the product cannot bound the other dimensions
            limit = max_message_bytes // dtype.itemsize
            for dim in self._shape:
                if dim > limit:
                    raise MessageRejectedError(
                        f"{self._where}: dimension {dim} of the empty shape "
                        f"{self._shape} exceeds {limit} (the limit in elements)"
                    )
        self._nbytes = nbytes
        if not 1 <= first.chunk_count <= max(1, nbytes):
            raise MessageRejectedError(
                f"{self._where}: chunk_count {first.chunk_count} does not fit {nbytes} bytes"
            )
        self.chunk_count = int(first.chunk_count)
        self._buffer: npt.NDArray[np.uint8] | None = None  # allocated with the first chunk
        self._filled = 0
        self._next = 0

    def add(self, header: party_pb2.Envelope, payload: memoryview) -> None:
        """Append one chunk; raise on any inconsistency with the first header."""
        first = self._first
        if header is not first and (
            header.session_id != first.session_id
            or header.source != first.source
            or header.destination != first.destination
            or header.tag != first.tag
            or header.dtype != first.dtype
            or header.shape != first.shape
            or header.chunk_count != first.chunk_count
        ):
            raise MessageRejectedError(
                f"{self._where}: chunk {header.chunk_index} changes the header"
            )
        if header.chunk_index != self._next:
            raise MessageRejectedError(
                f"{self._where}: chunk {header.chunk_index} arrived, expected {self._next}"
            )
        end = self._filled + len(payload)
        if end > self._nbytes:
            raise MessageRejectedError(
                f"{self._where}: payload exceeds the {self._nbytes} bytes its dtype and shape "
                "declare"
            )
        if self._buffer is None:
            self._buffer = np.empty(self._nbytes, dtype=np.uint8)
        self._buffer[self._filled : end] = np.frombuffer(payload, dtype=np.uint8)
        self._filled = end
        self._next += 1

    @property
    def nbytes(self) -> int:
        """The message's size as its dtype and shape declare it (checked against the limit)."""
        return self._nbytes

    @property
    def complete(self) -> bool:
        return self._next == self.chunk_count

    def finish(self) -> npt.NDArray[np.generic]:
        """The received array; raise if chunks are missing or the byte count is wrong."""
        if self._next != self.chunk_count:
            raise MessageRejectedError(
                f"{self._where}: stream ended after {self._next} of {self.chunk_count} chunks"
            )
        if self._filled != self._nbytes:
            raise MessageRejectedError(
                f"{self._where}: {self._filled} payload bytes, but dtype {self._dtype.name} and "
                f"shape {self._shape} declare {self._nbytes}"
            )
        buffer = np.empty(0, np.uint8) if self._buffer is None else self._buffer
        array = buffer.view(self._dtype).reshape(self._shape)
        if not self._dtype.isnative:
            array = array.astype(self._dtype.newbyteorder("="))
        return array
