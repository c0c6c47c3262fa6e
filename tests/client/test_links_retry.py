"""A retried submit that gets DUPLICATE counts as delivered only when the server says it
holds this very upload (same client, round and nonce)."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.client.links import GrpcServerLink, is_own_duplicate
from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, UpdateShare
from crypten_lite.edge.shares import expand_seed, split_update
from crypten_lite.errors import PeerTimeoutError
from crypten_lite.fl.registry import RoundRegistry


class _LossyStub:
    """Server 0 of a 2-server job behind a stub whose first reply is lost (the call times
    out after the server stored the upload, or before it arrived)."""

    address = "fake:0"

    def __init__(self, registry: RoundRegistry, client_id: str, share: UpdateShare,
                 first_lands: bool) -> None:
        self.registry, self.client_id, self.share = registry, client_id, share
        self.first_lands, self.calls = first_lands, 0

    def submit_encoded(self, request: bytes, timeout: float) -> None:
        self.calls += 1
        if self.calls == 1:
            if self.first_lands:
                self.registry.submit(self.client_id, self.share)
            raise PeerTimeoutError("reply lost")
        self.registry.submit(self.client_id, self.share)


def _setup(nonce: bytes):
    reg = RoundRegistry(num_elements=8, ring_bits=32, server_index=0, num_servers=2,
                        expand_seed=expand_seed)
    reg.open(1)
    seeds, _ = split_update(np.zeros(8, np.uint32), 2, 32)
    share = UpdateShare(round=1, nonce=nonce, num_elements=8, ring_bits=32, seed=seeds[0])
    return reg, share


def test_a_retry_whose_first_attempt_landed_counts_as_delivered():
    reg, share = _setup(b"\x01" * 16)
    stub = _LossyStub(reg, "client-0", share, first_lands=True)
    link = GrpcServerLink(stub, connect_timeout_s=5.0, sleep=lambda s: None)
    assert link.submit(share) > 0
    assert stub.calls == 2 and reg.close().delivered == ("client-0",)


def test_a_retry_refused_for_another_clients_nonce_is_not_a_delivery():
    nonce = b"\x02" * 16
    reg, share = _setup(nonce)
    other_seeds, _ = split_update(np.zeros(8, np.uint32), 2, 32)
    reg.submit("client-9", UpdateShare(round=1, nonce=nonce, num_elements=8, ring_bits=32,
                                       seed=other_seeds[0]))  # clashing nonce
    stub = _LossyStub(reg, "client-0", share, first_lands=False)
    link = GrpcServerLink(stub, connect_timeout_s=5.0, sleep=lambda s: None)
    with pytest.raises(EdgeRequestError) as err:
        link.submit(share)
    assert err.value.refusal is EdgeRefusal.DUPLICATE and not is_own_duplicate(err.value)
    assert reg.close().delivered == ("client-9",)


def test_a_retry_refused_for_a_different_upload_of_this_client_is_raised():
    reg, share = _setup(b"\x03" * 16)
    seeds, _ = split_update(np.zeros(8, np.uint32), 2, 32)
    reg.submit("client-0", UpdateShare(round=1, nonce=b"\x04" * 16, num_elements=8,
                                       ring_bits=32, seed=seeds[0]))
    stub = _LossyStub(reg, "client-0", share, first_lands=False)
    link = GrpcServerLink(stub, connect_timeout_s=5.0, sleep=lambda s: None)
    with pytest.raises(EdgeRequestError, match="different update"):
        link.submit(share)
