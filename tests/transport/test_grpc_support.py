"""Helpers for the gRPC tests (no tests here): real GrpcCommunicators on 127.0.0.1 in threads
of this process, whole jobs (parties + dealer) over them, and a recording TCP proxy."""

from __future__ import annotations

import secrets
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from crypten_lite.config import SessionConfig
from crypten_lite.session import Session, serve_dealer
from crypten_lite.transport.grpc import GrpcCommunicator, GrpcOptions, load_identity
from crypten_lite.transport.grpc.tls import write_job_certs


def make_comms(
    world_size: int,
    certs_dir: Path | None,
    *,
    dealer: bool = True,
    timeout_s: float = 10.0,
    options: GrpcOptions | None = None,
    route: Callable[[dict[int, str]], Mapping[int, str]] | None = None,
    connect: bool = True,
) -> list[GrpcCommunicator]:
    """Listening communicators for every rank (TLS when ``certs_dir`` is given), connected
    to each other in parallel unless ``connect=False``."""
    certs = write_job_certs(certs_dir, world_size) if certs_dir is not None else None
    session_id = f"test-{secrets.token_hex(4)}"
    comms = [
        GrpcCommunicator(
            rank,
            world_size,
            session_id=session_id,
            tls=load_identity(certs[rank]) if certs else None,
            insecure_plaintext=certs is None,
            timeout_s=timeout_s,
            options=options,
        )
        for rank in range(world_size + (1 if dealer else 0))
    ]
    if connect:
        addresses = {c.rank: f"127.0.0.1:{c.port}" for c in comms}
        table = dict(route(addresses)) if route else addresses
        run_threads(
            {
                c.rank: (lambda c=c: c.connect({r: a for r, a in table.items() if r != c.rank}, 10))
                for c in comms
            },
            timeout_s=30,
        )
    return comms


def run_threads(
    jobs: Mapping[int, Callable[[], object]],
    timeout_s: float = 30.0,
    on_error: Callable[[int, BaseException], None] | None = None,
) -> dict[int, object]:
    """Run ``jobs[rank]()`` in threads; raise AssertionError with every traceback on failure."""
    results: dict[int, object] = {}
    errors: dict[int, str] = {}

    def worker(rank: int) -> None:
        try:
            results[rank] = jobs[rank]()
        except BaseException as err:
            errors[rank] = traceback.format_exc()
            if on_error is not None:
                on_error(rank, err)

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    if any(t.is_alive() for t in threads):
        raise AssertionError(f"threads still running after {timeout_s}s; errors: {errors}")
    if errors:
        raise AssertionError("\n".join(f"rank {r}:\n{tb}" for r, tb in sorted(errors.items())))
    return results


def grpc_job(
    fn: Callable[[Session], object],
    world_size: int,
    certs_dir: Path | None,
    *,
    route: Callable[[dict[int, str]], Mapping[int, str]] | None = None,
    timeout_s: float = 20.0,
) -> list[object]:
    """``fn(session)`` on every party over gRPC (dealer included), like run_parties."""
    comms = make_comms(world_size, certs_dir, route=route, timeout_s=timeout_s)
    config = SessionConfig(timeout_s=timeout_s)

    def party(comm: GrpcCommunicator) -> object:
        session = Session.setup(comm, config)
        with session.activate():
            value = fn(session)
        session.close()
        comm.close()
        return value

    def dealer(comm: GrpcCommunicator) -> object:
        serve_dealer(comm)
        comm.close()
        return None

    jobs = {c.rank: (lambda c=c: (dealer if c.rank == world_size else party)(c)) for c in comms}
    try:
        results = run_threads(
            jobs, timeout_s=60, on_error=lambda rank, err: comms[rank].abort(type(err).__name__)
        )
    finally:
        for comm in comms:
            comm.abort("test teardown")
    return [results[r] for r in range(world_size)]


class RecordingProxy:
    """A TCP forwarder on 127.0.0.1 that keeps every byte it relays, both directions."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._captured = bytearray()
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def captured(self) -> bytes:
        with self._lock:
            return bytes(self._captured)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                with self._lock:
                    self._captured += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
