"""The edge client against in-process servers: uploads aggregate correctly, exact upload
sizes (<= 1.05x the plaintext payload), dropouts, round polling, private inference, and the
client configuration the launcher hands over."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from crypten_lite.client import (
    CLIENT_ENV,
    ClientConfig,
    DirectServerLink,
    EdgeClient,
    decode_aggregate,
    encode_update,
    expand_seed,
)
from crypten_lite.edge.messages import (
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.errors import CommunicationError, ConfigError, EncodingError, PeerTimeoutError
from crypten_lite.transport.grpc import CertPaths


class Server:
    """A minimal aggregation server: sums the shares it receives for the open round."""

    def __init__(self, index, num_servers, num_elements, quant, ring_bits=32):
        self.index, self.num_servers = index, num_servers
        self.num_elements, self.quant, self.ring_bits = num_elements, quant, ring_bits
        self.round, self.state = 1, RoundState.OPEN
        self.lock = threading.Lock()
        dtype = np.uint32 if ring_bits == 32 else np.uint64
        self.total = np.zeros(num_elements, dtype)
        self.seen: dict[str, bytes] = {}
        self.views: list[np.ndarray] = []

    def round_info(self, client_id):
        return RoundInfo(
            "job",
            self.round,
            self.state,
            self.num_elements,
            self.ring_bits,
            self.quant,
            self.num_servers,
            self.index,
            2,
        )

    def submit(self, client_id, share: UpdateShare):
        assert share.round == self.round and share.num_elements == self.num_elements
        part = (
            share.vector
            if share.seed is None
            else expand_seed(share.seed, share.num_elements, share.ring_bits)
        )
        with self.lock:
            assert client_id not in self.seen
            self.seen[client_id] = share.nonce
            self.total += part
            if share.vector is not None:
                self.views.append(share.vector)

    def infer(self, client_id, query: InferenceQuery):  # model "double": y = 2x
        n = int(np.prod(query.shape))
        x = query.vector if query.seed is None else expand_seed(query.seed, n, 64)
        return InferenceShare(query.query_id, query.shape, query.frac_bits, x * np.uint64(2))


def _clients(servers, count):
    return [EdgeClient([DirectServerLink(s, f"client-{i}") for s in servers]) for i in range(count)]


@pytest.mark.parametrize("num_servers", [2, 3])
@pytest.mark.parametrize(("scheme", "ring_bits"), [("int16", 32), ("int8", 32), ("fixed16", 64)])
def test_updates_aggregate_to_the_sum(num_servers, scheme, ring_bits):
    quant = QuantSpec(scheme, 1.0)
    servers = [Server(i, num_servers, 300, quant, ring_bits) for i in range(num_servers)]
    rng = np.random.default_rng(3)
    updates = [rng.uniform(-1, 1, 300) for _ in range(5)]
    for client, update in zip(_clients(servers, 5), updates, strict=True):
        info = client.wait_for_round(after=0, timeout=1.0)
        client.submit_update(update, info)
    # every server got the same nonce from one client; different clients differ
    nonces = [s.seen["client-0"] for s in servers]
    assert len(set(nonces)) == 1 and servers[0].seen["client-1"] != nonces[0]
    total = sum((s.total for s in servers), start=np.zeros_like(servers[0].total))
    expected = sum(
        (encode_update(u, quant, ring_bits) for u in updates), start=np.zeros_like(total)
    )
    np.testing.assert_array_equal(total, expected)
    out = decode_aggregate(total, quant, ring_bits, num_clients=5)
    assert np.abs(out - sum(updates)).max() < 5 * 1.0 / 127


def test_upload_size_is_exact_and_close_to_the_plaintext():
    quant = QuantSpec("int16", 1.0)
    n = 100_000
    servers = [Server(i, 2, n, quant) for i in range(2)]
    (client,) = _clients(servers, 1)
    report = client.submit_update(np.zeros(n), client.round_info())
    # SubmitRequest fields: round 2 + nonce 18 + num_elements 4 + ring_bits 2 bytes, then the
    # seed (1 + 1 + 32) or the vector (1 + 3-byte length + 400000)
    assert report.bytes_per_server == {0: 26 + 34, 1: 26 + 4 + 4 * n}
    assert report.total_bytes == 400_090 and report.plaintext_bytes == 400_000
    assert report.ratio == pytest.approx(400_090 / 400_000) and report.ratio <= 1.05
    assert report.servers == (0, 1) and report.cpu_seconds >= 0.0
    # three servers: one more 60-byte seed
    servers3 = [Server(i, 3, n, quant) for i in range(3)]
    (client3,) = _clients(servers3, 1)
    assert client3.submit_update(np.zeros(n), client3.round_info()).total_bytes == 400_150


def test_the_vector_server_sees_a_uniform_looking_vector_for_a_constant_update():
    quant = QuantSpec("int16", 1.0)
    servers = [Server(i, 2, 50_000, quant) for i in range(2)]
    for client in _clients(servers, 2):
        client.submit_update(np.full(50_000, 0.5), client.round_info())
    a, b = servers[1].views
    assert not np.array_equal(a, b)
    counts = np.bincount(a.view(np.uint8), minlength=256)
    assert counts.min() > 0.8 * counts.mean()  # the constant would give four spikes


def test_a_client_can_upload_to_a_subset_of_the_servers():
    quant = QuantSpec("int16", 1.0)
    servers = [Server(i, 2, 10, quant) for i in range(2)]
    (client,) = _clients(servers, 1)
    report = client.submit_update(np.ones(10), client.round_info(), servers=[0])
    assert report.servers == (0,) and list(report.bytes_per_server) == [0]
    assert "client-0" in servers[0].seen and "client-0" not in servers[1].seen
    with pytest.raises(ConfigError, match="servers"):
        client.submit_update(np.ones(10), client.round_info(), servers=[2])


def test_wrong_sizes_and_inconsistent_servers_are_reported():
    quant = QuantSpec("int16", 1.0)
    servers = [Server(i, 2, 10, quant) for i in range(2)]
    (client,) = _clients(servers, 1)
    with pytest.raises(EncodingError, match="expects 10"):
        client.submit_update(np.ones(11), client.round_info())
    servers[1].index = 0
    with pytest.raises(CommunicationError, match="server 1 says it is server 0"):
        client.round_info()
    servers[1].index = 1
    servers[1].num_elements = 12
    with pytest.raises(CommunicationError, match="disagrees"):
        client.round_info()
    with pytest.raises(ConfigError, match="at least 2"):
        EdgeClient([DirectServerLink(servers[0], "client-0")])


def test_wait_for_round_sees_disagreement_and_the_end():
    quant = QuantSpec("int16", 1.0)
    servers = [Server(i, 2, 10, quant) for i in range(2)]
    client = EdgeClient([DirectServerLink(s, "client-0") for s in servers], poll_s=0.01)
    servers[1].round = 2  # server 1 is ahead: not yet open everywhere
    assert client.round_info().state is RoundState.CLOSED
    with pytest.raises(PeerTimeoutError):
        client.wait_for_round(after=0, timeout=0.1)
    servers[0].round = 2
    assert client.wait_for_round(after=1, timeout=1.0).round == 2
    servers[0].state = RoundState.FINISHED
    assert client.wait_for_round(after=5, timeout=1.0).state is RoundState.FINISHED


@pytest.mark.parametrize("num_servers", [2, 3])
def test_private_inference_reconstructs_the_output_locally(num_servers):
    quant = QuantSpec("int16", 1.0)
    servers = [Server(i, num_servers, 1, quant) for i in range(num_servers)]
    (client,) = _clients(servers, 1)
    x = np.array([[1.5, -2.25], [0.0, 3.0]])
    np.testing.assert_allclose(client.infer("double", x), 2 * x, atol=2**-15)


def test_client_config_round_trips_through_the_environment(tmp_path):
    certs = CertPaths(tmp_path / "ca.pem", tmp_path / "client-2.pem", tmp_path / "client-2.key")
    config = ClientConfig("client-2", "job-1", ("127.0.0.1:1", "127.0.0.1:2"), certs=certs)
    env = {CLIENT_ENV: json.dumps(config.to_document())}
    again = ClientConfig.from_environment(env)
    assert again == config
    assert again.identities == ("party-0", "party-1")
    assert ClientConfig.from_environment({}) is None
    token = ClientConfig("client-2", "j", ("h:1", "h:2"), token="abc", insecure_plaintext=True)
    assert "abc" not in repr(token)
    assert ClientConfig.from_document(token.to_document()) == token


def test_bad_client_configs_are_named():
    servers = ("h:1", "h:2")
    with pytest.raises(ConfigError, match="client_id"):
        ClientConfig("party-0", "j", servers, token="t", insecure_plaintext=True)
    with pytest.raises(ConfigError, match="exactly one"):
        ClientConfig("client-0", "j", servers)
    with pytest.raises(ConfigError, match="anonymous"):
        ClientConfig("client-0", "j", servers, insecure_plaintext=True)
    with pytest.raises(ConfigError, match="unknown client key"):
        ClientConfig.from_document({"client_id": "client-0", "extra": 1})
    with pytest.raises(ConfigError, match="not valid JSON"):
        ClientConfig.from_environment({CLIENT_ENV: "{"})
    with pytest.raises(ConfigError, match="timeout_s"):
        ClientConfig("client-0", "j", servers, token="t", insecure_plaintext=True, timeout_s=0)
