"""``run_parties``: run a function on every party as threads of this process (tests,
notebooks). Every party gets a :class:`Session` over an in-process hub; with the
``TrustedDealer`` provider the dealer runs as one more thread."""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from crypten_lite.config import SessionConfig
from crypten_lite.errors import CryptenLiteError
from crypten_lite.session import Session, serve_dealer
from crypten_lite.transport.inprocess import InProcessHub

__all__ = ["PartyFailure", "run_multiprocess", "run_parties"]

T = TypeVar("T")
P = ParamSpec("P")


class PartyFailure(CryptenLiteError, RuntimeError):
    """One or more ranks failed; the message carries each failing rank's traceback."""

    def __init__(self, failures: dict[int, str], world_size: int) -> None:
        self.failures = failures
        parts = []
        for rank in sorted(failures):
            who = {world_size: "dealer", -1: "harness"}.get(rank, f"party {rank}")
            parts.append(f"--- {who} (rank {rank}) ---\n{failures[rank]}")
        super().__init__(f"{len(failures)} rank(s) failed:\n" + "\n".join(parts))


@dataclass
class _Outcome:
    value: Any = None
    error: str | None = None


def run_parties(
    fn: Callable[[Session], T],
    world_size: int = 2,
    *,
    config: SessionConfig | None = None,
    provider: str | None = None,
    timeout_s: float = 120.0,
) -> list[T]:
    """Call ``fn(session)`` on every party and return the results in rank order.

    ``provider`` overrides ``config.provider``. Raises :class:`PartyFailure` carrying every
    failing rank's traceback; a rank that fails aborts the others at once; the whole job is
    bounded by ``timeout_s``.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    config = config or SessionConfig()
    if provider is not None:
        config = SessionConfig(**{**config.__dict__, "provider": provider})
    hub = InProcessHub(world_size)
    outcomes = {rank: _Outcome() for rank in range(world_size + 1)}

    def party(rank: int) -> None:
        try:
            session = Session.setup(hub.communicator(rank, config.timeout_s), config)
            with session.activate():
                outcomes[rank].value = fn(session)
            session.close()
        except BaseException as err:
            outcomes[rank].error = traceback.format_exc()
            hub.abort(f"rank {rank} failed with {type(err).__name__}")

    def dealer() -> None:
        try:
            serve_dealer(hub.communicator(world_size, config.timeout_s))
        except BaseException as err:
            outcomes[world_size].error = traceback.format_exc()
            hub.abort(f"dealer failed with {type(err).__name__}")

    threads = [
        threading.Thread(target=party, args=(r,), name=f"party-{r}", daemon=True)
        for r in range(world_size)
    ]
    if config.provider == "TrustedDealer":
        threads.append(threading.Thread(target=dealer, name="dealer", daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    late: list[str] = []
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            late.append(thread.name)
            hub.abort(f"job exceeded {timeout_s:g}s")
            thread.join(5.0)
    failures = {r: o.error for r, o in outcomes.items() if o.error is not None}
    if late:
        stuck = [t.name for t in threads if t.is_alive()]
        failures[-1] = f"job exceeded {timeout_s:g}s; late: {late}; still running: {stuck}"
    if failures:
        raise PartyFailure(failures, world_size)
    return [outcomes[r].value for r in range(world_size)]


def run_multiprocess(
    world_size: int = 2,
    *,
    config: SessionConfig | None = None,
    provider: str | None = None,
    timeout_s: float = 120.0,
) -> Callable[[Callable[P, T]], Callable[P, list[T]]]:
    """CrypTen's ``@mpc.run_multiprocess(world_size=2)``: a decorator; calling the decorated
    ``f(*args, **kwargs)`` runs it on every party (threads of this process, through
    :func:`run_parties` with these options) inside ``session.activate()``, so
    ``cl.cryptensor``/``cl.current_session()`` work without passing a session, and returns
    the per-party results in rank order. Failures raise :class:`PartyFailure`::

        @cl.run_multiprocess(world_size=2)
        def job():
            return cl.cryptensor([1.0, 2.0]).sum().get_plain_text()

        job()  # [array(3.), array(3.)]
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")

    def decorator(fn: Callable[P, T]) -> Callable[P, list[T]]:
        @functools.wraps(fn)
        def on_every_party(*args: P.args, **kwargs: P.kwargs) -> list[T]:
            return run_parties(
                lambda _session: fn(*args, **kwargs),
                world_size,
                config=config,
                provider=provider,
                timeout_s=timeout_s,
            )

        return on_every_party

    return decorator
