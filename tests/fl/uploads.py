"""Build what a client uploads (with the client SDK's encode/split), without a transport."""

from __future__ import annotations

import secrets

import numpy as np

from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import NONCE_SIZE, QuantSpec, UpdateShare
from crypten_lite.edge.shares import split_update


def make_shares(
    x: np.ndarray, num_servers: int, round_number: int, ring_bits: int = 32,
    quant: QuantSpec = QuantSpec(), nonce: bytes | None = None,
) -> list[UpdateShare]:
    """One UpdateShare per server for the float update ``x``."""
    q = encode_update(x, quant, ring_bits)
    seeds, masked = split_update(q, num_servers, ring_bits)
    nonce = nonce or secrets.token_bytes(NONCE_SIZE)
    common = dict(round=round_number, nonce=nonce, num_elements=q.size, ring_bits=ring_bits)
    return [UpdateShare(seed=s, **common) for s in seeds] + [UpdateShare(vector=masked, **common)]


def quantized(x: np.ndarray, ring_bits: int = 32, quant: QuantSpec = QuantSpec()) -> np.ndarray:
    """The float value the servers can recover for ``x`` (after clipping and rounding)."""
    from crypten_lite.edge.encode import decode_aggregate

    return decode_aggregate(encode_update(x, quant, ring_bits), quant, ring_bits)


def run_round(world_size, config, deliver, model=None, provider=None):
    """Every server opens round 1 (threads via run_parties); ``deliver(services)`` runs in a
    driver thread once all are open; returns each server's RoundResult (or raised error)."""
    import threading

    from crypten_lite.fl import AggregationService
    from crypten_lite.runtime.testing import run_parties

    services = {}
    opened = threading.Barrier(world_size + 1)
    driver_error = []

    def driver():
        opened.wait(timeout=30)
        try:
            deliver(services)
        except BaseException as err:  # surfaced below
            driver_error.append(err)

    thread = threading.Thread(target=driver)
    thread.start()

    def job(session):
        svc = AggregationService(session, config)
        services[session.rank] = svc
        svc.open_round(np.zeros(config.num_elements) if model is None else model)
        opened.wait(timeout=30)
        try:
            return svc.close_and_aggregate()
        except Exception as err:  # returned so that tests can inspect it on every server
            return err

    try:
        results = run_parties(job, world_size, provider=provider)
    finally:
        thread.join()
    if driver_error:
        raise driver_error[0]
    return results, services
