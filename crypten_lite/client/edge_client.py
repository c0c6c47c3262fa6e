"""The edge client: secret-share a model update with the aggregation servers, or a private
inference input with the compute servers, over :class:`ServerLink` s (one per server, in
server-index order).

Update upload (one round; PRG-seed share compression as in Prio, NSDI 2017): encode
(:mod:`crypten_lite.edge.encode`), split with seed compression
(:mod:`crypten_lite.edge.shares`), then one ``Submit`` per server — a 32-byte seed to servers
``0..k-2``, the masked vector to server ``k-1``, the same fresh 16-byte nonce to all. Upload
= ``m * ring_bits / 8`` bytes + ~60 bytes per seed server + ~30 bytes of header.

Private inference: the input is fixed point with ``frac_bits`` in the 64-bit ring, shared the
same way; each server answers with its share of the output, which only the client sums and
decodes — no server sees the input or the output.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from crypten_lite.client.config import ClientConfig
from crypten_lite.client.links import GrpcServerLink, ServerLink
from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import (
    NONCE_SIZE,
    InferenceQuery,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.edge.shares import split_update
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import CommunicationError, ConfigError, EncodingError, PeerTimeoutError
from crypten_lite.transport.grpc import load_identity

__all__ = ["EdgeClient", "UploadReport", "connect_links", "poll_round"]

_QUERY_ID_SIZE = 16


@dataclass(frozen=True)
class UploadReport:
    """What one update upload cost. ``plaintext_bytes = num_elements * ring_bits / 8``;
    ``ratio = total_bytes / plaintext_bytes`` (serialized requests, without gRPC/TLS
    framing); ``cpu_seconds``: this thread's CPU time for encode + split + serialize + the
    calls."""

    round: int
    servers: tuple[int, ...]
    bytes_per_server: dict[int, int]
    total_bytes: int
    plaintext_bytes: int
    ratio: float
    cpu_seconds: float


class EdgeClient:
    """A client of one job; ``links[i]`` reaches server ``i``."""

    def __init__(self, links: Sequence[ServerLink], *, poll_s: float = 0.1) -> None:
        if len(links) < 2:
            raise ConfigError(f"an edge client needs at least 2 servers, got {len(links)}")
        self.links = list(links)
        self.poll_s = poll_s

    @classmethod
    def connect(cls, config: ClientConfig) -> EdgeClient:
        """Open a link to every server of ``config`` (mutual TLS or token)."""
        return cls(connect_links(config))

    @property
    def num_servers(self) -> int:
        return len(self.links)

    def close(self) -> None:
        for link in self.links:
            link.close()

    def __enter__(self) -> EdgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rounds ---------------------------------------------------------------------------
    def round_info(self) -> RoundInfo:
        """Every server's view, checked for consistency; server 0's info, with state CLOSED
        while the servers disagree on the round (FINISHED if any server finished)."""
        infos = [link.round_info() for link in self.links]
        first = infos[0]
        for index, info in enumerate(infos):
            if info.server_index != index or info.num_servers != self.num_servers:
                raise CommunicationError(
                    f"server {index} says it is server {info.server_index} of "
                    f"{info.num_servers}; this client has {self.num_servers} servers"
                )
            if (info.job_id, info.num_elements, info.ring_bits, info.quant) != (
                first.job_id,
                first.num_elements,
                first.ring_bits,
                first.quant,
            ):
                raise CommunicationError(f"server {index} disagrees with server 0 on the job")
        if any(info.state is RoundState.FINISHED for info in infos):
            return _with_state(first, RoundState.FINISHED)
        if any((info.round, info.state) != (first.round, first.state) for info in infos):
            return _with_state(first, RoundState.CLOSED)
        return first

    def wait_for_round(self, after: int = -1, timeout: float = 60.0) -> RoundInfo:
        """Poll until a round ``> after`` is OPEN on every server, or the job FINISHED."""
        return poll_round(self.round_info, after, timeout, self.poll_s)

    # -- updates --------------------------------------------------------------------------
    def submit_update(
        self, x: npt.ArrayLike, info: RoundInfo, *, servers: Sequence[int] | None = None
    ) -> UploadReport:
        """Encode, share and upload the float update ``x`` (``info.num_elements`` values) for
        ``info.round``; ``servers`` uploads to a subset only (a client dropping out)."""
        started = time.thread_time()
        if info.num_servers != self.num_servers:
            raise ConfigError(
                f"the round is shared among {info.num_servers} servers; this client has "
                f"{self.num_servers}"
            )
        targets = tuple(range(self.num_servers) if servers is None else servers)
        if not targets or any(not 0 <= s < self.num_servers for s in targets):
            raise ConfigError(f"servers must be indices in [0, {self.num_servers}), got {targets}")
        ring = encode_update(x, info.quant, info.ring_bits)
        if ring.size != info.num_elements:
            raise EncodingError(
                f"x has {ring.size} values; round {info.round} expects {info.num_elements}"
            )
        seeds, masked = split_update(ring, self.num_servers, info.ring_bits)
        nonce = secrets.token_bytes(NONCE_SIZE)
        sizes: dict[int, int] = {}
        for index in targets:
            share = UpdateShare(
                round=info.round,
                nonce=nonce,
                num_elements=info.num_elements,
                ring_bits=info.ring_bits,
                seed=seeds[index] if index < len(seeds) else None,
                vector=masked if index == len(seeds) else None,
            )
            sizes[index] = self.links[index].submit(share)
        total = sum(sizes.values())
        plain = info.num_elements * info.ring_bits // 8
        return UploadReport(
            round=info.round,
            servers=targets,
            bytes_per_server=sizes,
            total_bytes=total,
            plaintext_bytes=plain,
            ratio=total / plain,
            cpu_seconds=time.thread_time() - started,
        )

    # -- private inference ----------------------------------------------------------------
    def infer(self, model: str, x: npt.ArrayLike, frac_bits: int = 16) -> npt.NDArray[np.float64]:
        """Run ``model`` on ``x`` without any server seeing ``x`` or the output: share ``x``
        (fixed point, 64-bit ring) with every server (all queries sent concurrently), sum
        their output shares, decode. The first server error is raised."""
        arr = np.asarray(x, dtype=np.float64)
        ring = FixedPointEncoder(frac_bits).encode(arr)
        seeds, masked = split_update(ring.reshape(-1), self.num_servers, 64)
        query_id = secrets.token_bytes(_QUERY_ID_SIZE)
        queries = [
            InferenceQuery(
                query_id=query_id,
                model=model,
                shape=tuple(int(d) for d in arr.shape),
                frac_bits=frac_bits,
                seed=seeds[index] if index < len(seeds) else None,
                vector=masked if index == len(seeds) else None,
            )
            for index in range(self.num_servers)
        ]
        # Every server answers only once all of them hold their part of the input, so the
        # queries go out at the same time (one thread per server).
        with ThreadPoolExecutor(self.num_servers, thread_name_prefix="cl-infer") as pool:
            futures = [
                pool.submit(link.infer, q) for link, q in zip(self.links, queries, strict=True)
            ]
            shares = [future.result() for future in futures]
        first = shares[0]
        for index, share in enumerate(shares):
            if (share.query_id, share.shape, share.frac_bits) != (
                query_id,
                first.shape,
                first.frac_bits,
            ) or share.share.size != int(np.prod(first.shape, dtype=np.int64)):
                raise CommunicationError(
                    f"server {index}'s output share does not match the query or server 0's"
                )
        total = np.zeros(first.share.size, dtype=np.uint64)
        for share in shares:
            np.add(total, share.share.reshape(-1).astype(np.uint64, copy=False), out=total)
        return FixedPointEncoder(first.frac_bits).decode(total).reshape(first.shape)


def connect_links(config: ClientConfig) -> list[GrpcServerLink]:
    """One gRPC link per server of ``config`` (mutual TLS or token), in server order."""
    token = None if config.token is None else (config.client_id, config.token)
    tls = None if config.certs is None else load_identity(config.certs)  # read once
    return [
        GrpcServerLink.connect(
            address,
            certs=tls,
            server_identity=identity,
            token=token,
            timeout_s=config.timeout_s,
            connect_timeout_s=config.connect_timeout_s,
            max_message_bytes=config.max_message_bytes,
        )
        for address, identity in zip(config.servers, config.identities, strict=True)
    ]


def poll_round(
    fetch: Callable[[], RoundInfo], after: int, timeout: float, poll_s: float
) -> RoundInfo:
    """Call ``fetch`` until it reports a round ``> after`` OPEN, or FINISHED (backoff from
    ``poll_s`` doubling to 1 s); PeerTimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = poll_s
    while True:
        info = fetch()
        if info.state is RoundState.FINISHED:
            return info
        if info.state is RoundState.OPEN and info.round > after:
            return info
        if time.monotonic() + delay > deadline:
            raise PeerTimeoutError(f"no round after {after} opened within {timeout:g}s")
        time.sleep(delay)
        delay = min(2 * delay, 1.0)


def _with_state(info: RoundInfo, state: RoundState) -> RoundInfo:
    return replace(info, state=state)
