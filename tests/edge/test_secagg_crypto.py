"""SecAgg key material: pairwise seeds agree from both ends and are bound to the round and
the pair; sealed shares open only for the right sender, receiver and round; invalid X25519
public keys are refused."""

from __future__ import annotations

import pickle

import pytest

from crypten_lite.edge.secagg_crypto import (
    GCM_NONCE_SIZE,
    KEY_SIZE,
    SEALED_SIZE,
    RoundKeys,
    ShareAuthenticationError,
    check_public_key,
    commit_seed,
    mask_sign,
    open_shares,
    pair_seed,
    public_key_of,
    round_context,
    seal_shares,
    share_key,
)
from crypten_lite.errors import ProtocolError

CTX = round_context("job", 1)
PLAIN = bytes(range(132))  # two 66-byte shares


def test_round_context_is_bound_to_job_and_round():
    assert len(CTX) == 32
    assert round_context("job", 1) == CTX
    assert round_context("job", 2) != CTX
    assert round_context("job2", 1) != CTX
    # the job id is length-framed: no ambiguity between job and round bytes
    assert round_context("a", 0x62) != round_context("ab", 0)


def test_pair_seed_is_equal_from_both_ends():
    a, b = RoundKeys(), RoundKeys()
    s_ab = pair_seed(a.mask_private, b.mask_public, CTX, 1, 2)
    s_ba = pair_seed(b.mask_private, a.mask_public, CTX, 2, 1)
    assert s_ab == s_ba and len(s_ab) == KEY_SIZE
    assert share_key(a.cipher_private, b.cipher_public, CTX, 1, 2) == share_key(
        b.cipher_private, a.cipher_public, CTX, 2, 1
    )


def test_pair_seed_differs_by_round_context_and_by_pair():
    a, b, c = RoundKeys(), RoundKeys(), RoundKeys()
    base = pair_seed(a.mask_private, b.mask_public, CTX, 1, 2)
    assert pair_seed(a.mask_private, b.mask_public, round_context("job", 2), 1, 2) != base
    assert pair_seed(a.mask_private, b.mask_public, round_context("other", 1), 1, 2) != base
    assert pair_seed(a.mask_private, b.mask_public, CTX, 1, 3) != base  # other indices
    assert pair_seed(a.mask_private, c.mask_public, CTX, 1, 2) != base  # other peer
    # the mask seed and the share key of one pair are different keys
    assert share_key(a.mask_private, b.mask_public, CTX, 1, 2) != base


def test_seal_open_round_trip():
    a, b = RoundKeys(), RoundKeys()
    key_a = share_key(a.cipher_private, b.cipher_public, CTX, 1, 2)
    key_b = share_key(b.cipher_private, a.cipher_public, CTX, 2, 1)
    sealed = seal_shares(key_a, CTX, 1, 2, PLAIN)
    assert len(sealed) == SEALED_SIZE
    assert PLAIN not in sealed
    assert open_shares(key_b, CTX, 1, 2, sealed) == PLAIN
    # fresh nonce each time
    assert seal_shares(key_a, CTX, 1, 2, PLAIN)[:GCM_NONCE_SIZE] != sealed[:GCM_NONCE_SIZE]


def _sealed():
    a, b = RoundKeys(), RoundKeys()
    key = share_key(a.cipher_private, b.cipher_public, CTX, 1, 2)
    return key, seal_shares(key, CTX, 1, 2, PLAIN)


@pytest.mark.parametrize(
    "change",
    ["receiver", "sender", "swapped", "context", "job", "flip-nonce", "flip-body", "flip-tag",
     "truncated", "empty", "key"],
)
def test_open_refuses_anything_but_the_exact_channel(change):
    key, sealed = _sealed()
    ctx, sender, receiver = CTX, 1, 2
    if change == "receiver":
        receiver = 3
    elif change == "sender":
        sender = 3
    elif change == "swapped":
        sender, receiver = 2, 1
    elif change == "context":
        ctx = round_context("job", 2)
    elif change == "job":
        ctx = round_context("job-b", 1)
    elif change.startswith("flip"):
        pos = {"flip-nonce": 0, "flip-body": GCM_NONCE_SIZE + 40, "flip-tag": len(sealed) - 1}
        raw = bytearray(sealed)
        raw[pos[change]] ^= 0x01
        sealed = bytes(raw)
    elif change == "truncated":
        sealed = sealed[: GCM_NONCE_SIZE + 16]
    elif change == "empty":
        sealed = b""
    elif change == "key":
        key = bytes(KEY_SIZE)
    with pytest.raises(ShareAuthenticationError, match=f"client {sender}"):
        open_shares(key, ctx, sender, receiver, sealed)


def test_share_authentication_error_is_a_protocol_error():
    assert issubclass(ShareAuthenticationError, ProtocolError)


@pytest.mark.parametrize(
    "raw",
    [bytes(31), bytes(33), b"", "x" * 32, None, bytearray(32)],
    ids=["31", "33", "empty", "str", "none", "bytearray"],
)
def test_check_public_key_refuses_the_wrong_size_or_type(raw):
    with pytest.raises(ProtocolError, match="cipher_public must be 32 bytes"):
        check_public_key(raw, "cipher_public")


@pytest.mark.parametrize(
    "u", [0, 1, (1 << 255) - 20], ids=["zero", "one", "p-1"]
)
def test_check_public_key_refuses_small_order_points(u):
    with pytest.raises(ProtocolError, match="mask_public is not a valid X25519 public key"):
        check_public_key(u.to_bytes(32, "little"), "mask_public")


def test_check_public_key_accepts_a_real_key():
    keys = RoundKeys()
    assert check_public_key(keys.mask_public, "k") == keys.mask_public
    assert public_key_of(keys.mask_secret()) == keys.mask_public
    assert keys.mask_public != keys.cipher_public


def test_round_keys_never_print_or_pickle_their_secrets():
    keys = RoundKeys()
    assert keys.mask_secret().hex() not in repr(keys)
    assert "hidden" in repr(keys)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(keys)


def test_commit_seed_binds_context_index_and_seed():
    seed = b"s" * 32
    c = commit_seed(CTX, 1, seed)
    assert len(c) == 32
    assert commit_seed(CTX, 2, seed) != c
    assert commit_seed(round_context("job", 2), 1, seed) != c
    assert commit_seed(CTX, 1, b"t" * 32) != c


def test_mask_sign_is_antisymmetric():
    assert mask_sign(1, 2) == 1 and mask_sign(2, 1) == -1
    for u in range(1, 6):
        for v in range(1, 6):
            if u != v:
                assert mask_sign(u, v) == -mask_sign(v, u)
