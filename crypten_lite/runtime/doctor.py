"""``crypten-lite doctor --config party.toml``: check a party's deployment before a run and say
exactly what is wrong — the config, the certificate files, the listen port, and for every
peer: name resolution, TCP reachability, the TLS handshake and whether it is in the same job.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from crypten_lite.errors import CommunicationError, ConfigError
from crypten_lite.runtime.party_config import (
    INSECURE_DEALER,
    PartyConfig,
    insecure_dealer_warning,
    load_party_config,
)
from crypten_lite.transport.grpc import identity_name, load_identity
from crypten_lite.transport.grpc.mailbox import rank_label
from crypten_lite.transport.grpc.probe import probe_peer
from crypten_lite.transport.grpc.tls import inspect_identity

__all__ = ["Finding", "diagnose", "doctor"]


@dataclass(frozen=True)
class Finding:
    """One check: ``status`` is ``ok``, ``warn`` or ``FAIL``."""

    status: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.status:^4}] {self.subject}: {self.detail}"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _check_certs(config: PartyConfig) -> list[Finding]:
    if config.certs is None:
        return [Finding("warn", "tls", "insecure_plaintext = true: no encryption, no peer check")]
    identity = identity_name(config.rank, config.world_size)
    problems = inspect_identity(config.certs, identity)
    if problems:
        return [Finding("FAIL", "tls", problem) for problem in problems]
    return [Finding("ok", "tls", f"{config.certs.cert} is {identity!r}, signed by the CA")]


def _check_provider(config: PartyConfig) -> list[Finding]:
    """The insecure dealer only loads with ``insecure_dealer = true``; say what that means."""
    if config.session.provider != INSECURE_DEALER:
        return []
    who = rank_label(config.rank, config.world_size)
    return [Finding("warn", "provider", insecure_dealer_warning(who))]


def _check_listen(config: PartyConfig) -> Finding:
    subject = f"listen {config.listen}"
    try:
        host, port = _split(config.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host or "0.0.0.0", port))  # noqa: S104 - test bind only
    except ValueError:
        return Finding("FAIL", subject, "not host:port")
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            return Finding("warn", subject, "port in use (fine if this party is already running)")
        if err.errno == errno.EADDRNOTAVAIL:
            return Finding("FAIL", subject, "this host has no such address")
        return Finding("FAIL", subject, f"cannot bind: {err.strerror}")
    return Finding("ok", subject, "port is free")


def _check_peer(
    config: PartyConfig, peer: int, address: str, timeout_s: float, probe: Callable[..., str]
) -> Finding:
    subject = f"{rank_label(peer, config.world_size)} at {address}"
    try:
        host, port = _split(address)
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        return Finding("FAIL", subject, "address is not host:port")
    except socket.gaierror as err:
        return Finding("FAIL", subject, f"cannot resolve host {host!r}: {err.strerror}")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        return Finding("FAIL", subject, f"no TCP answer within {timeout_s:g}s (firewall?)")
    except ConnectionRefusedError:
        return Finding(
            "FAIL", subject, "connection refused: nothing listens there (is that rank running?)"
        )
    except OSError as err:
        return Finding("FAIL", subject, f"unreachable: {err.strerror}")
    tls = load_identity(config.certs) if config.certs is not None else None
    try:
        answer = probe(
            address,
            peer,
            rank=config.rank,
            world_size=config.world_size,
            session_id=config.session_id,
            tls=tls,
            timeout_s=timeout_s,
        )
    except CommunicationError as err:
        return Finding("FAIL", subject, f"TCP ok, but: {err}")
    return Finding("ok", subject, f"reachable, TLS ok, {answer}")


def diagnose(config: PartyConfig, timeout_s: float = 3.0) -> list[Finding]:
    """Every check for ``config``, in order."""
    findings = _check_certs(config)
    findings.extend(_check_provider(config))
    findings.append(_check_listen(config))
    usable_tls = all(f.status != "FAIL" for f in findings if f.subject == "tls")
    for peer, address in sorted(config.peers.items()):
        if usable_tls:
            findings.append(_check_peer(config, peer, address, timeout_s, probe_peer))
        else:
            findings.append(
                Finding("FAIL", rank_label(peer, config.world_size), "not probed: fix TLS first")
            )
    return findings


def doctor(config_path: str | Path, out: IO[str], timeout_s: float = 3.0) -> int:
    """Print the findings for ``config_path``; 0 if nothing failed."""
    try:
        config = load_party_config(config_path)
    except ConfigError as err:
        print(f"[FAIL] config: {err}", file=out)
        return 1
    print(
        f"crypten-lite doctor: {rank_label(config.rank, config.world_size)} of "
        f"{config.world_size} parties, session {config.session_id!r}",
        file=out,
    )
    print(f"[ ok ] config: {config_path} parses", file=out)
    findings = diagnose(config, timeout_s)
    for finding in findings:
        print(finding, file=out)
    failed = sum(f.status == "FAIL" for f in findings)
    print("all checks passed" if not failed else f"{failed} check(s) failed", file=out)
    return 1 if failed else 0
