"""One party's configuration: the ``party.toml`` a real deployment gives each process, and
the same document (as JSON in the environment) that the local launcher hands its children.

```toml
session_id = "census-2026-01"   # every rank of the job uses the same id
rank = 1                        # 0 .. N-1 for a party, "dealer" for the dealer
listen = "0.0.0.0:50051"        # optional; default 0.0.0.0 and the port in [parties]

[parties]                       # every rank's reachable address; N = number of parties
0 = "10.0.0.1:50051"
1 = "10.0.0.2:50051"
2 = "10.0.0.3:50051"
dealer = "10.0.0.4:50051"       # required with the TrustedDealer provider

[tls]                           # paths relative to this file
ca = "certs/ca.pem"
cert = "certs/party-1.pem"
key = "certs/party-1.key"
# insecure_plaintext = true     # instead of [tls]: no encryption, no authentication
# insecure_dealer = true        # required (on every rank) for provider "InsecureLocalDealer"

[timeouts]
connect_s = 60                  # start-up barrier
recv_s = 30                     # one message; also how fast a lost peer is reported
keepalive_s = 10

[protocol]                      # must agree on every rank
precision = 16
provider = "TrustedDealer"
truncation = "auto"
# provider = "OfflineStore"     # randomness made ahead: `crypten-lite offline generate`
# store = "/srv/job-42/store"   # the directory holding this rank's store (no dealer rank)
# store_job = "job-42"          # the job id the store must carry

[edge]                          # edge clients served by this rank (optional)
max_concurrent_calls = 8        # calls at once (a waiting inference query holds one)
max_calls_per_client = 2
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypten_lite.config import SessionConfig
from crypten_lite.errors import ConfigError
from crypten_lite.transport.grpc import CertPaths, GrpcOptions, TlsIdentity

__all__ = [
    "INSECURE_DEALER",
    "PartyConfig",
    "from_document",
    "insecure_dealer_warning",
    "load_party_config",
    "to_document",
]

#: the provider that must be asked for explicitly in multi-process jobs.
INSECURE_DEALER = "InsecureLocalDealer"


def insecure_dealer_warning(rank_name: str) -> str:
    """The warning every rank of a job with the insecure dealer prints (and doctor shows)."""
    return (
        f"WARNING: {rank_name} uses the INSECURE InsecureLocalDealer provider: every party can "
        "rebuild every triple and mask from the common seed, so the job protects NO input; "
        "tests and demos only (use the TrustedDealer provider for real data)"
    )


def _host(address: str) -> str:
    return address.rpartition(":")[0].strip("[]")


_TOP = {
    "session_id",
    "rank",
    "listen",
    "parties",
    "tls",
    "insecure_plaintext",
    "insecure_dealer",
    "timeouts",
    "protocol",
    "edge",
}
_TIMEOUTS = {"connect_s", "recv_s", "keepalive_s"}
_EDGE = {"max_concurrent_calls", "max_calls_per_client"}
_PROTOCOL = {"precision", "provider", "truncation", "store", "store_job"}


@dataclass(frozen=True)
class PartyConfig:
    """Everything one rank needs to join a job (see the module docstring for the file).

    TLS material comes either from files (``certs``) or, for a launched rank, in memory
    (``identity``, handed over the launcher's control pipe; never in a document).
    ``insecure_dealer`` must be set to use the ``InsecureLocalDealer`` provider.
    """

    session_id: str
    rank: int
    world_size: int
    listen: str
    addresses: Mapping[int, str]
    certs: CertPaths | None
    insecure_plaintext: bool = False
    connect_timeout_s: float = 60.0
    timeout_s: float = 30.0
    grpc: GrpcOptions = field(default_factory=GrpcOptions)
    session: SessionConfig = field(default_factory=SessionConfig)
    insecure_dealer: bool = False
    identity: TlsIdentity | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.session.provider == INSECURE_DEALER and not self.insecure_dealer:
            raise ConfigError(
                "provider InsecureLocalDealer is refused in a multi-process job: it gives no "
                "security at all (every party can rebuild every triple). Use the TrustedDealer "
                "provider, or opt in explicitly with insecure_dealer = true in party.toml "
                "(--insecure-dealer on crypten-lite-launch); tests and demos only"
            )
        if self.certs is not None and self.identity is not None:
            raise ConfigError("give TLS files (certs) or an in-memory identity, not both")

    @property
    def peers(self) -> dict[int, str]:
        """Every other rank's address."""
        return {r: a for r, a in self.addresses.items() if r != self.rank}

    @property
    def is_dealer(self) -> bool:
        return self.rank == self.world_size

    def hosts(self) -> dict[int, list[str]]:
        """The host of every rank, as its certificate should name it (plus loopback)."""
        return {
            rank: list(dict.fromkeys([_host(a), "127.0.0.1", "localhost"]))
            for rank, a in self.addresses.items()
        }


def _table(doc: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{key}]: {unknown}; allowed: {sorted(allowed)}")
    return value


def _number(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}.{key} must be a positive number, got {value!r}")
    return float(value)


def _rank_key(key: str) -> int:
    if key == "dealer":
        return -1
    if not key.isdigit():
        raise ConfigError(f"[parties] keys are 0, 1, ... and 'dealer'; got {key!r}")
    return int(key)


def _addresses(doc: Mapping[str, Any]) -> tuple[int, dict[int, str]]:
    table = doc.get("parties")
    if not isinstance(table, Mapping) or not table:
        raise ConfigError("[parties] must list every rank's host:port")
    ranks = {_rank_key(str(k)): v for k, v in table.items()}
    world = len([r for r in ranks if r >= 0])
    if sorted(r for r in ranks if r >= 0) != list(range(world)) or world < 1:
        raise ConfigError(f"[parties] must number the parties 0..N-1, got {sorted(table)}")
    out: dict[int, str] = {}
    for rank, address in ranks.items():
        if not isinstance(address, str) or ":" not in address:
            raise ConfigError(f"[parties] address of {rank} must be 'host:port', got {address!r}")
        out[world if rank < 0 else rank] = address
    return world, out


def from_document(
    doc: Mapping[str, Any],
    base_dir: Path | None = None,
    *,
    identity: TlsIdentity | None = None,
) -> PartyConfig:
    """Validate a parsed ``party.toml`` (or its JSON twin); errors name the key.

    ``identity``: this rank's TLS material in memory (a launched rank); the document then
    has neither ``[tls]`` nor ``insecure_plaintext``."""
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; allowed: {sorted(_TOP)}")
    session_id = doc.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ConfigError("session_id must be a non-empty string shared by every rank")
    world, addresses = _addresses(doc)
    raw_rank = doc.get("rank")
    rank = world if raw_rank == "dealer" else raw_rank
    if isinstance(rank, bool) or not isinstance(rank, int) or rank not in addresses:
        raise ConfigError(f"rank must be one of {sorted(addresses)} or 'dealer', got {raw_rank!r}")
    listen = doc.get("listen") or f"0.0.0.0:{addresses[rank].rsplit(':', 1)[1]}"
    if not isinstance(listen, str) or ":" not in listen:
        raise ConfigError(f"listen must be 'host:port', got {listen!r}")
    insecure = doc.get("insecure_plaintext", False)
    if not isinstance(insecure, bool):
        raise ConfigError("insecure_plaintext must be true or false")
    insecure_dealer = doc.get("insecure_dealer", False)
    if not isinstance(insecure_dealer, bool):
        raise ConfigError("insecure_dealer must be true or false")
    certs: CertPaths | None = None
    if identity is not None:
        if insecure or "tls" in doc:
            raise ConfigError("a rank with an in-memory identity takes no [tls] files")
    elif insecure:
        if "tls" in doc:
            raise ConfigError("give either [tls] or insecure_plaintext = true, not both")
    else:
        tls = _table(doc, "tls", {"ca", "cert", "key"})
        missing = sorted({"ca", "cert", "key"} - set(tls))
        if missing:
            raise ConfigError(
                f"[tls] needs {missing} (mutual TLS is the default; plaintext needs "
                "insecure_plaintext = true)"
            )
        base = base_dir or Path(".")
        certs = CertPaths(*(base / Path(str(tls[k])) for k in ("ca", "cert", "key")))
    timeouts = _table(doc, "timeouts", _TIMEOUTS)
    protocol = _table(doc, "protocol", _PROTOCOL)
    edge = _table(doc, "edge", _EDGE)
    recv_s = _number(timeouts, "recv_s", 30.0, "timeouts")
    try:
        session = SessionConfig(timeout_s=recv_s, **protocol)
        grpc_options = GrpcOptions(
            keepalive_s=_number(timeouts, "keepalive_s", 10.0, "timeouts"),
            edge_max_concurrent_calls=int(_number(edge, "max_concurrent_calls", 8, "edge")),
            edge_max_calls_per_client=int(_number(edge, "max_calls_per_client", 2, "edge")),
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[protocol]: {err}") from err
    if session.provider == "TrustedDealer" and world not in addresses:
        raise ConfigError("[parties] needs a 'dealer' address for the TrustedDealer provider")
    if session.provider == INSECURE_DEALER and not insecure_dealer:
        raise ConfigError(
            '[protocol] provider = "InsecureLocalDealer" is refused: it gives no security '
            'at all (every party can rebuild every triple). Use "TrustedDealer", or opt in '
            "explicitly with insecure_dealer = true (top level) on every rank; tests only"
        )
    return PartyConfig(
        session_id=session_id,
        rank=rank,
        world_size=world,
        listen=listen,
        addresses=addresses,
        certs=certs,
        insecure_plaintext=insecure,
        connect_timeout_s=_number(timeouts, "connect_s", 60.0, "timeouts"),
        timeout_s=recv_s,
        grpc=grpc_options,
        session=session,
        insecure_dealer=insecure_dealer,
        identity=identity,
    )


def to_document(config: PartyConfig) -> dict[str, Any]:
    """The document :func:`from_document` reads back (paths made absolute)."""
    doc: dict[str, Any] = {
        "session_id": config.session_id,
        "rank": "dealer" if config.is_dealer else config.rank,
        "listen": config.listen,
        "parties": {
            ("dealer" if r == config.world_size else str(r)): a for r, a in config.addresses.items()
        },
        "timeouts": {
            "connect_s": config.connect_timeout_s,
            "recv_s": config.timeout_s,
            "keepalive_s": config.grpc.keepalive_s,
        },
        "edge": {
            "max_concurrent_calls": config.grpc.edge_max_concurrent_calls,
            "max_calls_per_client": config.grpc.edge_max_calls_per_client,
        },
        "protocol": {
            "precision": config.session.precision,
            "provider": config.session.provider,
            "truncation": config.session.truncation,
        },
    }
    if config.session.store is not None:
        doc["protocol"]["store"] = str(Path(config.session.store).resolve())
    if config.session.store_job is not None:
        doc["protocol"]["store_job"] = config.session.store_job
    if config.insecure_dealer:
        doc["insecure_dealer"] = True
    if config.insecure_plaintext:
        doc["insecure_plaintext"] = True
    elif config.certs is None:
        pass  # TLS identity handed over in memory (the launcher's control pipe), never here
    else:
        doc["tls"] = {
            "ca": str(Path(config.certs.ca).resolve()),
            "cert": str(Path(config.certs.cert).resolve()),
            "key": str(Path(config.certs.key).resolve()),
        }
    return doc


def load_party_config(path: str | Path) -> PartyConfig:
    """Read and validate ``party.toml``; relative certificate paths are relative to it."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read party config {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    try:
        return from_document(doc, path.parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
