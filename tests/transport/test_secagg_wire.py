"""SecAgg messages on the wire: every message round-trips, every malformed request is refused
INVALID naming the field (before anything is built from it), and a malformed state reply
from a server raises CommunicationError, never a refusal or a stray exception."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite._proto import edge_pb2
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError
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
from crypten_lite.errors import CommunicationError
from crypten_lite.transport.grpc.secagg_wire import (
    MAX_NEIGHBOURS,
    MAX_WAIT_MS,
    decode_advertise,
    decode_masked_upload,
    decode_share_keys,
    decode_state_reply,
    decode_state_request,
    decode_unmask,
    encode_advertise,
    encode_masked_upload,
    encode_share_keys,
    encode_state_reply,
    encode_state_request,
    encode_unmask,
    scan_masked_upload,
)

MAX_BYTES = 1 << 20
KEY_A, KEY_B = bytes(range(KEY_SIZE)), bytes(range(1, KEY_SIZE + 1))
SEALED = bytes(SEALED_SIZE)
SHARE = bytes(range(SHARE_SIZE))


def _state(**changes) -> SecAggState:
    fields = dict(
        round=7,
        stage=SecAggStage.UNMASK,
        index=2,
        threshold=2,
        neighbours=(NeighbourKey(1, KEY_A, KEY_B), NeighbourKey(3, KEY_B, KEY_A)),
        shared=(1, 3),
        inbox=(EncryptedShare(1, 2, SEALED), EncryptedShare(3, 2, b"\x01" * SEALED_SIZE)),
        survivors=(1,),
        dropped=(3,),
        failure="",
    )
    fields.update(changes)
    return SecAggState(**fields)


def _refused(match: str):
    return pytest.raises(EdgeRequestError, match=match)


def _bad_reply(match: str):
    return pytest.raises(CommunicationError, match=match)


# -- round trips -------------------------------------------------------------------------------


def test_the_state_round_trips():
    assert decode_state_request(encode_state_request(2**64 - 1)) == (2**64 - 1, None, 0.0)
    assert decode_state_request(encode_state_request(3, SecAggStage.SHARE_KEYS, 2.5)) == (
        3,
        SecAggStage.SHARE_KEYS,
        2.5,
    )
    # a long poll is capped at MAX_WAIT_MS
    assert decode_state_request(encode_state_request(3, SecAggStage.UNMASK, 1e6))[2] == (
        MAX_WAIT_MS / 1000
    )
    for state in (
        _state(),
        _state(stage=SecAggStage.FAILED, failure="too few clients at stage unmask"),
        SecAggState(round=0, stage=SecAggStage.ADVERTISE),  # no index yet
    ):
        assert decode_state_reply(encode_state_reply(state)) == state


def test_the_uploads_round_trip():
    advert = KeyAdvert(3, KEY_A, KEY_B)
    assert decode_advertise(encode_advertise(advert)) == advert
    sealed = (EncryptedShare(2, 1, SEALED), EncryptedShare(2, 3, SEALED))
    shares = ShareKeysUpload(3, bytes(32), sealed)
    assert decode_share_keys(encode_share_keys(shares)) == shares
    unmask = UnmaskUpload(3, seed_shares=((1, SHARE),), key_shares=((4, SHARE), (5, SHARE)))
    assert decode_unmask(encode_unmask(unmask)) == unmask
    assert decode_unmask(encode_unmask(UnmaskUpload(3))) == UnmaskUpload(3)


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_a_masked_upload_round_trips_into_a_writable_copy(ring_bits):
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    vector = np.random.default_rng(0).integers(0, 2**ring_bits, 1000, dtype=dtype)
    upload = MaskedUpload(4, 1000, ring_bits, vector, complaints=(2, 9))
    data = encode_masked_upload(upload)
    assert len(data) > 1000 * ring_bits // 8
    scanned = scan_masked_upload(data, MAX_BYTES)
    assert scanned.vector.obj is data  # a view: nothing copied before the job check
    assert "vector" not in repr(scanned)
    scanned.check_job(1000, ring_bits)
    out = scanned.upload()
    fields = (out.round, out.num_elements, out.ring_bits, out.complaints)
    assert fields == (4, 1000, ring_bits, (2, 9))
    assert out.vector.dtype == dtype and out.vector.flags.writeable
    np.testing.assert_array_equal(out.vector, vector)
    out.vector[0] ^= 1  # its own memory
    assert decode_masked_upload(data, MAX_BYTES).vector[0] == vector[0]


def test_the_wire_is_little_endian():
    upload = MaskedUpload(1, 2, 32, np.array([1, 0x01020304], dtype=np.uint32))
    request = edge_pb2.MaskedInputRequest.FromString(encode_masked_upload(upload))
    assert request.vector == b"\x01\x00\x00\x00\x04\x03\x02\x01"
    big_endian = np.array([1, 0x01020304], dtype=">u4").astype(np.uint32)
    same = MaskedUpload(1, 2, 32, big_endian)
    assert encode_masked_upload(same) == encode_masked_upload(upload)


# -- refused requests ----------------------------------------------------------------------------


def test_wrong_key_sizes_are_refused_both_ways():
    with _refused("cipher_public must be 32 bytes, got 31") as info:
        encode_advertise(KeyAdvert(1, KEY_A[:31], KEY_B))
    assert info.value.refusal is EdgeRefusal.INVALID
    with _refused("mask_public must be 32 bytes, got 33"):
        encode_advertise(KeyAdvert(1, KEY_A, KEY_B + b"x"))
    with _refused("mask_public must be 32 bytes, got str"):
        encode_advertise(KeyAdvert(1, KEY_A, "k" * 32))
    raw = edge_pb2.AdvertiseRequest(round=1, cipher_public=KEY_A).SerializeToString()
    with _refused("mask_public must be 32 bytes, got 0"):
        decode_advertise(raw)


def test_wrong_sealed_and_commitment_sizes_are_refused():
    with _refused("sealed must be 160 bytes, got 159"):
        encode_share_keys(ShareKeysUpload(1, bytes(32), (EncryptedShare(1, 2, SEALED[:-1]),)))
    with _refused("seed_commitment must be 32 bytes"):
        encode_share_keys(ShareKeysUpload(1, bytes(16), ()))
    raw = edge_pb2.ShareKeysRequest(
        round=1,
        seed_commitment=bytes(32),
        shares=[edge_pb2.EncryptedShare(sender=1, receiver=2, sealed=SEALED + b"x")],
    ).SerializeToString()
    with _refused("sealed must be 160 bytes, got 161"):
        decode_share_keys(raw)


def test_wrong_share_sizes_are_refused():
    with _refused("a share in seed_shares must be 66 bytes, got 65"):
        encode_unmask(UnmaskUpload(1, seed_shares=((1, SHARE[:-1]),)))
    raw = edge_pb2.UnmaskRequest(
        round=1, key_shares=[edge_pb2.IndexedShare(index=1, share=SHARE * 2)]
    ).SerializeToString()
    with _refused("a share in key_shares must be 66 bytes, got 132"):
        decode_unmask(raw)


def test_index_zero_and_out_of_range_indices_are_refused():
    with _refused(r"sender must be an integer in \[1, 2\^32\)"):
        encode_share_keys(ShareKeysUpload(1, bytes(32), (EncryptedShare(0, 2, SEALED),)))
    with _refused(r"receiver must be an integer in \[1, 2\^32\)"):
        encode_share_keys(ShareKeysUpload(1, bytes(32), (EncryptedShare(1, 2**32, SEALED),)))
    with _refused("an index in seed_shares must be"):
        encode_unmask(UnmaskUpload(1, seed_shares=((0, SHARE),)))
    with _refused("an index in complaints must be"):
        encode_masked_upload(MaskedUpload(1, 1, 32, np.zeros(1, np.uint32), complaints=(0,)))
    with _refused("an index in seed_shares must be"):
        decode_unmask(
            edge_pb2.UnmaskRequest(
                round=1, seed_shares=[edge_pb2.IndexedShare(index=0, share=SHARE)]
            ).SerializeToString()
        )
    with _refused(r"round must be an integer in \[0, 2\^64\)"):
        encode_advertise(KeyAdvert(-1, KEY_A, KEY_B))
    with _refused("round must be"):
        encode_state_request(True)


def test_too_many_entries_are_refused_before_they_are_checked_one_by_one():
    many = MAX_NEIGHBOURS + 1
    share = EncryptedShare(1, 2, SEALED)
    with _refused(f"shares has {many} entries; at most {MAX_NEIGHBOURS}"):
        encode_share_keys(ShareKeysUpload(1, bytes(32), (share,) * many))
    with _refused(f"key_shares has {many} entries"):
        encode_unmask(UnmaskUpload(1, key_shares=((1, SHARE),) * many))
    with _refused(f"complaints has {many} entries"):
        encode_masked_upload(MaskedUpload(1, 1, 32, np.zeros(1, np.uint32), (1,) * many))
    raw = edge_pb2.ShareKeysRequest(
        round=1,
        seed_commitment=bytes(32),
        shares=[edge_pb2.EncryptedShare(sender=1, receiver=2, sealed=b"")] * many,
    ).SerializeToString()
    with _refused(f"shares has {many} entries"):  # not "sealed must be ..."
        decode_share_keys(raw)
    # exactly the limit is fine
    upload = ShareKeysUpload(1, bytes(32), (share,) * MAX_NEIGHBOURS)
    assert len(decode_share_keys(encode_share_keys(upload)).shares) == MAX_NEIGHBOURS


def test_bad_masked_vectors_are_refused():
    with _refused("ring_bits must be one of"):
        encode_masked_upload(MaskedUpload(1, 2, 16, np.zeros(2, np.uint16)))
    with _refused("vector must be a numpy uint64 array"):
        encode_masked_upload(MaskedUpload(1, 2, 64, np.zeros(2, np.uint32)))
    with _refused("vector has 3 elements; num_elements = 2"):
        encode_masked_upload(MaskedUpload(1, 2, 32, np.zeros(3, np.uint32)))
    with _refused(r"num_elements must be an integer in \[1, 2\^64\)"):
        encode_masked_upload(MaskedUpload(1, 0, 32, np.zeros(0, np.uint32)))
    cases = {
        "vector has 12 bytes; num_elements = 4 in a 32-bit ring needs 16": dict(
            num_elements=4, ring_bits=32, vector=bytes(12)
        ),
        "ring_bits must be one of": dict(num_elements=4, ring_bits=16, vector=bytes(8)),
        r"num_elements must lie in \[1, 131072\]": dict(
            num_elements=2**40, ring_bits=64, vector=bytes(8)
        ),
        "num_elements must lie in": dict(num_elements=0, ring_bits=32, vector=b""),
    }
    for match, fields in cases.items():
        raw = edge_pb2.MaskedInputRequest(round=1, **fields).SerializeToString()
        with _refused(match):
            scan_masked_upload(raw, MAX_BYTES)
    with _refused("not a valid protobuf message"):
        scan_masked_upload(b"\xff\xff\xff", MAX_BYTES)


def test_a_masked_upload_is_checked_against_the_job():
    data = encode_masked_upload(MaskedUpload(1, 4, 32, np.zeros(4, np.uint32)))
    scanned = scan_masked_upload(data, MAX_BYTES)
    with _refused("declares 4 elements in a 32-bit ring; this job takes 5 in a 32-bit ring"):
        scanned.check_job(5, 32)
    with _refused("this job takes 4 in a 64-bit ring"):
        scanned.check_job(4, 64)


def test_garbage_requests_are_refused():
    for decode in (decode_state_request, decode_advertise, decode_share_keys, decode_unmask):
        with _refused("not a valid protobuf message"):
            decode(b"\xff\xff\xff")


def test_messages_show_no_key_or_share_material():
    secret = b"TOPSECRET" * 7  # 63 bytes: a wrong-size share, and a wrong-size key
    for encode, message in (
        (encode_unmask, UnmaskUpload(1, seed_shares=((1, secret),))),
        (encode_advertise, KeyAdvert(1, KEY_A, secret)),
    ):
        with pytest.raises(EdgeRequestError) as info:
            encode(message)
        text = str(info.value)
        assert "TOPSECRET" not in text and secret.hex() not in text


# -- state replies -------------------------------------------------------------------------------


def _reply(**fields) -> bytes:
    base = dict(round=7, stage="unmask", index=2, threshold=2)
    base.update(fields)
    return edge_pb2.SecAggStateReply(**base).SerializeToString()


def test_a_malformed_state_reply_is_a_communication_error_not_a_refusal():
    neighbour = dict(index=1, cipher_public=KEY_A, mask_public=KEY_B)
    cases = {
        "unknown stage 'bogus'": _reply(stage="bogus"),
        "cipher_public must be 32 bytes, got 3": _reply(
            neighbours=[edge_pb2.NeighbourKey(index=1, cipher_public=b"abc", mask_public=KEY_B)]
        ),
        "a neighbour index must be": _reply(
            neighbours=[edge_pb2.NeighbourKey(**{**neighbour, "index": 0})]
        ),
        "sealed must be 160 bytes, got 0": _reply(
            inbox=[edge_pb2.EncryptedShare(sender=1, receiver=2)]
        ),
        "an index in survivors must be": _reply(survivors=[1, 0]),
        f"neighbours has {MAX_NEIGHBOURS + 1} entries": _reply(
            neighbours=[edge_pb2.NeighbourKey(**neighbour)] * (MAX_NEIGHBOURS + 1)
        ),
        f"dropped has {MAX_NEIGHBOURS + 1} entries": _reply(
            dropped=[1] * (MAX_NEIGHBOURS + 1)
        ),
        "not valid protobuf": b"\xff\xff\xff",
    }
    for match, data in cases.items():
        with _bad_reply(match) as info:
            decode_state_reply(data)
        assert not isinstance(info.value, EdgeRequestError), match


def test_a_server_failure_text_is_cleaned_and_bounded():
    state = decode_state_reply(_reply(stage="failed", failure="bad\x1b[2J" + "x" * 1000))
    assert state.stage is SecAggStage.FAILED
    assert state.failure.startswith("bad?[2J") and len(state.failure) == 400


def test_a_malformed_handler_state_is_a_server_error():
    with pytest.raises(ValueError, match="malformed: stage must be a SecAggStage"):
        encode_state_reply(_state(stage="unmask"))
    with pytest.raises(ValueError, match="cipher_public must be 32 bytes"):
        encode_state_reply(_state(neighbours=(NeighbourKey(1, b"", KEY_B),)))
    with pytest.raises(ValueError, match="an index in shared must be"):
        encode_state_reply(_state(shared=(0,)))
    # a long failure is cut, not refused
    long = decode_state_reply(encode_state_reply(_state(failure="y" * 1000)))
    assert long.failure == "y" * 400
