"""Tuning knobs of the gRPC transport and the channel/server options they turn into.

Numbers follow gRPC's performance guide (grpc.io/docs/guides/performance) and our measurements
(benchmarks/results/grpc-raw-reference-2026-11-27.txt): messages above one chunk are streamed
in 1-4 MiB
chunks (single large messages are 3-6x slower); the per-message gRPC limit is raised on both
ends to one chunk plus header room; keepalive pings every ``keepalive_s`` even when idle, and
the server permits them; reconnect backoff is short so the start-up barrier sees a late peer
quickly; retries of idempotent sends on UNAVAILABLE come from the service config; HTTP/2
frames of up to 4 MiB are accepted (fewer, larger frames per chunk).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from crypten_lite.errors import ConfigError

__all__ = ["DEFAULT_EDGE_MAX_MESSAGE_BYTES", "EDGE_SERVICE", "PARTY_SERVICE", "GrpcOptions"]

#: The service name parties report through the standard health service.
PARTY_SERVICE = "crypten_lite.v1.Party"
#: The edge gateway's service (hosted on every party's server, see ``gateway``).
EDGE_SERVICE = "crypten_lite.v1.Edge"
#: Default largest edge request/reply (one unary message): 64 MiB.
DEFAULT_EDGE_MAX_MESSAGE_BYTES = 64 << 20

_MiB = 1 << 20
_HEADER_ROOM = 64 * 1024
#: HTTP/2 DATA frames this end accepts (SETTINGS_MAX_FRAME_SIZE, RFC 9113 section 4.2: 16 KiB by
#: default, at most 2^24 - 1): one 2 MiB chunk then crosses in one frame instead of 128. Measured
#: on loopback with mutual TLS, mul 1e6 over gRPC, 2 parties: 95 -> 88 ms median, about 5%
#: less CPU per rank.
_HTTP2_MAX_FRAME = 4 * _MiB


@dataclass(frozen=True)
class GrpcOptions:
    """Transport settings every rank of a job should share.

    - ``chunk_bytes``: payload bytes per streamed chunk (default 2 MiB; 1-4 MiB measured best);
    - ``max_message_bytes``: the largest tensor (in bytes) a rank accepts; larger ones are
      refused before any allocation;
    - ``keepalive_s``: HTTP/2 ping interval (a silent peer is declared lost after
      ``keepalive_s + keepalive_timeout_s``);
    - ``stream_deadline_s``: the deadline of each per-peer stream: the longest a job may run;
    - ``shutdown_grace_s``: how long a closing rank waits for its peers to end their streams
      to it (they do so when it says goodbye);
    - ``notice_timeout_s``: the deadline of goodbye and abort notices;
    - ``edge_max_message_bytes``: the largest edge-client request or reply (unary messages of
      the edge gateway, default 64 MiB); the server's gRPC message limit is the larger of this
      (plus header room) and one frame;
    - ``max_buffered_bytes``: how many bytes of received, not yet consumed messages one peer
      may make this rank hold; beyond it its stream is not read until the rank catches up
      (at most this plus one message per peer);
    - ``request_timeout_s``: how long a call may take to deliver its request (party calls,
      health checks, and the first frame of a plaintext stream); then it is cancelled;
    - ``edge_request_timeout_s``: the same for an edge-client request (uploads are larger);
    - ``edge_max_concurrent_calls`` / ``edge_max_calls_per_client``: edge calls served at
      once, in total and per client identity; more are refused at once with UNAVAILABLE
      ("server busy", clients retry with backoff) and never take a thread the party needs;
    - ``edge_max_waiting_calls``: single-server SecAgg state requests that may wait at once
      for a stage change (long polls; they hold a thread but no call slot, one per client);
      beyond it a state request is answered at once (the client then polls with backoff).
    """

    chunk_bytes: int = 2 * _MiB
    max_message_bytes: int = 1 << 31
    keepalive_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    stream_deadline_s: float = 7 * 24 * 3600.0
    shutdown_grace_s: float = 2.0
    notice_timeout_s: float = 2.0
    edge_max_message_bytes: int = DEFAULT_EDGE_MAX_MESSAGE_BYTES
    max_buffered_bytes: int = 256 * _MiB
    request_timeout_s: float = 10.0
    edge_request_timeout_s: float = 60.0
    edge_max_concurrent_calls: int = 8
    edge_max_calls_per_client: int = 2
    edge_max_waiting_calls: int = 256

    def __post_init__(self) -> None:
        if not _MiB // 4 <= self.chunk_bytes <= 16 * _MiB:
            raise ConfigError(f"chunk_bytes must lie in [256 KiB, 16 MiB], got {self.chunk_bytes}")
        if self.max_message_bytes < 1:
            raise ConfigError(f"max_message_bytes must be positive, got {self.max_message_bytes}")
        for name in (
            "keepalive_s",
            "keepalive_timeout_s",
            "stream_deadline_s",
            "notice_timeout_s",
            "request_timeout_s",
            "edge_request_timeout_s",
            "max_buffered_bytes",
            "edge_max_concurrent_calls",
            "edge_max_calls_per_client",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 1024 <= self.edge_max_message_bytes <= 1 << 30:
            raise ConfigError(
                f"edge_max_message_bytes must lie in [1 KiB, 1 GiB], got "
                f"{self.edge_max_message_bytes}"
            )
        if self.shutdown_grace_s < 0:
            raise ConfigError(f"shutdown_grace_s must be >= 0, got {self.shutdown_grace_s}")
        if not 0 <= self.edge_max_waiting_calls <= 4096:
            raise ConfigError(
                f"edge_max_waiting_calls must lie in [0, 4096], got {self.edge_max_waiting_calls}"
            )

    @property
    def frame_limit(self) -> int:
        """gRPC's per-message size limit: one chunk plus room for the envelope header."""
        return self.chunk_bytes + _HEADER_ROOM

    @property
    def server_message_limit(self) -> int:
        """gRPC's per-message limit on a rank's server: a frame or an edge message."""
        return max(self.frame_limit, self.edge_max_message_bytes + _HEADER_ROOM)

    def _common(self, limit: int | None = None) -> list[tuple[str, int | str]]:
        limit = self.frame_limit if limit is None else limit
        return [
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit),
            ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_frame_size", _HTTP2_MAX_FRAME),
        ]

    def channel_options(self, target_name: str | None) -> list[tuple[str, int | str]]:
        """Options for the channel to one peer; ``target_name`` pins the TLS identity."""
        retry = {
            "methodConfig": [
                {
                    "name": [
                        {"service": PARTY_SERVICE, "method": "Hello"},
                        {"service": "grpc.health.v1.Health", "method": "Check"},
                    ],
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
        options = [
            *self._common(),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(retry)),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if target_name is not None:
            options.append(("grpc.ssl_target_name_override", target_name))
        return options

    def server_options(self) -> list[tuple[str, int | str]]:
        """Options for a rank's server."""
        min_ping = int(min(self.keepalive_s, 10.0) * 1000)
        return [
            *self._common(self.server_message_limit),
            ("grpc.http2.min_ping_interval_without_data_ms", min_ping),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", min_ping),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.so_reuseport", 0),
        ]
