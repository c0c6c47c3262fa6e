"""Single-server secure aggregation against bad input and malicious parties: every refused
upload names its problem and leaves the round as it was; clients refuse requests that would
reveal both shares of a neighbour; bad Shamir shares and tampered relays are survived (or
fail the round cleanly); a client that bypasses the encoding is clipped; and the server's
view of a client (its masked vector, even minus its self mask) is uniformly random."""

from __future__ import annotations

import dataclasses
import math
import secrets
from statistics import NormalDist

import numpy as np
import pytest

from crypten_lite.client.secagg_client import SecAggProtocolError, SecAggRoundFailed
from crypten_lite.edge.encode import decode_aggregate, quant_params
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, QuantSpec
from crypten_lite.edge.secagg_crypto import RoundKeys, commit_seed, round_context
from crypten_lite.edge.secagg_messages import (
    EncryptedShare,
    KeyAdvert,
    MaskedUpload,
    NeighbourKey,
    SecAggStage,
    UnmaskUpload,
)
from crypten_lite.edge.shamir import PRIME, SHARE_SIZE, decode_share, encode_share
from crypten_lite.edge.shares import expand_seed
from crypten_lite.errors import ProtocolError
from crypten_lite.fl.secagg import SecAggAbortedError
from crypten_lite.fl.secagg.unmask import rebuild_secret

from .secagg_helpers import JOB, Harness, same_snapshot, snapshot


def refused(h, call, refusal, *words):
    """``call()`` is refused with ``refusal``, its message names every word, and the round
    state is exactly as before."""
    before = snapshot(h.rnd)
    with pytest.raises(EdgeRequestError) as err:
        call()
    assert err.value.refusal is refusal, err.value
    for word in words:
        assert word in err.value.detail, (word, err.value.detail)
    assert same_snapshot(before, snapshot(h.rnd)), "a refused upload changed the round"
    return err.value


def held(h, cid, stage_call):
    """What ``cid``'s SDK would upload in ``stage_call(client)`` (not delivered)."""
    h.links[cid].hold = True
    stage_call(h.clients[cid])
    return h.links[cid].take()


def finish_exact(h, cids):
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(cids))
    return result


# -- stage 1: advertise ----------------------------------------------------------------------
def test_second_key_advertisement_is_a_duplicate():
    h = Harness(5, 8)
    h.advertise(close=False)
    cid = h.ids[1]
    fresh = RoundKeys()
    advert = KeyAdvert(h.round, fresh.cipher_public, fresh.mask_public)
    refused(h, lambda: h.service.advertise(cid, advert), EdgeRefusal.DUPLICATE,
            "already advertised keys for round 1")
    # the SDK re-advertising (new keys) is refused the same way
    refused(h, lambda: h.clients[cid].advertise(h.service.round_info(cid)),
            EdgeRefusal.DUPLICATE, "already advertised")
    # the fresh keys were not recorded: another client may still use them
    h.service.advertise("client-99", advert)
    assert h.rnd.by_id["client-99"].mask_public == fresh.mask_public


@pytest.mark.parametrize("slot", ["mask-as-mask", "mask-as-cipher", "cipher-as-mask"])
def test_reusing_another_clients_public_key_is_refused(slot):
    h = Harness(5, 8)
    h.drop(h.ids[4])
    h.advertise(close=False)
    victim = h.rnd.by_id[h.ids[0]]
    own = RoundKeys()
    copied = {"mask-as-mask": (own.cipher_public, victim.mask_public),
              "mask-as-cipher": (victim.mask_public, own.mask_public),
              "cipher-as-mask": (own.cipher_public, victim.cipher_public)}[slot]
    advert = KeyAdvert(h.round, *copied)
    refused(h, lambda: h.service.advertise(h.ids[4], advert), EdgeRefusal.DUPLICATE,
            "a public key another client already advertised")
    assert h.ids[4] not in h.rnd.by_id
    # with keys of its own the client joins, and the round is exact
    h.gone.clear()
    h.clients[h.ids[4]].advertise(h.service.round_info(h.ids[4]))
    h.close()
    h.share_keys()
    h.masked()
    h.unmask()
    finish_exact(h, h.ids)


@pytest.mark.parametrize(
    ("cipher", "mask", "words"),
    [
        (bytes(31), None, ("cipher_public must be 32 bytes",)),
        (None, bytes(33), ("mask_public must be 32 bytes",)),
        (bytes(32), None, ("cipher_public is not a valid X25519 public key",)),
        (None, (1).to_bytes(32, "little"), ("mask_public is not a valid X25519 public key",)),
        (None, "x" * 32, ("mask_public must be 32 bytes",)),
        ("same", "same", ("cipher and mask public keys must differ",)),
    ],
    ids=["cipher-31", "mask-33", "cipher-zero", "mask-order-4", "mask-str", "equal"],
)
def test_invalid_public_key_is_refused(cipher, mask, words):
    h = Harness(5, 8)
    h.advertise(close=False, skip=[h.ids[4]])
    keys = RoundKeys()
    if cipher == "same":
        cipher = mask = keys.mask_public
    advert = KeyAdvert(
        h.round,
        keys.cipher_public if cipher is None else cipher,
        keys.mask_public if mask is None else mask,
    )
    refused(h, lambda: h.service.advertise(h.ids[4], advert), EdgeRefusal.INVALID, *words)
    assert h.ids[4] not in h.rnd.by_id


def test_advertising_after_the_stage_closed_is_stale():
    h = Harness(5, 8)
    late = h.ids[4]
    assert h.service.round_info(late).state.value == "open"
    h.advertise(skip=[late])
    keys = RoundKeys()
    refused(h, lambda: h.service.advertise(late, KeyAdvert(1, keys.cipher_public,
                                                           keys.mask_public)),
            EdgeRefusal.STALE, "round 1 is at stage share_keys")
    # the SDK sees the round closed for keys and does not try
    assert h.service.round_info(late).state.value == "closed"
    with pytest.raises(SecAggRoundFailed, match="not open"):
        h.clients[late].advertise(h.service.round_info(late))


def test_unknown_client_identity_is_unauthenticated():
    h = Harness(5, 8, allowed_clients=tuple(f"client-{i}" for i in range(5)))
    keys = RoundKeys()
    advert = KeyAdvert(1, keys.cipher_public, keys.mask_public)
    refused(h, lambda: h.service.advertise("client-99", advert), EdgeRefusal.UNAUTHENTICATED,
            "unknown client identity")
    refused(h, lambda: h.service.advertise("", advert), EdgeRefusal.UNAUTHENTICATED,
            "no client identity")
    with pytest.raises(EdgeRequestError, match="unknown client identity"):
        h.service.secagg_state("client-99", 1)
    h.run()  # the allowed clients are unaffected


# -- stage 2: share keys ---------------------------------------------------------------------
def _share_setup(n=8, k=4):
    h = Harness(n, 8, neighbours=k)
    h.advertise()
    cid = h.ids[0]
    upload = held(h, cid, lambda c: c.share_keys(h.state(cid)))
    return h, cid, upload


def _complete_after_share(h, cid, upload):
    """Deliver the honest upload and finish the round exactly."""
    h.service.share_keys(cid, upload)
    h.share_keys(skip=[cid])
    h.masked()
    h.unmask()
    finish_exact(h, h.ids)


def test_share_addressed_to_a_non_neighbour_is_refused():
    h, cid, upload = _share_setup()
    me = h.index(cid)
    outsider = next(v for v in h.rnd.by_index if v != me and v not in h.rnd.by_id[cid].neighbours)
    first = upload.shares[0]
    bad = dataclasses.replace(
        upload, shares=(EncryptedShare(me, outsider, first.sealed), *upload.shares[1:])
    )
    refused(h, lambda: h.service.share_keys(cid, bad), EdgeRefusal.INVALID,
            f"a share for client {outsider}, which is not a neighbour")
    # nor an extra share on top of the right ones
    extra = dataclasses.replace(
        upload, shares=(*upload.shares, EncryptedShare(me, outsider, first.sealed))
    )
    refused(h, lambda: h.service.share_keys(cid, extra), EdgeRefusal.INVALID,
            "not a neighbour")
    _complete_after_share(h, cid, upload)


def test_missing_share_is_refused():
    h, cid, upload = _share_setup()
    missing = upload.shares[2].receiver
    bad = dataclasses.replace(upload, shares=upload.shares[:2] + upload.shares[3:])
    refused(h, lambda: h.service.share_keys(cid, bad), EdgeRefusal.INVALID,
            f"no share for neighbour(s) [{missing}]")
    refused(h, lambda: h.service.share_keys(cid, dataclasses.replace(upload, shares=())),
            EdgeRefusal.INVALID, "no share for neighbour(s)")
    _complete_after_share(h, cid, upload)


def test_share_naming_the_wrong_sender_is_refused():
    h, cid, upload = _share_setup()
    me = h.index(cid)
    other = h.rnd.by_id[cid].neighbours[0]
    first = upload.shares[0]
    bad = dataclasses.replace(
        upload, shares=(EncryptedShare(other, first.receiver, first.sealed), *upload.shares[1:])
    )
    refused(h, lambda: h.service.share_keys(cid, bad), EdgeRefusal.INVALID,
            f"a share names sender {other}; this client is {me}")
    _complete_after_share(h, cid, upload)


def test_other_malformed_share_uploads_are_refused():
    h, cid, upload = _share_setup()
    first = upload.shares[0]
    twice = dataclasses.replace(upload, shares=(first, *upload.shares))
    refused(h, lambda: h.service.share_keys(cid, twice), EdgeRefusal.INVALID,
            f"two shares for neighbour {first.receiver}")
    short = dataclasses.replace(
        upload,
        shares=(dataclasses.replace(first, sealed=first.sealed[:-1]), *upload.shares[1:]),
    )
    refused(h, lambda: h.service.share_keys(cid, short), EdgeRefusal.INVALID,
            "a sealed share must be")
    no_commit = dataclasses.replace(upload, seed_commitment=b"\x00" * 31)
    refused(h, lambda: h.service.share_keys(cid, no_commit), EdgeRefusal.INVALID,
            "seed_commitment must be 32 bytes")
    other_round = dataclasses.replace(upload, round=2)
    refused(h, lambda: h.service.share_keys(cid, other_round), EdgeRefusal.STALE,
            "round 2")
    # a client that is not part of the round cannot share keys
    refused(h, lambda: h.service.share_keys("client-77", upload), EdgeRefusal.STALE,
            "not part of round 1")
    h.service.share_keys(cid, upload)
    refused(h, lambda: h.service.share_keys(cid, upload), EdgeRefusal.DUPLICATE,
            "already shared keys")
    h.share_keys(skip=[cid])
    h.masked()
    h.unmask()
    finish_exact(h, h.ids)


@pytest.mark.parametrize("threshold", [2, 1, 0, 5, -3, True])
def test_state_with_an_unsafe_threshold_is_refused_by_the_client(threshold):
    h = Harness(5, 8)  # d = 4: only t in {3, 4} is safe
    h.advertise()
    cid = h.ids[0]
    state = dataclasses.replace(h.state(cid), threshold=threshold)
    with pytest.raises(SecAggProtocolError, match="unsafe"):
        h.clients[cid].share_keys(state)
    assert h.links[cid].sent[1:] == []  # only the advertisement went out
    assert not h.rnd.by_id[cid].commitment


def test_state_with_bad_neighbour_lists_is_refused_by_the_client():
    h = Harness(5, 8)
    h.advertise()
    cid = h.ids[0]
    state = h.state(cid)
    me = NeighbourKey(state.index, b"a" * 32, b"b" * 32)
    copied_key = dataclasses.replace(
        state.neighbours[3], mask_public=state.neighbours[0].mask_public
    )
    for neighbours, match in [
        ((*state.neighbours[1:], me), "names this one"),
        ((*state.neighbours[:3], state.neighbours[0]), "repeats a client"),
        ((), "empty"),
        ((*state.neighbours[:3], copied_key), "share a public key"),
    ]:
        forged = dataclasses.replace(state, neighbours=neighbours)
        with pytest.raises(SecAggProtocolError, match=match):
            h.clients[cid].share_keys(forged)
    assert h.links[cid].sent[1:] == []


# -- stage 3: masked input -------------------------------------------------------------------
def test_tampered_relayed_share_is_reported_and_the_round_completes():
    h = Harness(5, 16)
    h.advertise()
    h.share_keys()
    sender, receiver = h.ids[1], h.ids[3]
    s, r = h.index(sender), h.index(receiver)
    raw = bytearray(h.rnd.by_index[s].outgoing[r])
    raw[20] ^= 0x40
    h.rnd.by_index[s].outgoing[r] = bytes(raw)  # the relay corrupts one sealed share
    assert h.masked() is SecAggStage.UNMASK
    upload = h.links[receiver].sent[-1]
    assert isinstance(upload, MaskedUpload) and upload.complaints == (s,)
    assert h.rnd.by_id[receiver].complaints == (s,)
    for cid in h.ids:
        if cid != receiver:
            assert h.rnd.by_id[cid].complaints == ()
    h.unmask()
    unmask_up = h.links[receiver].sent[-1]
    assert isinstance(unmask_up, UnmaskUpload)
    assert s not in dict(unmask_up.seed_shares)  # it holds no share of the sender
    result = finish_exact(h, h.ids)
    assert result.complaints == ((receiver, sender),)
    assert h.clients[receiver].report(SecAggStage.DONE).complaints == (s,)


def test_tampered_relays_beyond_the_threshold_fail_the_round():
    # d = 4, t = 3: two of the sender's four shares corrupted leave 2 < 3 holders
    h = Harness(5, 16)
    h.advertise()
    h.share_keys()
    sender = h.ids[0]
    s = h.index(sender)
    for r in list(h.rnd.by_index[s].outgoing)[:2]:
        raw = bytearray(h.rnd.by_index[s].outgoing[r])
        raw[-1] ^= 1
        h.rnd.by_index[s].outgoing[r] = bytes(raw)
    h.masked()
    h.unmask()
    with pytest.raises(SecAggAbortedError) as err:
        h.finish()
    assert f"the self mask of client {s}" in err.value.reason
    assert h.state(h.ids[1]).failure == err.value.reason


def _masked_setup(m=16):
    h = Harness(5, m)
    h.advertise()
    h.share_keys()
    cid = h.ids[2]
    upload = held(h, cid, lambda c: c.masked_input(h.state(cid), h.updates[cid]))
    return h, cid, upload


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda u: dataclasses.replace(u, num_elements=u.num_elements + 1),
         ("num_elements is 17, this job expects 16",)),
        (lambda u: dataclasses.replace(u, vector=u.vector[:-1]),
         ("vector has shape (15,), expected (16,)",)),
        (lambda u: dataclasses.replace(u, vector=np.concatenate([u.vector, u.vector[:1]])),
         ("vector has shape (17,)",)),
        (lambda u: dataclasses.replace(u, vector=u.vector.reshape(4, 4)),
         ("vector has shape (4, 4)",)),
        (lambda u: dataclasses.replace(u, vector=u.vector.astype(np.uint64)),
         ("vector dtype is uint64, expected uint32",)),
        (lambda u: dataclasses.replace(u, vector=u.vector.view(np.int32)),
         ("vector dtype is int32",)),
        (lambda u: dataclasses.replace(u, vector=u.vector.astype(np.float64)),
         ("vector dtype is float64",)),
        (lambda u: dataclasses.replace(u, vector=u.vector.tolist()),
         ("vector dtype is list",)),
        (lambda u: dataclasses.replace(u, ring_bits=64, vector=u.vector.astype(np.uint64)),
         ("ring_bits is 64, this job uses 32",)),
        (lambda u: dataclasses.replace(u, complaints=(99,)),
         ("complaints must name distinct neighbours",)),
        (lambda u: dataclasses.replace(u, complaints=(1, 1)),
         ("complaints must name distinct neighbours",)),
    ],
    ids=["count", "short", "long", "2d", "uint64", "int32", "float", "list", "ring64",
         "complaint-stranger", "complaint-twice"],
)
def test_malformed_masked_vector_is_refused(change, words):
    h, cid, upload = _masked_setup()
    refused(h, lambda: h.service.submit_masked(cid, change(upload)), EdgeRefusal.INVALID,
            *words)
    h.service.submit_masked(cid, upload)
    refused(h, lambda: h.service.submit_masked(cid, upload), EdgeRefusal.DUPLICATE,
            "already sent a masked input")
    h.masked(skip=[cid])
    h.unmask()
    finish_exact(h, h.ids)


def test_masked_input_after_the_stage_closed_is_stale_and_not_summed():
    h, cid, upload = _masked_setup()
    h.drop(cid)
    assert h.masked() is SecAggStage.UNMASK
    refused(h, lambda: h.service.submit_masked(cid, upload), EdgeRefusal.STALE,
            "round 1 is at stage unmask")
    assert not h.rnd.by_id[cid].masked
    # the others are asked for its mask key, not its self mask
    v = h.index(cid)
    for other in h.active():
        state = h.state(other)
        assert v in state.dropped and v not in state.survivors
    h.unmask()
    result = finish_exact(h, h.active())
    assert result.dropped["masked_input"] == (cid,)
    assert cid not in result.clients
    # after the round, too
    refused(h, lambda: h.service.submit_masked(cid, upload), EdgeRefusal.STALE, "stage done")


def test_masked_input_of_a_client_that_did_not_share_keys_is_stale():
    h = Harness(5, 16)
    h.advertise()
    late = h.ids[1]
    h.share_keys(skip=[late])
    state = h.state(late)
    assert state.failure and "out of round" in state.failure
    fake = MaskedUpload(1, 16, 32, np.zeros(16, np.uint32))
    refused(h, lambda: h.service.submit_masked(late, fake), EdgeRefusal.STALE,
            "keys were not shared")


# -- stage 4: unmask -------------------------------------------------------------------------
def _unmask_setup(drop_after_sharing=True):
    h = Harness(5, 16)
    h.advertise()
    h.share_keys()
    gone = h.ids[4] if drop_after_sharing else None
    if gone:
        h.drop(gone)
    h.masked()
    return h, gone


def test_state_naming_a_neighbour_both_survivor_and_dropped_is_refused_by_the_client():
    h, _gone = _unmask_setup()
    cid = h.ids[0]
    state = h.state(cid)
    sent_before = list(h.links[cid].sent)
    forged = dataclasses.replace(state, dropped=(*state.dropped, state.survivors[0]))
    with pytest.raises(SecAggProtocolError, match="both survivor and dropped"):
        h.clients[cid].unmask(forged)
    # ... nor a survivor moved to the dropped list alone when it was never masked with
    stranger = dataclasses.replace(state, dropped=(*state.dropped, h.index(cid)))
    with pytest.raises(SecAggProtocolError, match="did not mask with"):
        h.clients[cid].unmask(stranger)
    repeated = dataclasses.replace(state, survivors=state.survivors + state.survivors[:1])
    with pytest.raises(SecAggProtocolError, match="repeats a client"):
        h.clients[cid].unmask(repeated)
    assert h.links[cid].sent == sent_before
    assert not h.rnd.by_id[cid].unmasked
    # the honest request is still answered, and the round is exact
    h.unmask()
    finish_exact(h, h.active())


def test_second_unmasking_request_is_refused_by_the_client():
    h, _gone = _unmask_setup()
    cid = h.ids[0]
    state = h.state(cid)
    h.clients[cid].unmask(state)
    sent = list(h.links[cid].sent)
    # the dangerous one: the same neighbour now named dropped (its mask key asked for)
    survivor = state.survivors[0]
    swapped = dataclasses.replace(
        state,
        survivors=tuple(v for v in state.survivors if v != survivor),
        dropped=(*state.dropped, survivor),
    )
    for again in (state, swapped):
        with pytest.raises(SecAggProtocolError, match="already answered"):
            h.clients[cid].unmask(again)
    assert h.links[cid].sent == sent
    h.unmask(skip=[cid])
    finish_exact(h, h.active())


def test_unmask_upload_with_shares_the_server_did_not_ask_for_is_refused():
    h, gone = _unmask_setup()
    cid = h.ids[0]
    g = h.index(gone)
    upload = held(h, cid, lambda c: c.unmask(h.state(cid)))
    assert isinstance(upload, UnmaskUpload)
    survivor, share = upload.seed_shares[0]
    key_share = dict(upload.key_shares)[g]
    cases = [
        # (seed_shares left out: valid ones next to a bad key share: the test below)
        (dataclasses.replace(
            upload, seed_shares=(), key_shares=(*upload.key_shares, (survivor, share))),
         f"a mask-key share for client {survivor}, which the server did not ask for"),
        (dataclasses.replace(upload, seed_shares=(*upload.seed_shares, (g, key_share))),
         f"a self-mask share for client {g}, which the server did not ask for"),
        (dataclasses.replace(upload, seed_shares=(*upload.seed_shares, (h.index(cid), share))),
         f"a self-mask share for client {h.index(cid)}"),
        (dataclasses.replace(upload, seed_shares=(*upload.seed_shares, (42, share))),
         "a self-mask share for client 42"),
        (dataclasses.replace(upload, seed_shares=(*upload.seed_shares, (survivor, share))),
         f"two self-mask shares for client {survivor}"),
        (dataclasses.replace(upload, seed_shares=((survivor, share[:-1]),)),
         f"a self-mask share must be {SHARE_SIZE} bytes"),
        (dataclasses.replace(
            upload, seed_shares=(), key_shares=((g, PRIME.to_bytes(SHARE_SIZE, "big")),)),
         f"the mask-key share for client {g}: a share is not a field element"),
    ]
    for bad, words in cases:
        refused(h, lambda bad=bad: h.service.unmask(cid, bad), EdgeRefusal.INVALID, words)
    h.service.unmask(cid, upload)
    refused(h, lambda: h.service.unmask(cid, upload), EdgeRefusal.DUPLICATE,
            "already answered the unmasking")
    h.unmask(skip=[cid])
    finish_exact(h, h.active())


@pytest.mark.parametrize("bad_key", ["not-asked-for", "not-a-field-element"])
def test_unmask_upload_refused_for_its_key_shares_leaves_no_seed_shares_behind(bad_key):
    h, gone = _unmask_setup()
    cid = h.ids[0]
    g = h.index(gone)
    upload = held(h, cid, lambda c: c.unmask(h.state(cid)))
    survivor, share = upload.seed_shares[0]
    if bad_key == "not-asked-for":
        bad = dataclasses.replace(upload, key_shares=(*upload.key_shares, (survivor, share)))
        words = f"a mask-key share for client {survivor}"
    else:
        bad = dataclasses.replace(upload, key_shares=((g, PRIME.to_bytes(SHARE_SIZE, "big")),))
        words = f"the mask-key share for client {g}"
    refused(h, lambda: h.service.unmask(cid, bad), EdgeRefusal.INVALID, words)


def test_unmask_from_a_client_without_masked_input_is_stale():
    h, gone = _unmask_setup()
    refused(h, lambda: h.service.unmask(gone, UnmaskUpload(1)), EdgeRefusal.STALE,
            "sent no masked input")
    h.unmask()
    h.close()
    late = UnmaskUpload(1)
    refused(h, lambda: h.service.unmask(h.ids[0], late), EdgeRefusal.STALE,
            "unmasking of round 1 is closed")


def test_mask_key_points_refuses_a_client_whose_masked_input_arrived():
    h, gone = _unmask_setup()
    h.unmask()
    for cid in h.active():
        with pytest.raises(ProtocolError, match="refusing to rebuild the mask key of client"):
            h.rnd.mask_key_points(h.rnd.by_id[cid])
    # the dropped client's key may be rebuilt (that is how its masks are removed)
    assert len(h.rnd.mask_key_points(h.rnd.by_id[gone])) == 4
    finish_exact(h, h.active())


def _corrupt(share: bytes, how: str) -> bytes:
    value = decode_share(share)
    delta = 1 if how == "plus-one" else secrets.randbelow(PRIME - 1) + 1
    return encode_share((value + delta) % PRIME)


@pytest.mark.parametrize("how", ["plus-one", "random"])
@pytest.mark.parametrize("kind", ["self-mask", "mask-key"])
def test_bad_shamir_share_with_more_than_t_shares_is_survived(kind, how):
    # d = 4, t = 3; all 4 neighbours answer for a survivor's self mask (nobody dropped), and
    # the 4 survivors for the mask key of the client that dropped after sharing keys
    h, _gone = _unmask_setup(drop_after_sharing=kind == "mask-key")
    liar = h.ids[1]
    upload = held(h, liar, lambda c: c.unmask(h.state(liar)))
    field = "seed_shares" if kind == "self-mask" else "key_shares"
    shares = list(getattr(upload, field))
    target, share = shares[0]
    shares[0] = (target, _corrupt(share, how))
    h.service.unmask(liar, dataclasses.replace(upload, **{field: tuple(shares)}))
    h.unmask(skip=[liar])
    # 4 shares of the target's secret, t = 3: a combination without the bad share checks out
    assert len(h.rnd.seed_points(h.rnd.by_index[target]) if kind == "self-mask"
               else h.rnd.mask_key_points(h.rnd.by_index[target])) == 4
    finish_exact(h, h.active())


@pytest.mark.parametrize("how", ["plus-one", "random"])
def test_bad_shamir_share_with_exactly_t_shares_fails_the_round(how):
    h, _ = _unmask_setup(drop_after_sharing=False)
    silent, liar, target = h.ids[4], h.ids[1], h.ids[0]
    t_idx = h.index(target)
    upload = held(h, liar, lambda c: c.unmask(h.state(liar)))
    shares = [(v, _corrupt(s, how) if v == t_idx else s) for v, s in upload.seed_shares]
    h.service.unmask(liar, dataclasses.replace(upload, seed_shares=tuple(shares)))
    h.drop(silent)  # its masked input is in; it does not answer the unmasking
    h.unmask(skip=[liar])
    assert len(h.rnd.seed_points(h.rnd.by_index[t_idx])) == h.rnd.threshold == 3
    with pytest.raises(SecAggAbortedError) as err:
        h.finish()
    reason = err.value.reason
    assert f"the self mask of client {t_idx}" in reason and "bad shares" in reason
    for cid in h.ids:
        state = h.state(cid)
        assert state.stage is SecAggStage.FAILED and state.failure == reason
    with pytest.raises(SecAggRoundFailed, match=f"client {t_idx}"):
        h.clients[target].wait_for_stage(1, SecAggStage.DONE, 1.0)


# -- input validity --------------------------------------------------------------------------
def _malicious_round(out_of_range):
    n, m = 5, 64
    quant = QuantSpec("int16", 1.0)
    h = Harness(n, m, quant=quant, out_of_range=out_of_range)
    h.advertise()
    h.share_keys()
    mal = h.ids[2]
    upload = held(h, mal, lambda c: c.masked_input(h.state(mal), h.updates[mal]))
    rng = np.random.default_rng(3)
    bad = rng.integers(2**31 - 3000, 2**31 + 3000, m, dtype=np.uint64).astype(np.uint32)
    # y' = y - enc(x) + bad: the masked value of an update that skipped the encoding
    forged = upload.vector - h.encoded(mal) + bad
    h.service.submit_masked(mal, dataclasses.replace(upload, vector=forged))
    h.masked(skip=[mal])
    h.unmask()
    ring = sum(h.encoded(c).astype(np.uint64) for c in h.ids if c != mal) + bad
    raw = decode_aggregate(ring.astype(np.uint64), quant, 32)
    scale, qmax = quant_params(quant)
    return h, raw, n * qmax * scale


def test_client_bypassing_the_encoding_is_clipped_to_the_honest_range():
    h, raw, bound = _malicious_round("clip")
    result = h.finish()
    outside = int(np.count_nonzero(np.abs(raw) > bound))
    assert outside > 0 and result.clipped == outside
    assert np.all(result.aggregate >= -bound) and np.all(result.aggregate <= bound)
    np.testing.assert_array_equal(result.aggregate, np.clip(raw, -bound, bound))


def test_client_bypassing_the_encoding_fails_the_round_with_out_of_range_fail():
    h, raw, bound = _malicious_round("fail")
    with pytest.raises(SecAggAbortedError, match="outside the range") as err:
        h.finish()
    outside = int(np.count_nonzero(np.abs(raw) > bound))
    assert err.value.reason.startswith(f"{outside} aggregate element(s)")
    assert h.state(h.ids[0]).failure == err.value.reason


# -- privacy: the server's view --------------------------------------------------------------
M_PRIVACY = 1 << 16
_Z = NormalDist().inv_cdf(1 - 1e-6)


def _chi2_bound(df: int) -> float:
    """Upper 1e-6 quantile of chi-square(df), Wilson-Hilferty normal approximation."""
    c = 2.0 / (9.0 * df)
    return df * (1.0 - c + _Z * math.sqrt(c)) ** 3


def _assert_uniform(vec: np.ndarray, what: str) -> None:
    assert vec.dtype == np.uint32 and vec.size == M_PRIVACY
    bits = (vec[:, None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)
    freq = bits.mean(axis=0)
    sigma = 0.5 / math.sqrt(vec.size)
    worst = float(np.abs(freq - 0.5).max())
    assert worst <= 6 * sigma, (what, "bit frequency", worst / sigma)
    data = vec.view(np.uint8)
    counts = np.bincount(data, minlength=256).astype(np.float64)
    expected = data.size / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < _chi2_bound(255), (what, "byte chi-square", chi2)


def _differing_bits(a: np.ndarray, b: np.ndarray) -> float:
    x = np.bitwise_xor(a, b)
    ones = np.unpackbits(x.view(np.uint8)).sum()
    return float(ones) / (32 * a.size)


def _walk_arrays(obj, seen=None):
    """Every numpy array reachable from a crypten_lite object (fields, dicts, sequences)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_arrays(k, seen)
            yield from _walk_arrays(v, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            yield from _walk_arrays(v, seen)
    elif type(obj).__module__.startswith("crypten_lite"):
        fields = dict(getattr(obj, "__dict__", {}))
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                fields[slot] = getattr(obj, slot)
        for v in fields.values():
            yield from _walk_arrays(v, seen)


def _holds(rnd, encoded: np.ndarray) -> bool:
    want = encoded.astype(np.uint64)
    for arr in _walk_arrays(rnd):
        if arr.size == want.size and arr.dtype.kind in "uib":
            if np.array_equal(arr.reshape(-1).astype(np.uint64) & np.uint64(0xFFFFFFFF), want):
                return True
    return False


def test_server_view_of_a_client_is_uniformly_random():
    m = M_PRIVACY
    quant = QuantSpec("int16", 1.0)
    zero, at_clip, twin, other = "client-0", "client-1", "client-2", "client-3"
    updates = {
        zero: np.zeros(m),
        at_clip: np.full(m, quant.clip),
        twin: np.zeros(m),  # the same update as ``zero``
        other: np.random.default_rng(5).uniform(-1, 1, m),
    }
    h = Harness(4, m, quant=quant, updates=updates, model=np.full(m, 0.25, np.float32))
    assert int(h.encoded(at_clip)[0]) == 32767 and not h.encoded(zero).any()
    h.advertise()
    h.share_keys()
    h.masked()
    for cid in h.ids:  # the server holds masked vectors, never an update
        assert not _holds(h.rnd, h.encoded(cid)), cid
    h.unmask()
    result = h.finish()
    np.testing.assert_array_equal(result.aggregate, h.expected(h.ids))

    ctx = round_context(JOB, 1)
    seen = {cid: h.links[cid].sent[2].vector for cid in h.ids}  # what the server received
    unmasked = {}
    for cid in h.ids:
        p = h.rnd.by_id[cid]
        b_u = rebuild_secret(  # exactly what the server rebuilds during unmasking
            h.rnd.seed_points(p), h.rnd.threshold,
            lambda s, p=p: commit_seed(ctx, p.index, s) == p.commitment, cid,
        )
        unmasked[cid] = seen[cid] - expand_seed(b_u, m, 32)
    # sanity: without the self masks, the pairwise masks cancel in the sum
    total = sum(v.astype(np.uint64) for v in unmasked.values()) & np.uint64(0xFFFFFFFF)
    plain = sum(h.encoded(c).astype(np.uint64) for c in h.ids) & np.uint64(0xFFFFFFFF)
    np.testing.assert_array_equal(total, plain)

    for cid in (zero, at_clip):
        _assert_uniform(seen[cid], f"y of {cid}")
        _assert_uniform(unmasked[cid], f"y - PRG(b) of {cid}")
    # same update, unrelated views: about half the bits differ
    sigma = 0.5 / math.sqrt(32 * m)
    for a, b in ((seen[zero], seen[twin]), (unmasked[zero], unmasked[twin])):
        assert abs(_differing_bits(a, b) - 0.5) <= 6 * sigma
    for cid in h.ids:
        assert not _holds(h.rnd, h.encoded(cid)), cid


def test_uniformity_check_catches_a_plain_or_weakly_masked_vector():
    # the statistics above are not vacuous
    rng = np.random.default_rng(1)
    clipped = np.full(M_PRIVACY, 32767, np.uint32)
    with pytest.raises(AssertionError):
        _assert_uniform(clipped, "plain")
    low_bits_only = rng.integers(0, 1 << 16, M_PRIVACY, dtype=np.uint32)
    with pytest.raises(AssertionError):
        _assert_uniform(low_bits_only, "16-bit mask")
    _assert_uniform(rng.integers(0, 1 << 32, M_PRIVACY, dtype=np.uint64).astype(np.uint32), "ok")
    assert _chi2_bound(255) == pytest.approx(377, abs=3)


def test_state_with_a_single_neighbour_holding_every_share_is_refused_by_the_client():
    """d = 1, t = 1 satisfies d/2 < t <= d, but then one neighbour (possibly a client the
    server controls) could rebuild both secrets alone: the client needs t >= 2."""
    h = Harness(5, 8)
    h.advertise()
    cid = h.ids[0]
    state = h.state(cid)
    state = dataclasses.replace(state, threshold=1, neighbours=state.neighbours[:1])
    with pytest.raises(SecAggProtocolError, match="unsafe"):
        h.clients[cid].share_keys(state)
    assert h.links[cid].sent[1:] == []
