"""Frames, chunk reassembly and the mailbox of the gRPC transport (no network)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite._proto import party_pb2
from crypten_lite.errors import (
    MessageRejectedError,
    MessageTooLargeError,
    PeerLostError,
    PeerTimeoutError,
)
from crypten_lite.transport.base import ALLOWED_DTYPES
from crypten_lite.transport.grpc.mailbox import Mailbox
from crypten_lite.transport.grpc.wire import (
    WIRE_DTYPES,
    Assembler,
    Header,
    decode_frame,
    encode_frames,
)

HEADER = Header("s1", 0, 1, 7)


def _roundtrip(array: np.ndarray, chunk: int = 1 << 20, limit: int = 1 << 30) -> np.ndarray:
    count, frames = encode_frames(HEADER, array, chunk)
    assembler = None
    seen = 0
    for frame in frames:
        header, payload = decode_frame(frame)
        assembler = assembler or Assembler(header, limit)
        assembler.add(header, payload)
        seen += 1
    assert seen == count and assembler is not None and assembler.complete
    return assembler.finish()


def test_wire_dtypes_are_exactly_the_allowed_dtypes():
    assert {np.dtype(d).newbyteorder("=") for d in WIRE_DTYPES.values()} == set(ALLOWED_DTYPES)


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES, key=str))
@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 0, 3)])
def test_every_allowed_dtype_and_shape_round_trips(dtype, shape, rng):
    array = rng.integers(0, 200, size=shape).astype(dtype)
    out = _roundtrip(array)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_large_arrays_are_chunked_and_reassembled(rng):
    array = rng.integers(0, 2**64, size=(300, 1000), dtype=np.uint64)  # 2.4 MB
    count, _ = encode_frames(HEADER, array, 1 << 18)
    assert count == -(-array.nbytes // (1 << 18))
    np.testing.assert_array_equal(_roundtrip(array, chunk=1 << 18), array)


def test_sender_may_reuse_its_array_after_encoding(rng):
    array = rng.integers(0, 2**64, size=100_000, dtype=np.uint64)
    expected = array.copy()
    _, frames = encode_frames(HEADER, array, 1 << 18)
    array[:] = 0  # mutate after "send", before the frames are built
    header, payload = decode_frame(next(frames))
    assembler = Assembler(header, 1 << 30)
    assembler.add(header, payload)
    for frame in frames:
        assembler.add(*decode_frame(frame))
    np.testing.assert_array_equal(assembler.finish(), expected)


def test_non_contiguous_and_big_endian_inputs_travel_as_values():
    base = np.arange(20, dtype=np.int64).reshape(4, 5)
    np.testing.assert_array_equal(_roundtrip(base[:, ::2]), base[:, ::2])
    big = np.arange(6, dtype=">u8")
    np.testing.assert_array_equal(_roundtrip(big), np.arange(6, dtype=np.uint64))


@settings(max_examples=60, deadline=None)
@given(
    session=st.text(max_size=20),
    src=st.integers(0, 2**32 - 1),
    tag=st.integers(0, 2**64 - 1),
    shape=st.lists(st.integers(0, 2**40), max_size=4),
    payload=st.binary(max_size=300),
    large=st.booleans(),
)
def test_frames_agree_with_the_generated_protobuf_code(session, src, tag, shape, payload, large):
    if large:  # above the small-frame size: the scanning decoder (bytes that look like keys)
        payload += b"\x4a\x08" * 40_000
    env = party_pb2.Envelope(
        session_id=session,
        source=src,
        tag=tag,
        dtype="<u8",
        shape=shape,
        payload=payload,
        chunk_index=1,
        chunk_count=3,
    )
    header, got = decode_frame(env.SerializeToString())
    assert bytes(got) == payload
    assert (header.session_id, header.source, header.tag, list(header.shape)) == (
        session,
        src,
        tag,
        shape,
    )


def test_generated_parser_reads_our_frames(rng):
    array = rng.integers(0, 2**64, size=10, dtype=np.uint64)
    _, frames = encode_frames(Header("job", 2, 0, 99), array, 1 << 20)
    env = party_pb2.Envelope.FromString(next(frames))
    assert (env.session_id, env.source, env.destination, env.tag) == ("job", 2, 0, 99)
    assert (env.dtype, list(env.shape), env.chunk_count) == ("<u8", [10], 1)
    np.testing.assert_array_equal(np.frombuffer(env.payload, "<u8"), array)


@pytest.mark.parametrize("frame", [b"\x0a\xff", b"\x4a\x05ab", b"\x0f", b"\x08" + b"\xff" * 11])
def test_malformed_frames_are_rejected(frame):
    with pytest.raises(MessageRejectedError, match="malformed"):
        decode_frame(frame)


def _env(**fields) -> party_pb2.Envelope:
    base = dict(
        session_id="s1",
        source=0,
        destination=1,
        tag=0,
        dtype="<u8",
        shape=[2],
        chunk_index=0,
        chunk_count=1,
    )
    return party_pb2.Envelope(**{**base, **fields})


@pytest.mark.parametrize("dtype", ["|O", "<U8", "pickle", "<c16", ""])
def test_disallowed_dtypes_are_rejected(dtype):
    with pytest.raises(MessageRejectedError, match="dtype"):
        Assembler(_env(dtype=dtype), 1 << 20)


def test_oversized_messages_are_rejected_before_allocation():
    with pytest.raises(MessageTooLargeError, match="exceeds the limit"):
        Assembler(_env(shape=[2**40, 2**40]), 1 << 30)


def test_payload_must_match_dtype_and_shape():
    short = Assembler(_env(), 1 << 20)
    short.add(_env(), memoryview(b"\x00" * 8))
    with pytest.raises(MessageRejectedError, match="declare 16"):
        short.finish()
    with pytest.raises(MessageRejectedError, match="exceeds"):
        Assembler(_env(), 1 << 20).add(_env(), memoryview(b"\x00" * 24))


def test_chunks_must_arrive_in_order_with_an_unchanged_header():
    first = _env(shape=[4], chunk_count=2)
    assembler = Assembler(first, 1 << 20)
    with pytest.raises(MessageRejectedError, match="expected 0"):
        assembler.add(_env(shape=[4], chunk_count=2, chunk_index=1), memoryview(b"\x00" * 16))
    assembler.add(first, memoryview(b"\x00" * 16))
    with pytest.raises(MessageRejectedError, match="changes the header"):
        assembler.add(_env(shape=[4, 1], chunk_count=2, chunk_index=1), memoryview(b"\x00" * 16))
    with pytest.raises(MessageRejectedError, match="chunk_count"):
        Assembler(_env(chunk_count=0), 1 << 20)


def test_mailbox_matches_out_of_order_arrivals_and_drops_duplicates():
    box = Mailbox(1, 2, "s")
    assert box.put(0, 1, np.array([1]))
    assert box.put(0, 0, np.array([0]))
    assert not box.put(0, 1, np.array([9]))  # duplicate still waiting
    assert int(box.take(0, 0, 1.0)[0]) == 0
    assert int(box.take(0, 1, 1.0)[0]) == 1
    assert not box.put(0, 0, np.array([9]))  # late duplicate of a taken message


def test_mailbox_fails_waiting_receives_at_once_when_a_peer_is_lost():
    box = Mailbox(0, 3, "s")
    threading.Timer(0.2, lambda: box.lose(2, "connection broke")).start()
    start = time.monotonic()
    with pytest.raises(PeerLostError, match="lost party 2: connection broke"):
        box.take(1, 0, 10.0)  # waiting on another peer: the job is over anyway
    assert time.monotonic() - start < 2


def test_mailbox_finished_peer_and_timeouts_name_the_peer():
    box = Mailbox(0, 2, "s")
    box.put(2, 0, np.array([1]))
    box.finish(2, messages_sent=1)
    box.lose(2, "stream closed")  # after a goodbye, a closed stream is not a loss
    assert int(box.take(2, 0, 1.0)[0]) == 1
    with pytest.raises(PeerLostError, match=r"dealer \(rank 2\), which finished after sending 1"):
        box.take(2, 1, 10.0)
    with pytest.raises(PeerTimeoutError, match="message 0 from party 1"):
        box.take(1, 0, 0.1)
