"""Tests for crypten_lite.ring.prg (keyed AES-CTR streams)."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.ring.prg import SEED_SIZE, AesCtrPrg, new_seed

KAT_PATH = Path(__file__).resolve().parents[1] / "vectors" / "prg_kat.json"

# NIST SP 800-38A, appendix F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256.Encrypt).
NIST_COUNTER = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
NIST_PLAINTEXT = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
NIST_CASES = {
    "F.5.1-AES128": (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "874d6191b620e3261bef6864990db6ce"
        "9806f66b7970fdff8617187bb9fffdff"
        "5ae4df3edbd5d35e5b4f09020db03eab"
        "1e031dda2fbe03d1792170a0f3009cee",
    ),
    "F.5.5-AES256": (
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
        "601ec313775789a5b7a7f504bbf3d228"
        "f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988d"
        "dfc9c58db67aada613c2dd08457941a6",
    ),
}

KEY = bytes(range(16))
NONCE = bytes(16)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _nist_keystream(case: str) -> tuple[bytes, bytes]:
    key_hex, ct_hex = NIST_CASES[case]
    return bytes.fromhex(key_hex), _xor(bytes.fromhex(ct_hex), NIST_PLAINTEXT)


# -- known answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(NIST_CASES))
def test_keystream_matches_nist_sp800_38a(case: str) -> None:
    key, keystream = _nist_keystream(case)
    assert AesCtrPrg(key, NIST_COUNTER).random_bytes(64) == keystream
    # Same stream when consumed in pieces that straddle AES block boundaries.
    prg = AesCtrPrg(key, NIST_COUNTER)
    pieces = [prg.random_bytes(n) for n in (5, 11, 17, 0, 31)]
    assert b"".join(pieces) == keystream


@pytest.mark.parametrize("case", sorted(NIST_CASES))
def test_ring_elements_and_bits_follow_nist_keystream(case: str) -> None:
    key, keystream = _nist_keystream(case)
    expected = [int.from_bytes(keystream[i : i + 8], "little") for i in range(0, 64, 8)]
    got = AesCtrPrg(key, NIST_COUNTER).ring_elements(8)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == expected
    expected_bits = [(keystream[i // 8] >> (i % 8)) & 1 for i in range(512)]
    bits = AesCtrPrg(key, NIST_COUNTER).random_bits(512)
    assert [int(b) for b in bits] == expected_bits


def _kat_vectors() -> list[dict[str, object]]:
    data = json.loads(KAT_PATH.read_text())
    vectors: list[dict[str, object]] = data["vectors"]
    return vectors


def _kat_stream(v: dict[str, object]) -> AesCtrPrg:
    if v["kind"] == "direct":
        return AesCtrPrg(bytes.fromhex(str(v["key"])), bytes.fromhex(str(v["nonce"])))
    if v["kind"] == "from_seed":
        key_size = v["key_size"]
        assert isinstance(key_size, int)
        return AesCtrPrg.from_seed(bytes.fromhex(str(v["seed"])), key_size=key_size)
    assert v["kind"] == "fork"
    parent = AesCtrPrg(bytes.fromhex(str(v["key"])), bytes.fromhex(str(v["nonce"])))
    return parent.fork(str(v["label"]))


@pytest.mark.parametrize("vector", _kat_vectors(), ids=lambda v: str(v["name"]))
def test_known_answer_vectors(vector: dict[str, object]) -> None:
    expected = [int(s) for s in vector["ring_elements"]]  # type: ignore[attr-defined]
    assert [int(x) for x in _kat_stream(vector).ring_elements(len(expected))] == expected
    bits = str(vector["bits"])
    got = _kat_stream(vector).random_bits(len(bits))
    assert "".join(str(int(b)) for b in got) == bits


def test_same_stream_in_another_process() -> None:
    code = (
        "from crypten_lite.ring.prg import AesCtrPrg\n"
        f"p = AesCtrPrg({KEY!r}, {NONCE!r})\n"
        "print(p.ring_elements(4).tolist(), p.random_bits(16).tolist())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    p = AesCtrPrg(KEY, NONCE)
    assert out == f"{p.ring_elements(4).tolist()} {p.random_bits(16).tolist()}"


# -- determinism and continuation -----------------------------------------------------------------


def test_same_key_and_nonce_give_same_outputs() -> None:
    a, b = AesCtrPrg(KEY, NONCE), AesCtrPrg(KEY, NONCE)
    for prg_a, prg_b in ((a, b),) * 3:
        np.testing.assert_array_equal(prg_a.ring_elements((3, 5)), prg_b.ring_elements((3, 5)))
        np.testing.assert_array_equal(prg_a.random_bits(77), prg_b.random_bits(77))
        assert prg_a.random_bytes(9) == prg_b.random_bytes(9)
    assert not np.array_equal(
        AesCtrPrg(KEY, NONCE).ring_elements(4), AesCtrPrg(KEY, b"\1" + NONCE[1:]).ring_elements(4)
    )


def test_successive_calls_continue_the_stream() -> None:
    one = AesCtrPrg(KEY, NONCE)
    two = AesCtrPrg(KEY, NONCE)
    n = 1000
    np.testing.assert_array_equal(
        np.concatenate([one.ring_elements(n), one.ring_elements(n)]), two.ring_elements(2 * n)
    )
    np.testing.assert_array_equal(
        np.concatenate([one.random_bits(64), one.random_bits(8)]), two.random_bits(72)
    )
    # Every output kind reads the same byte stream.
    stream = AesCtrPrg(KEY, NONCE).random_bytes(16 * n + 2)
    mixed = AesCtrPrg(KEY, NONCE)
    assert mixed.ring_elements(2 * n).astype("<u8").tobytes() == stream[: 16 * n]
    assert mixed.random_uint8(1).tobytes() == stream[16 * n : 16 * n + 1]
    expected_bits = [(stream[16 * n + 1] >> k) & 1 for k in range(8)]
    assert mixed.random_bits(8).tolist() == expected_bits


def test_large_requests_cross_internal_chunks() -> None:
    n = 300_001  # more than two internal chunks, odd length
    whole = AesCtrPrg(KEY, NONCE).random_bytes(n)
    prg = AesCtrPrg(KEY, NONCE)
    assert prg.random_bytes(7) + prg.random_bytes(n - 7) == whole
    words = AesCtrPrg(KEY, NONCE).ring_elements(n // 8)
    assert words.astype("<u8").tobytes() == whole[: 8 * (n // 8)]
    assert AesCtrPrg(KEY, NONCE).random_uint8(n).tobytes() == whole


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=70), max_size=8))
def test_random_bytes_split_anywhere(sizes: list[int]) -> None:
    prg = AesCtrPrg(KEY, NONCE)
    pieces = b"".join(prg.random_bytes(n) for n in sizes)
    assert pieces == AesCtrPrg(KEY, NONCE).random_bytes(sum(sizes))
    assert prg.bytes_generated == sum(sizes)


def test_bytes_generated_counts_keystream() -> None:
    prg = AesCtrPrg(KEY, NONCE)
    assert prg.bytes_generated == 0
    prg.ring_elements((2, 3))
    prg.random_bits(9)  # ceil(9 / 8) bytes
    prg.random_uint8(5)
    prg.random_bytes(4)
    assert prg.bytes_generated == 48 + 2 + 5 + 4


# -- fork -----------------------------------------------------------------------------------------


def test_fork_is_deterministic_and_label_separated() -> None:
    parent = AesCtrPrg(KEY, NONCE)
    a = parent.fork("triples").ring_elements(8)
    parent.ring_elements(100)  # position of the parent does not matter
    np.testing.assert_array_equal(parent.fork(b"triples").ring_elements(8), a)
    np.testing.assert_array_equal(AesCtrPrg(KEY, NONCE).fork("triples").ring_elements(8), a)
    others = [
        parent.fork("triples2").ring_elements(8),
        parent.fork("").ring_elements(8),
        AesCtrPrg(KEY, NONCE).ring_elements(8),
        AesCtrPrg(KEY, b"\1" * 16).fork("triples").ring_elements(8),
        AesCtrPrg(bytes(16), NONCE).fork("triples").ring_elements(8),
    ]
    for other in others:
        assert not np.array_equal(other, a)
    nested = parent.fork("x").fork("y").ring_elements(8)
    assert not np.array_equal(nested, parent.fork("y").ring_elements(8))


def test_fork_keeps_key_size_and_validates_label() -> None:
    assert AesCtrPrg(bytes(32)).fork("a").key_size == 32
    assert AesCtrPrg(bytes(16)).fork("a").key_size == 16
    with pytest.raises(TypeError, match="label"):
        AesCtrPrg(KEY).fork(3)  # type: ignore[arg-type]


# -- shapes and distributions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [(5, (5,)), ((2, 3), (2, 3)), ([4], (4,)), (0, (0,)), ((3, 0, 2), (3, 0, 2)), ((), ())],
)
def test_output_shapes_and_dtypes(shape: object, expected: tuple[int, ...]) -> None:
    prg = AesCtrPrg(KEY, NONCE)
    for out, dtype in (
        (prg.ring_elements(shape), np.uint64),  # type: ignore[arg-type]
        (prg.random_bits(shape), np.uint64),  # type: ignore[arg-type]
        (prg.random_uint8(shape), np.uint8),  # type: ignore[arg-type]
    ):
        assert out.shape == expected
        assert out.dtype == dtype


def test_numpy_integer_dims_accepted() -> None:
    prg = AesCtrPrg(KEY, NONCE)
    assert prg.ring_elements((np.int64(2), np.uint8(3))).shape == (2, 3)  # type: ignore[arg-type]
    assert len(prg.random_bytes(np.int32(5))) == 5  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, (2, -3)])
def test_negative_sizes_raise_value_error(bad: object) -> None:
    prg = AesCtrPrg(KEY, NONCE)
    with pytest.raises(ValueError, match="shape"):
        prg.ring_elements(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        prg.random_bytes(-1)


@pytest.mark.parametrize("bad", [2.0, "3", True, (2, 1.5), None])
def test_non_integer_sizes_raise_type_error(bad: object) -> None:
    prg = AesCtrPrg(KEY, NONCE)
    with pytest.raises(TypeError, match="shape"):
        prg.random_bits(bad)  # type: ignore[arg-type]
    if not isinstance(bad, tuple):
        with pytest.raises(TypeError, match="n must"):
            prg.random_bytes(bad)  # type: ignore[arg-type]


def test_bits_are_zero_one_and_balanced() -> None:
    bits = AesCtrPrg.from_seed(bytes(range(32))).random_bits(200_000)
    assert set(np.unique(bits).tolist()) == {0, 1}
    assert abs(bits.mean() - 0.5) < 0.01  # ~9 standard deviations
    # Neighbouring outputs come from the same keystream byte: check they are uncorrelated.
    pairs = bits[:-1] * 2 + bits[1:]
    assert np.all(
        np.abs(np.bincount(pairs.astype(np.int64), minlength=4) / pairs.size - 0.25) < 0.01
    )


def test_ring_elements_cover_all_bit_positions() -> None:
    values = AesCtrPrg.from_seed(bytes(range(32))).ring_elements(100_000)
    top = (values >> np.uint64(63)).astype(np.float64)
    assert abs(top.mean() - 0.5) < 0.015  # ~9 standard deviations
    per_bit = ((values[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).mean(axis=0)
    assert np.all(np.abs(per_bit - 0.5) < 0.015)
    assert values.max() > np.uint64(2**64 - 2**58)


def test_uint8_covers_all_values() -> None:
    counts = np.bincount(AesCtrPrg(KEY, NONCE).random_uint8(256 * 200), minlength=256)
    assert counts.min() > 100
    assert counts.max() < 300


# -- validation and secrecy -----------------------------------------------------------------------

SECRET = bytes(range(0xA0, 0xC0))  # 32 distinctive bytes


@pytest.mark.parametrize("length", [0, 15, 17, 24, 31, 33])
def test_bad_key_length_names_key_and_hides_it(length: int) -> None:
    key = SECRET[:length] if length <= 32 else SECRET + b"\xee"
    with pytest.raises(ValueError, match="key") as info:
        AesCtrPrg(key, NONCE)
    message = str(info.value)
    if length:
        assert key.hex() not in message
        assert repr(key) not in message
        assert key[:4].hex() not in message


def test_bad_types_name_the_argument() -> None:
    with pytest.raises(TypeError, match="key"):
        AesCtrPrg(SECRET.hex())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        AesCtrPrg(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nonce"):
        AesCtrPrg(KEY, "0" * 16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonce") as info:
        AesCtrPrg(SECRET[:16], SECRET[16:28])
    assert SECRET[16:28].hex() not in str(info.value)
    assert SECRET[:16].hex() not in str(info.value)


def test_bytes_like_key_and_nonce_accepted() -> None:
    ref = AesCtrPrg(KEY, NONCE).ring_elements(3)
    np.testing.assert_array_equal(
        AesCtrPrg(bytearray(KEY), memoryview(NONCE)).ring_elements(3), ref
    )


def test_repr_hides_key_and_copy_is_refused() -> None:
    for key in (SECRET[:16], SECRET):
        prg = AesCtrPrg(key, SECRET[:16])
        prg.ring_elements(2)
        for text in (repr(prg), str(prg)):
            assert "<keyed>" in text
            assert key[:8].hex() not in text
            assert repr(key[:8])[2:-1] not in text
        assert f"aes={8 * len(key)}" in repr(prg)
        for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match="fork"):
                attempt(prg)


# -- seeds ----------------------------------------------------------------------------------------


def test_from_seed_is_deterministic_and_seed_dependent() -> None:
    seed = bytes(range(32))
    a = AesCtrPrg.from_seed(seed).ring_elements(8)
    np.testing.assert_array_equal(AesCtrPrg.from_seed(seed).ring_elements(8), a)
    other = bytes([1]) + seed[1:]
    assert not np.array_equal(AesCtrPrg.from_seed(other).ring_elements(8), a)
    big = AesCtrPrg.from_seed(seed, key_size=32)
    assert big.key_size == 32
    assert not np.array_equal(big.ring_elements(8), a)


def test_from_seed_validates() -> None:
    with pytest.raises(ValueError, match="seed") as info:
        AesCtrPrg.from_seed(SECRET[:31])
    assert SECRET[:31].hex() not in str(info.value)
    with pytest.raises(TypeError, match="seed"):
        AesCtrPrg.from_seed("x" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_size"):
        AesCtrPrg.from_seed(bytes(32), key_size=24)
    with pytest.raises(TypeError, match="key_size"):
        AesCtrPrg.generate(key_size="16")  # type: ignore[arg-type]


def test_generate_and_new_seed_are_fresh() -> None:
    seed_a, seed_b = new_seed(), new_seed()
    assert isinstance(seed_a, bytes)
    assert len(seed_a) == SEED_SIZE
    assert seed_a != seed_b
    a, b = AesCtrPrg.generate(), AesCtrPrg.generate()
    assert a.key_size == 16
    assert AesCtrPrg.generate(key_size=32).key_size == 32
    assert not np.array_equal(a.ring_elements(4), b.ring_elements(4))
