"""Run one rank of a job in this process: start its gRPC endpoint, wait for every peer, build
the :class:`Session` (or serve as the dealer), run the user's script with that session active,
then say goodbye — or, if anything fails, tell the peers and exit non-zero.

The script needs no setup code: it runs through :mod:`runpy` as ``__main__`` with
``sys.argv = [script, *args]`` inside ``session.activate()``, so ``cl.cryptensor(x, src=0)``
finds its session. Entry points: :func:`run_party_file` (``crypten-lite-party --config``) and
:func:`child_main` (a process started by the local launcher). A launched edge-client process
(``$CRYPTEN_LITE_CLIENT`` set) starts no communicator and no session: :func:`child_main` runs
its script plainly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import runpy
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from crypten_lite.client.config import CLIENT_ENV, CLIENTS_ENV, ClientConfig
from crypten_lite.errors import CommunicationError, ConfigError, CryptenLiteError, LaunchError
from crypten_lite.runtime.allocator import tune_allocator
from crypten_lite.runtime.party_config import (
    INSECURE_DEALER,
    PartyConfig,
    from_document,
    insecure_dealer_warning,
    load_party_config,
)
from crypten_lite.session import Session, serve_dealer
from crypten_lite.transport.grpc import GrpcCommunicator, TlsIdentity, load_identity
from crypten_lite.transport.grpc.mailbox import rank_label

__all__ = [
    "CONFIG_ENV",
    "CONTROL_ENV",
    "PIPE_PLACEHOLDER",
    "child_main",
    "encode_identity",
    "launched_clients",
    "run_party",
    "run_party_file",
    "start_communicator",
]

#: environment variable holding a launched child's party document (JSON, no secrets).
CONFIG_ENV = "CRYPTEN_LITE_PARTY"
#: environment variable holding the launched child's control pipe fds "read,write".
CONTROL_ENV = "CRYPTEN_LITE_CONTROL_FDS"
#: what stands for a TLS file path in a launched client's document until the client has
#: received its identity over the control pipe (see :func:`_client_identity_paths`).
PIPE_PLACEHOLDER = "/dev/null/crypten-lite-control-pipe"
_LOG = logging.getLogger("crypten_lite.runtime")


def start_communicator(config: PartyConfig) -> GrpcCommunicator:
    """This rank's endpoint, listening (not yet connected).

    The dealer is idle between requests for as long as the parties compute locally, so it
    waits for them without the receive timeout (up to the stream deadline): it still stops
    at once when a party fails or is lost, and a hung party is caught by the other parties'
    timeouts, whose abort notices reach the dealer.
    """
    tune_allocator()  # a party process moves many MiB-sized buffers (see allocator.py)
    tls = config.identity
    if tls is None and config.certs is not None:
        tls = load_identity(config.certs)
    timeout_s = config.timeout_s
    if config.is_dealer:
        timeout_s = max(timeout_s, config.grpc.stream_deadline_s)
    return GrpcCommunicator(
        config.rank,
        config.world_size,
        session_id=config.session_id,
        listen=config.listen,
        tls=tls,
        insecure_plaintext=config.insecure_plaintext,
        timeout_s=timeout_s,
        options=config.grpc,
    )


@contextlib.contextmanager
def script_environment(script: Path, argv: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` = the script and ``argv``, the script's directory first on ``sys.path``,
    both restored afterwards."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.resolve().parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def run_script_main(script: Path) -> None:
    """Run ``script`` as ``__main__``; ``sys.exit(0)`` (or ``None``) counts as success."""
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as done:
        if done.code not in (None, 0):
            raise


def _run_script(script: Path, argv: Sequence[str]) -> None:
    with script_environment(script, argv):
        run_script_main(script)


def run_party(
    comm: GrpcCommunicator,
    config: PartyConfig,
    script: Path | None,
    argv: Sequence[str] = (),
    *,
    stderr: IO[str] | None = None,
) -> int:
    """Connect, run ``script`` (parties) or serve (dealer), shut down; the exit code."""
    err_out = stderr or sys.stderr
    who = rank_label(config.rank, config.world_size)
    if config.session.provider == INSECURE_DEALER:
        print(f"crypten-lite: {insecure_dealer_warning(who)}", file=err_out, flush=True)
    try:
        comm.connect(config.peers, config.connect_timeout_s)
        if config.is_dealer:
            serve_dealer(comm)
        else:
            if script is None:
                raise ConfigError("a party needs a script to run")
            session = Session.setup(comm, config.session)
            with session.activate():
                _run_script(script, argv)
            session.close()
        comm.close()
        return 0
    except BaseException as err:
        code = err.code if isinstance(err, SystemExit) and isinstance(err.code, int) else 1
        print(f"crypten-lite: {who} failed: {type(err).__name__}: {err}", file=err_out)
        if not isinstance(err, CryptenLiteError | KeyboardInterrupt | SystemExit):
            traceback.print_exc(file=err_out)
        # library errors name ranks and addresses only; other messages may hold data
        reason = f"{type(err).__name__}: {err}" if isinstance(err, CommunicationError) else ""
        comm.abort(reason or type(err).__name__)
        return code or 1


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def run_party_file(config_path: str | Path, script: str | None, argv: Sequence[str]) -> int:
    """``crypten-lite-party --config party.toml script.py args...``."""
    _setup_logging()
    try:
        config = load_party_config(config_path)
        comm = start_communicator(config)
    except CryptenLiteError as err:
        print(f"crypten-lite-party: {err}", file=sys.stderr)
        return 2
    return run_party(comm, config, Path(script) if script else None, argv)


def launched_clients() -> int:
    """How many edge-client processes the launcher started for this job (0 when not
    launched with ``--clients``); lets a server script know whom to wait for."""
    raw = os.environ.get(CLIENTS_ENV, "0")
    try:
        count = int(raw)
    except ValueError as err:
        raise ConfigError(f"${CLIENTS_ENV} must be an integer, got {raw[:20]!r}") from err
    if count < 0:
        raise ConfigError(f"${CLIENTS_ENV} must be >= 0, got {count}")
    return count


def _watch_launcher(control_in: IO[str], comm: GrpcCommunicator | None) -> None:
    """Exit when the launcher's end of the control pipe closes (the launcher died)."""
    try:
        with contextlib.suppress(OSError, ValueError):
            control_in.read()
        with contextlib.suppress(OSError, ValueError):  # the launcher held our stderr too
            print("crypten-lite: the launcher went away; stopping", file=sys.stderr, flush=True)
        if comm is not None:
            comm.abort("LauncherExited")
    finally:
        os._exit(3)


def _control_pipe() -> tuple[int, int]:
    """The launcher's control pipe ``(read_fd, write_fd)``, taken out of the environment."""
    try:
        read_fd, write_fd = (int(fd) for fd in os.environ.pop(CONTROL_ENV).split(","))
    except (KeyError, ValueError) as err:
        raise LaunchError(f"not started by crypten-lite-launch ({err})") from err
    return read_fd, write_fd


def encode_identity(identity: TlsIdentity | None) -> bytes:
    """The first line the launcher writes on a child's control pipe: its TLS identity (PEM,
    in memory only) or ``null`` for a plaintext job."""
    if identity is None:
        return b"null\n"
    doc = {
        "ca": identity.ca_pem.decode("ascii"),
        "cert": identity.cert_pem.decode("ascii"),
        "key": identity.key_pem.decode("ascii"),
    }
    return (json.dumps(doc) + "\n").encode("ascii")


def _read_identity(control_in: IO[str]) -> TlsIdentity | None:
    """Read the identity line :func:`encode_identity` wrote (first line on the pipe)."""
    line = control_in.readline()
    if not line:
        raise LaunchError("the launcher went away before sending this process its identity")
    try:
        doc = json.loads(line)
        if doc is None:
            return None
        return TlsIdentity(
            doc["ca"].encode("ascii"), doc["cert"].encode("ascii"), doc["key"].encode("ascii")
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise LaunchError(f"bad identity from the launcher ({type(err).__name__})") from err


def _memory_file(name: str, data: bytes) -> str:
    """A path to ``data`` that lives in this process's memory only (Linux ``memfd``): it is
    on no file system, other processes cannot open it, and it vanishes with the process."""
    fd = os.memfd_create(f"crypten-lite-{name}", os.MFD_CLOEXEC)
    os.write(fd, data)
    return f"/proc/self/fd/{fd}"


def _client_identity_paths(identity: TlsIdentity) -> dict[str, str]:
    """The client SDK reads its identity from paths (``ClientConfig.certs``): give it
    memory-only files, so a launched client's key never touches the disk."""
    if not hasattr(os, "memfd_create") or not Path("/proc/self/fd").is_dir():
        raise LaunchError(
            "launched edge clients need Linux (memfd_create and /proc) to hold their keys in "
            "memory only"
        )
    return {
        "ca": _memory_file("ca.pem", identity.ca_pem),
        "cert": _memory_file("client.pem", identity.cert_pem),
        "key": _memory_file("client.key", identity.key_pem),
    }


def _start_watcher(control_in: IO[str], comm: GrpcCommunicator | None) -> None:
    threading.Thread(
        target=_watch_launcher, args=(control_in, comm), name="cl-launcher-watch", daemon=True
    ).start()


def _client_main(args: Sequence[str]) -> int:
    """An edge-client process: no communicator, no session — the script runs plainly and
    finds its settings with ``ClientConfig.from_environment()``."""
    config = ClientConfig.from_environment()
    if config is None:
        raise LaunchError(f"${CLIENT_ENV} is empty")
    read_fd, write_fd = _control_pipe()
    os.close(write_fd)
    control_in = os.fdopen(read_fd, "r")
    identity = _read_identity(control_in)
    if identity is not None:
        doc = config.to_document()
        doc["tls"] = _client_identity_paths(identity)
        os.environ[CLIENT_ENV] = json.dumps(doc)
        config = ClientConfig.from_document(doc)
    _start_watcher(control_in, None)
    if not args:
        raise LaunchError("a client needs a script to run")
    try:
        _run_script(Path(args[0]), args[1:])
        return 0
    except BaseException as err:
        code = err.code if isinstance(err, SystemExit) and isinstance(err.code, int) else 1
        print(
            f"crypten-lite: {config.client_id} failed: {type(err).__name__}: {err}",
            file=sys.stderr,
        )
        if not isinstance(err, CryptenLiteError | KeyboardInterrupt | SystemExit):
            traceback.print_exc(file=sys.stderr)
        return code or 1


def child_main(argv: Sequence[str] | None = None) -> int:
    """A process started by the launcher: config from ``$CRYPTEN_LITE_PARTY``; report the
    ephemeral port on the control pipe, read back every rank's address, then run. With
    ``$CRYPTEN_LITE_CLIENT`` set it is an edge client instead: run the script plainly."""
    _setup_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(CLIENT_ENV):
        return _client_main(args)
    try:
        doc = json.loads(os.environ[CONFIG_ENV])
    except (KeyError, ValueError) as err:
        raise LaunchError(f"not started by crypten-lite-launch ({err})") from err
    read_fd, write_fd = _control_pipe()
    control_in = os.fdopen(read_fd, "r")
    # the TLS identity (PEM) arrives in memory over the control pipe, never through a file
    # or the environment (``null`` in a plaintext job)
    config = from_document(doc, identity=_read_identity(control_in))
    with os.fdopen(write_fd, "w") as control_out:
        comm = start_communicator(config)
        control_out.write(f"{comm.port}\n")
    line = control_in.readline()
    if not line:
        comm.abort("LauncherExited")
        return 3
    table = {int(rank): address for rank, address in json.loads(line).items()}
    config = dataclasses.replace(config, addresses=table)
    _start_watcher(control_in, comm)
    script = Path(args[0]) if args else None
    return run_party(comm, config, script, args[1:])
