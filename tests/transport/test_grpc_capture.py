"""What travels on the wire: every byte between the ranks is recorded by a TCP proxy on
127.0.0.1 while private inputs are shared, multiplied, compared and revealed.

With mutual TLS nothing readable travels at all. The insecure-plaintext run is the argument
that *shares*, not values, travel: there the recorder demonstrably sees plaintext (a public
canary array and the session id show up), yet no input, product or output value does — in
its fixed-point encoding or as a float — because every message is masked by randomness.
"""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from tests.transport.test_grpc_support import RecordingProxy, grpc_job

# distinctive values whose encodings are not short zero-padded patterns
X = np.array([1234.56789, -987.654321, 31337.1337, 0.123456789])
Y = np.array([-5.4321, 77.7777, 0.5151, -3.14159])
CANARY = np.array([0x5AFE_C0DE_1337_BEEF] * 4, dtype=np.uint64)


def _patterns(values: np.ndarray) -> dict[str, bytes]:
    """8-byte patterns of each value; small integers (0, 1 from relu and comparisons) are
    skipped: their encodings are mostly zero bytes and occur in any framing."""
    enc = cl.encoding.FixedPointEncoder(precision=16)
    out = {}
    for v in np.asarray(values, dtype=np.float64).reshape(-1):
        if v == round(v):
            continue
        out[f"float {v!r}"] = np.float64(v).tobytes()
        out[f"encoded {v!r}"] = enc.encode(np.array([v])).astype("<u8").tobytes()
    return out


def _job(session: cl.Session) -> np.ndarray:
    x = cl.cryptensor(X, src=0)
    y = cl.cryptensor(Y, src=1)
    z = (x * y + x).relu() + (x < y)
    if session.rank == 0:
        session.comm.send(1, CANARY)  # public on purpose: proves the recorder sees plaintext
    if session.rank == 1:
        session.comm.recv(0)
    return np.asarray(z.get_plain_text())


@pytest.mark.parametrize("tls", [True, False], ids=["mutual-tls", "insecure-plaintext"])
def test_no_private_value_appears_on_the_wire(tmp_path, tls):
    proxies: list[RecordingProxy] = []

    def route(addresses: dict[int, str]) -> dict[int, str]:
        for rank, address in addresses.items():
            proxies.append(RecordingProxy(address))
            addresses[rank] = proxies[-1].address
        return addresses

    try:
        results = grpc_job(_job, 2, tmp_path / "certs" if tls else None, route=route)
    finally:
        for proxy in proxies:
            proxy.close()
    wire = b"".join(p.captured for p in proxies)
    expected = np.maximum(X * Y + X, 0) + (X < Y)
    for result in results:
        np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-2)
    assert len(wire) > 10_000  # the recorder saw the whole job
    secrets = {**_patterns(X), **_patterns(Y), **_patterns(X * Y), **_patterns(expected)}
    assert len(secrets) == 2 * (4 + 4 + 4 + 1)
    leaked = [name for name, pattern in secrets.items() if pattern in wire]
    assert leaked == [], f"private values visible on the wire: {leaked}"
    canary_seen = CANARY.tobytes() in wire
    assert canary_seen is not tls, "plaintext must be readable without TLS and hidden with it"
    assert (b"test-" in wire) is not tls  # the session id travels in every envelope header
