"""Shamir sharing over GF(2^521 - 1): any t of n shares rebuild a 32-byte secret, t - 1 do
not, and malformed shares or x-coordinates are refused."""

from __future__ import annotations

import itertools
import secrets

import pytest

from crypten_lite.edge.shamir import (
    PRIME,
    SECRET_SIZE,
    SHARE_SIZE,
    ShamirError,
    decode_share,
    encode_share,
    reconstruct,
    share_secret,
)


def _subsets(points, t, limit=40):
    """Every t-subset of ``points`` (the first ``limit`` of them in lexicographic order,
    plus the last ones, so large n stays fast)."""
    combos = list(itertools.islice(itertools.combinations(points, t), limit))
    combos += list(itertools.combinations(points[::-1], t))[:limit]
    return combos


@pytest.mark.parametrize(("t", "n"), [(2, 2), (2, 5), (3, 5), (5, 5), (4, 7), (11, 20)])
def test_any_t_of_n_shares_rebuild_the_secret(t, n):
    secret = secrets.token_bytes(SECRET_SIZE)
    xs = list(range(1, n + 1))
    points = list(zip(xs, share_secret(secret, xs, t), strict=True))
    for combo in _subsets(points, t):
        assert reconstruct(combo) == secret
        assert reconstruct(list(reversed(combo))) == secret  # order does not matter
    # more than t points of the same polynomial interpolate to the same secret too
    assert reconstruct(points) == secret


def test_arbitrary_x_coordinates_and_extreme_secrets():
    xs = [7, 1 << 20, (1 << 32) - 1, 123456]
    for secret in (bytes(SECRET_SIZE), b"\xff" * SECRET_SIZE, secrets.token_bytes(SECRET_SIZE)):
        shares = share_secret(secret, xs, 3)
        assert all(0 <= s < PRIME for s in shares)
        assert reconstruct(list(zip(xs, shares, strict=True))[1:]) == secret


@pytest.mark.parametrize(("t", "n"), [(2, 3), (3, 5), (5, 5), (11, 20)])
def test_t_minus_one_shares_do_not_give_the_secret(t, n):
    secret = secrets.token_bytes(SECRET_SIZE)
    xs = list(range(1, n + 1))
    points = list(zip(xs, share_secret(secret, xs, t), strict=True))
    for combo in _subsets(points, t - 1, limit=10):
        try:
            got = reconstruct(combo)
        except ShamirError:
            continue  # interpolates to a value that is not even a 32-byte secret
        assert got != secret


def test_t_minus_one_shares_are_consistent_with_any_secret():
    # information-theoretic hiding, checked directly: for t = 3, the two shares at x = 1, 2
    # plus a chosen value at x = 0 always define a degree-2 polynomial; so the same two
    # shares are produced by some sharing of *every* secret. Two sharings of different
    # secrets give unrelated share values.
    s1, s2 = b"\x00" * SECRET_SIZE, b"\x01" * SECRET_SIZE
    a = share_secret(s1, [1, 2, 3], 3)
    b = share_secret(s2, [1, 2, 3], 3)
    assert a[:2] != b[:2]
    # fresh randomness: sharing the same secret twice gives different shares
    assert share_secret(s1, [1, 2, 3], 3) != a


def test_threshold_one_would_be_the_secret_itself_and_still_works():
    secret = secrets.token_bytes(SECRET_SIZE)
    shares = share_secret(secret, [4, 9], 1)
    assert shares == [int.from_bytes(secret, "big")] * 2
    assert reconstruct([(9, shares[1])]) == secret


@pytest.mark.parametrize(
    "xs",
    [[1, 2, 2], [0, 1, 2], [1, -3, 2], [1, 1 << 32, 2], [1, True, 3], [1, 2.0, 3]],
    ids=["duplicate", "zero", "negative", "too-large", "bool", "float"],
)
def test_bad_x_coordinates_are_refused(xs):
    with pytest.raises(ShamirError, match="x-coordinates"):
        share_secret(bytes(SECRET_SIZE), xs, 2)
    with pytest.raises(ShamirError, match="x-coordinates"):
        reconstruct([(x, 5) for x in xs])


def test_too_few_holders_or_shares_are_refused():
    with pytest.raises(ShamirError, match="exceeds"):
        share_secret(bytes(SECRET_SIZE), [1, 2], 3)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ShamirError, match="threshold"):
            share_secret(bytes(SECRET_SIZE), [1, 2, 3], bad)
    with pytest.raises(ShamirError, match="no shares"):
        reconstruct([])


@pytest.mark.parametrize("secret", [b"", b"x" * 31, b"x" * 33, "x" * 32, bytearray(32)])
def test_secret_of_the_wrong_size_or_type_is_refused(secret):
    with pytest.raises(ShamirError, match="32 bytes"):
        share_secret(secret, [1, 2, 3], 2)


@pytest.mark.parametrize("value", [PRIME, PRIME + 1, -1, 1 << 600, True, 1.0])
def test_share_outside_the_field_is_refused(value):
    with pytest.raises(ShamirError, match="field element"):
        reconstruct([(1, 3), (2, value)])
    with pytest.raises(ShamirError, match="field element"):
        encode_share(value)


def test_share_encoding_round_trip_and_wrong_lengths():
    for value in (0, 1, PRIME - 1, secrets.randbelow(PRIME)):
        data = encode_share(value)
        assert len(data) == SHARE_SIZE
        assert decode_share(data) == value
    for data in (b"", bytes(SHARE_SIZE - 1), bytes(SHARE_SIZE + 1), bytearray(SHARE_SIZE)):
        with pytest.raises(ShamirError, match=f"{SHARE_SIZE} bytes"):
            decode_share(data)
    with pytest.raises(ShamirError, match="field element"):
        decode_share(PRIME.to_bytes(SHARE_SIZE, "big"))
    with pytest.raises(ShamirError, match="field element"):
        decode_share(b"\xff" * SHARE_SIZE)


def test_a_wrong_share_changes_the_secret():
    secret = secrets.token_bytes(SECRET_SIZE)
    xs = [1, 2, 3]
    shares = share_secret(secret, xs, 3)
    # a random error: the interpolated constant term is a random field element, not 32
    # bytes (probability of passing ~2^-265)
    bad = list(shares)
    bad[1] = (bad[1] + secrets.randbelow(PRIME - 1) + 1) % PRIME
    with pytest.raises(ShamirError, match="bad share"):
        reconstruct(list(zip(xs, bad, strict=True)))
    # a small error shifts the secret by a small multiple (L_2(0) = -3 here): still 32
    # bytes, so only a commitment to the secret (as SecAgg's) can catch it
    off_by_one = list(shares)
    off_by_one[1] = (off_by_one[1] + 1) % PRIME
    expected = (int.from_bytes(secret, "big") - 3) % PRIME
    if expected < 1 << 256:
        assert reconstruct(list(zip(xs, off_by_one, strict=True))) == expected.to_bytes(32, "big")
