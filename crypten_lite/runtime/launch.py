"""The local launcher: ``crypten-lite-launch -n N script.py [args...]``.

Starts N parties and (with the TrustedDealer provider) the dealer as separate processes on
127.0.0.1, each in its own process group, with throwaway certificates for mutual TLS. Keys
never touch the disk: the launcher makes the job CA in memory, signs one certificate per rank
(and per edge client) with it and drops the CA key; each child receives only its own
certificate and key, as the first line on its control pipe. So no launched process can read
the CA key, and a launcher killed by SIGKILL leaves no key file behind. Ports are ephemeral
and race-free: every child binds port 0 and reports the port on a control pipe; the launcher
then sends every child the full address table.
Each output line is prefixed with its rank (``[0]``, ``[1]``, ``[dealer]``).

With ``--clients N`` the launcher also issues ``client-0`` .. ``client-<N-1>`` certificates
from the job CA and, once the address table is known, starts N edge-client processes running
the same script with ``$CRYPTEN_LITE_CLIENT`` set (see :mod:`crypten_lite.client.config`; the
servers are the party ranks) and no session; their lines are prefixed ``[c3]``. Every
process sees ``$CRYPTEN_LITE_CLIENTS=N``. Clients may drop out: a failing client is reported
as a warning and does not fail the job; once every party and the dealer have exited, the
clients still running a second later are killed.

The launcher exits non-zero if any rank fails; after the first failure it gives the others
the receive timeout (plus a grace period) to notice and exit on their own, then kills what is
left.
Whatever happens — including the launcher being interrupted — every child's process group
is killed before it returns, and a child whose launcher dies (even by SIGKILL) sees its
control pipe close and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crypten_lite.client.config import CLIENT_ENV, CLIENTS_ENV, ClientConfig
from crypten_lite.config import SessionConfig
from crypten_lite.errors import LaunchError
from crypten_lite.runtime.party import (
    CONFIG_ENV,
    CONTROL_ENV,
    PIPE_PLACEHOLDER,
    encode_identity,
)
from crypten_lite.runtime.party_config import (
    INSECURE_DEALER,
    PartyConfig,
    insecure_dealer_warning,
    to_document,
)
from crypten_lite.transport.grpc import CertPaths, GrpcOptions, TlsIdentity
from crypten_lite.transport.grpc.tls import job_identities

__all__ = ["LaunchOptions", "launch"]

_CHILD = "from crypten_lite.runtime.party import child_main; raise SystemExit(child_main())"
_MAX_CLIENTS = 1000
#: how long clients may still run after every rank exited before they are killed.
_CLIENT_GRACE_S = 1.0


@dataclass(frozen=True)
class LaunchOptions:
    """``world_size`` parties (+ the dealer) and ``clients`` edge-client processes; timeouts
    in seconds; ``insecure_plaintext`` turns mutual TLS off (debugging only; not with
    clients, which authenticate by certificate). ``insecure_dealer`` must be set to use the
    ``InsecureLocalDealer`` provider (no security at all: tests and demos only).
    ``grpc``: transport options of the ranks (e.g. ``edge_max_concurrent_calls`` for many
    edge clients). ``blas_threads``: BLAS/OpenMP threads per process (the native ring GEMM
    follows them too); None shares this machine's cores among the ranks (at least 1 each)
    unless the environment already sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/
    ``MKL_NUM_THREADS`` (measured: 2 parties + dealer on 2 cores, matmul 1024 over gRPC
    0.65 s with 1 thread per rank against 0.88-0.99 s with every rank using both cores)."""

    world_size: int
    timeout_s: float = 30.0
    connect_timeout_s: float = 30.0
    insecure_plaintext: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)
    grace_s: float = 5.0
    python: str = sys.executable
    clients: int = 0
    blas_threads: int | None = None
    insecure_dealer: bool = False
    grpc: GrpcOptions = field(default_factory=GrpcOptions)

    def __post_init__(self) -> None:
        if isinstance(self.world_size, bool) or not isinstance(self.world_size, int):
            raise LaunchError(f"-n must be an int, got {self.world_size!r}")
        if self.world_size < 1:
            raise LaunchError(f"-n must be at least 1, got {self.world_size}")
        if isinstance(self.clients, bool) or not isinstance(self.clients, int):
            raise LaunchError(f"--clients must be an int, got {self.clients!r}")
        if not 0 <= self.clients <= _MAX_CLIENTS:
            raise LaunchError(f"--clients must lie in [0, {_MAX_CLIENTS}], got {self.clients}")
        if self.blas_threads is not None and (
            isinstance(self.blas_threads, bool)
            or not isinstance(self.blas_threads, int)
            or self.blas_threads < 1
        ):
            raise LaunchError(f"blas_threads must be a positive int, got {self.blas_threads!r}")
        if self.session.provider == INSECURE_DEALER and not self.insecure_dealer:
            raise LaunchError(
                "--provider InsecureLocalDealer is refused: it gives no security at all (every "
                "party can rebuild every triple from the common seed). Use the TrustedDealer "
                "provider, or pass --insecure-dealer to run it anyway (tests and demos only)"
            )
        if self.clients and self.insecure_plaintext:
            raise LaunchError(
                "--clients needs mutual TLS (clients authenticate with certificates from the "
                "job CA); drop --insecure-plaintext"
            )


_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _rank_count(options: LaunchOptions) -> int:
    """The parties, plus the dealer when the provider is the TrustedDealer."""
    return options.world_size + (options.session.provider == "TrustedDealer")


def _blas_env(options: LaunchOptions) -> dict[str, str]:
    """Thread limits for the children's BLAS: the ranks of a local job share the cores."""
    threads = options.blas_threads
    if threads is None:
        if any(name in os.environ for name in _BLAS_ENV):
            return {}
        threads = max(1, (os.cpu_count() or 1) // _rank_count(options))
    return dict.fromkeys(_BLAS_ENV, str(threads))


class _Child:
    """One process (a rank or an edge client), its control pipe and its output pumps."""

    def __init__(
        self, rank: int, label: str, prefix: str, argv: list[str], env: dict[str, str]
    ) -> None:
        self.rank = rank
        self.label = label
        self.prefix = prefix
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        env = {**env, CONTROL_ENV: f"{to_child_r},{from_child_w}"}
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(to_child_r, from_child_w),
                start_new_session=True,
                text=True,
                bufsize=1,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.pumps: list[threading.Thread] = []

    def send_identity(self, identity: TlsIdentity | None) -> None:
        """Hand the child its TLS identity (first line on the control pipe; null in a
        plaintext job). A child that already died is reported when it misses its port."""
        with contextlib.suppress(OSError):
            os.write(self._to_child, encode_identity(identity))

    def pump(self, out: IO[str], err: IO[str], lock: threading.Lock) -> None:
        for stream, sink in ((self.proc.stdout, out), (self.proc.stderr, err)):
            thread = threading.Thread(
                target=_pump, args=(stream, sink, self.prefix, lock), daemon=True
            )
            thread.start()
            self.pumps.append(thread)

    def read_port(self, deadline: float) -> int:
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LaunchError(f"{self.label} did not report its port in time")
            ready, _, _ = select.select([self._from_child], [], [], min(remaining, 0.2))
            if ready:
                chunk = os.read(self._from_child, 64)
                if not chunk:
                    break
                data += chunk
        if not data.strip().isdigit():
            self.proc.wait(5)
            raise LaunchError(
                f"{self.label} exited (code {self.proc.returncode}) before reporting its port"
            )
        return int(data)

    def send_table(self, table: dict[int, str]) -> None:
        os.write(self._to_child, (json.dumps(table) + "\n").encode())

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        else:  # reap anything the rank left behind in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        for thread in self.pumps:
            thread.join(2.0)


def _pump(stream: IO[str] | None, sink: IO[str], prefix: str, lock: threading.Lock) -> None:
    if stream is None:
        return
    for line in stream:
        with lock:
            sink.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            sink.flush()
    stream.close()


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _rank_child(config: PartyConfig, argv: list[str], env: dict[str, str]) -> _Child:
    if config.is_dealer:
        return _Child(config.rank, "dealer", "[dealer] ", argv, env)
    return _Child(config.rank, f"party {config.rank}", f"[{config.rank}] ", argv, env)


class _Clients:
    """The edge-client processes: started late, allowed to fail, killed at the end."""

    def __init__(self) -> None:
        self.children: list[_Child] = []
        self._reported: set[int] = set()

    def report(self, err: IO[str]) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code not in (None, 0) and child.rank not in self._reported:
                self._reported.add(child.rank)
                print(
                    f"crypten-lite-launch: warning: {child.label} failed ({_describe(code)}); "
                    "the job goes on without it",
                    file=err,
                )

    def stop(self, err: IO[str], grace_s: float = _CLIENT_GRACE_S) -> None:
        """Give clients ``grace_s`` to finish on their own, report, kill the rest."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(c.proc.poll() is None for c in self.children):
            time.sleep(0.05)
        self.report(err)
        running = [c for c in self.children if c.proc.poll() is None]
        if running:
            print(
                f"crypten-lite-launch: stopping {len(running)} client(s) still running after "
                "every rank exited",
                file=err,
            )
        for child in running:
            self._reported.add(child.rank)
            child.kill()


def _supervise(
    children: list[_Child], options: LaunchOptions, err: IO[str], clients: _Clients | None = None
) -> int:
    first_failure: float | None = None
    while True:
        if clients is not None:
            clients.report(err)
        codes = {c.rank: c.proc.poll() for c in children}
        if all(code is not None for code in codes.values()):
            break
        if first_failure is None and any(code not in (None, 0) for code in codes.values()):
            first_failure = time.monotonic()
        if first_failure is not None and (
            time.monotonic() - first_failure > options.timeout_s + options.grace_s
        ):
            for child in children:
                if child.proc.poll() is None:
                    print(
                        f"crypten-lite-launch: {child.label} still running "
                        f"{options.timeout_s + options.grace_s:g}s after a failure; killing it",
                        file=err,
                    )
                    child.kill()
            break
        time.sleep(0.05)
    if clients is not None:
        clients.stop(err)
    failed = [(c, c.proc.returncode) for c in children if c.proc.returncode != 0]
    for child, code in failed:
        print(f"crypten-lite-launch: {child.label} failed ({_describe(code)})", file=err)
    return 1 if failed else 0


def _configs(options: LaunchOptions) -> list[PartyConfig]:
    world = options.world_size
    ranks = list(range(_rank_count(options)))
    session = SessionConfig(**{**options.session.__dict__, "timeout_s": options.timeout_s})
    session_id = f"launch-{secrets.token_hex(8)}"
    return [
        PartyConfig(
            session_id=session_id,
            rank=rank,
            world_size=world,
            listen="127.0.0.1:0",
            addresses={r: "127.0.0.1:0" for r in ranks},
            certs=None,
            insecure_plaintext=options.insecure_plaintext,
            connect_timeout_s=options.connect_timeout_s,
            timeout_s=options.timeout_s,
            grpc=options.grpc,
            session=session,
            insecure_dealer=options.insecure_dealer,
        )
        for rank in ranks
    ]


def _client_documents(
    options: LaunchOptions, session_id: str, table: dict[int, str], client_ids: Sequence[str]
) -> list[dict[str, object]]:
    """Each client's document; its TLS paths are placeholders that the client process
    replaces with memory-only files once its identity arrived over the control pipe."""
    servers = tuple(table[rank] for rank in range(options.world_size))
    placeholder = CertPaths(*(Path(PIPE_PLACEHOLDER),) * 3)
    docs = []
    for client_id in client_ids:
        doc = ClientConfig(
            client_id=client_id,
            job_id=session_id,
            servers=servers,
            certs=placeholder,
            timeout_s=options.timeout_s,
            connect_timeout_s=options.connect_timeout_s,
        ).to_document()
        doc["tls"] = dict.fromkeys(("ca", "cert", "key"), PIPE_PLACEHOLDER)
        docs.append(doc)
    return docs


def launch(
    script: str | Path,
    script_args: Sequence[str],
    options: LaunchOptions,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``script`` on every rank (and ``options.clients`` edge clients) as separate
    processes; 0 if every rank succeeded (clients may fail)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    script = Path(script)
    if not script.is_file():
        raise LaunchError(f"script {script} does not exist")
    lock = threading.Lock()
    children: list[_Child] = []
    clients = _Clients()
    argv = [options.python, "-c", _CHILD, str(script), *script_args]
    base_env = {**os.environ, CLIENTS_ENV: str(options.clients), "PYTHONUNBUFFERED": "1"}
    base_env.pop(CLIENT_ENV, None)
    base_env.update(_blas_env(options))
    # the job CA lives only inside job_identities(): no file, no child ever holds its key
    identities, client_identities = (
        ({}, {})
        if options.insecure_plaintext
        else job_identities(options.world_size, options.clients)
    )
    if options.session.provider == INSECURE_DEALER:
        print(f"crypten-lite-launch: {insecure_dealer_warning('this job')}", file=err)
    try:
        configs = _configs(options)
        for config in configs:
            env = {**base_env, CONFIG_ENV: json.dumps(to_document(config))}
            child = _rank_child(config, argv, env)
            children.append(child)
            child.send_identity(identities.pop(config.rank, None))
            child.pump(out, err, lock)
        deadline = time.monotonic() + options.connect_timeout_s
        table = {c.rank: f"127.0.0.1:{c.read_port(deadline)}" for c in children}
        for child in children:
            child.send_table(table)
        session_id = configs[0].session_id
        documents = _client_documents(options, session_id, table, list(client_identities))
        for index, doc in enumerate(documents):
            env = {**base_env, CLIENT_ENV: json.dumps(doc)}
            env.pop(CONFIG_ENV, None)
            client_id = str(doc["client_id"])
            client = _Child(index, client_id, f"[c{index}] ", argv, env)
            clients.children.append(client)
            client.send_identity(client_identities.pop(client_id))
            client.pump(out, err, lock)
        return _supervise(children, options, err, clients)
    finally:
        identities.clear()
        client_identities.clear()
        for child in [*clients.children, *children]:
            child.kill()
