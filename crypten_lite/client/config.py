"""An edge client's configuration, and the JSON document the launcher hands client processes.

``CRYPTEN_LITE_CLIENT`` holds (JSON, paths only — no key material)::

    {"client_id": "client-3", "job_id": "launch-…", "servers": ["127.0.0.1:41001", …],
     "server_identities": ["party-0", "party-1"],
     "tls": {"ca": "/…/ca.pem", "cert": "/…/client-3.pem", "key": "/…/client-3.key"},
     "timeout_s": 30, "connect_timeout_s": 30, "max_message_bytes": 67108864}

``servers`` are in server-index order (server ``i`` is party rank ``i``). Instead of ``tls``
a deployment behind a TLS-terminating proxy may give ``"token"`` (see
``transport.grpc.gateway.issue_token``) with ``"insecure_plaintext": true``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypten_lite.errors import ConfigError
from crypten_lite.transport.grpc import CertPaths, client_of_identity
from crypten_lite.transport.grpc.options import DEFAULT_EDGE_MAX_MESSAGE_BYTES

__all__ = ["CLIENTS_ENV", "CLIENT_ENV", "ClientConfig"]

#: environment variable holding a launched client process's document (JSON).
CLIENT_ENV = "CRYPTEN_LITE_CLIENT"
#: environment variable telling every process of a launched job how many clients it has.
CLIENTS_ENV = "CRYPTEN_LITE_CLIENTS"

_KEYS = {
    "client_id",
    "job_id",
    "servers",
    "server_identities",
    "tls",
    "token",
    "insecure_plaintext",
    "timeout_s",
    "connect_timeout_s",
    "max_message_bytes",
}


@dataclass(frozen=True)
class ClientConfig:
    """Everything an edge client needs to reach the servers of one job.

    - ``servers``: ``host:port`` of every server, in server-index order;
    - ``server_identities``: the certificate identity each server must present (default
      ``party-<i>``);
    - ``certs`` (mutual TLS) or ``token`` with ``insecure_plaintext`` (exactly one);
    - ``timeout_s``: deadline of one call; ``connect_timeout_s``: how long calls are retried
      while a server is unreachable or not ready (UNAVAILABLE).
    """

    client_id: str
    job_id: str
    servers: tuple[str, ...]
    certs: CertPaths | None = None
    token: str | None = None
    insecure_plaintext: bool = False
    server_identities: tuple[str, ...] | None = None
    timeout_s: float = 30.0
    connect_timeout_s: float = 30.0
    max_message_bytes: int = DEFAULT_EDGE_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if client_of_identity(self.client_id) is None:
            raise ConfigError(
                f"client_id must be 'client-<id>' ([A-Za-z0-9._-], <= 64 chars), got "
                f"{str(self.client_id)[:80]!r}"
            )
        if not isinstance(self.job_id, str):
            raise ConfigError("job_id must be a string")
        servers = tuple(self.servers)
        if not servers or not all(isinstance(s, str) and ":" in s for s in servers):
            raise ConfigError(f"servers must list 'host:port' addresses, got {servers!r}")
        object.__setattr__(self, "servers", servers)
        if self.server_identities is not None:
            names = tuple(self.server_identities)
            if len(names) != len(servers):
                raise ConfigError("server_identities must name one identity per server")
            object.__setattr__(self, "server_identities", names)
        if self.insecure_plaintext == (self.certs is not None):
            raise ConfigError(
                "a client needs certs (mutual TLS) or insecure_plaintext=True, exactly one"
            )
        if self.insecure_plaintext and not self.token:
            raise ConfigError("a plaintext client needs a token (anonymous clients are refused)")
        for name in ("timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not 1024 <= self.max_message_bytes <= 1 << 30:
            raise ConfigError(
                f"max_message_bytes must lie in [1 KiB, 1 GiB], got {self.max_message_bytes}"
            )

    @property
    def identities(self) -> tuple[str, ...]:
        """The identity each server must present."""
        return self.server_identities or tuple(f"party-{i}" for i in range(len(self.servers)))

    def __repr__(self) -> str:
        auth = "mTLS" if self.certs is not None else "token=<hidden>"
        return (
            f"ClientConfig(client_id={self.client_id!r}, job_id={self.job_id!r}, "
            f"servers={self.servers}, {auth})"
        )

    # -- documents ------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        """The JSON-able document :meth:`from_document` reads back (absolute paths)."""
        doc: dict[str, Any] = {
            "client_id": self.client_id,
            "job_id": self.job_id,
            "servers": list(self.servers),
            "timeout_s": self.timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
            "max_message_bytes": self.max_message_bytes,
        }
        if self.server_identities is not None:
            doc["server_identities"] = list(self.server_identities)
        if self.certs is not None:
            doc["tls"] = {
                k: str(Path(getattr(self.certs, k)).resolve()) for k in ("ca", "cert", "key")
            }
        else:
            doc["insecure_plaintext"] = True
            doc["token"] = self.token
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ClientConfig:
        """Validate a client document; errors name the key."""
        if not isinstance(doc, Mapping):
            raise ConfigError("the client document must be a JSON object")
        unknown = sorted(set(doc) - _KEYS)
        if unknown:
            raise ConfigError(f"unknown client key(s) {unknown}; allowed: {sorted(_KEYS)}")
        certs = None
        tls = doc.get("tls")
        if tls is not None:
            if not isinstance(tls, Mapping) or set(tls) != {"ca", "cert", "key"}:
                raise ConfigError("tls must give exactly 'ca', 'cert' and 'key' paths")
            certs = CertPaths(Path(tls["ca"]), Path(tls["cert"]), Path(tls["key"]))
        servers = doc.get("servers")
        if not isinstance(servers, list):
            raise ConfigError("servers must be a list of 'host:port'")
        identities = doc.get("server_identities")
        try:
            return cls(
                client_id=doc.get("client_id", ""),
                job_id=doc.get("job_id", ""),
                servers=tuple(servers),
                certs=certs,
                token=doc.get("token"),
                insecure_plaintext=bool(doc.get("insecure_plaintext", False)),
                server_identities=None if identities is None else tuple(identities),
                timeout_s=doc.get("timeout_s", 30.0),
                connect_timeout_s=doc.get("connect_timeout_s", 30.0),
                max_message_bytes=doc.get("max_message_bytes", DEFAULT_EDGE_MAX_MESSAGE_BYTES),
            )
        except TypeError as err:
            raise ConfigError(f"bad client document: {err}") from err

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ClientConfig | None:
        """The config of a client process started by the launcher, or None when
        ``CRYPTEN_LITE_CLIENT`` is not set (e.g. a server process of the same script)."""
        source = os.environ if env is None else env
        raw = source.get(CLIENT_ENV)
        if not raw:
            return None
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ConfigError(f"${CLIENT_ENV} is not valid JSON: {err.msg}") from err
        return cls.from_document(doc)
