"""The offline phase: record a program's correlated-randomness requests, then generate
every party's store ahead of the job (``crypten-lite offline record|generate``; the online
side is ``SessionConfig(provider="OfflineStore", store=DIR)`` or ``crypten-lite-launch
--store DIR``).

A dry run executes the program once in this process (threads, throwaway randomness) and
records the requests of party 0, checking that every party made the same ones: MPC programs
are oblivious, so the plan depends on shapes, not values. Run it on data of the real shapes
(placeholders will do); the plan holds kinds and shapes only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from crypten_lite.config import SessionConfig
from crypten_lite.errors import StoreError
from crypten_lite.providers.store import Plan, StoreSummary, write_stores
from crypten_lite.runtime.party import run_script_main, script_environment
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session

__all__ = ["record_plan", "record_script", "summary_lines", "write_stores"]


def record_plan(
    fn: Callable[[Session], object],
    world_size: int,
    *,
    config: SessionConfig | None = None,
    timeout_s: float = 3600.0,
) -> Plan:
    """The requests ``fn(session)`` makes, from a dry run on ``world_size`` in-process
    parties (the randomness is thrown away); :class:`StoreError` if the parties differ."""
    base = config or SessionConfig()
    dry = dataclasses.replace(base, provider="InsecureLocalDealer", store=None, store_job=None)

    def job(session: Session) -> Plan:
        session.provider.log = []
        fn(session)
        return tuple(session.provider.log)

    plans = run_parties(job, world_size, config=dry, timeout_s=timeout_s)
    for rank, plan in enumerate(plans):
        if plan != plans[0]:
            raise StoreError(
                f"party {rank} made other correlated-randomness requests than party 0 in the "
                "dry run: the program is not oblivious, no single plan serves it"
            )
    return plans[0]


def record_script(
    script: str | Path,
    world_size: int,
    argv: Sequence[str] = (),
    *,
    config: SessionConfig | None = None,
) -> Plan:
    """:func:`record_plan` of a launcher script (run as ``__main__`` on every party, the
    script's directory first on ``sys.path``, ``sys.argv`` = the script and ``argv``)."""
    path = Path(script)
    if not path.is_file():
        raise StoreError(f"no script at {path}")
    with script_environment(path, argv):
        return record_plan(lambda _: run_script_main(path), world_size, config=config)


def summary_lines(summary: StoreSummary) -> list[str]:
    """Human-readable lines about generated stores (no secrets)."""
    lines = [
        f"wrote {path} ({size / 1e6:.2f} MB)"
        for path, size in zip(summary.paths, summary.sizes, strict=True)
    ]
    lines.append(
        f"{summary.correction_words} correction words for the last party in "
        f"{summary.seconds:.2f} s; store id {summary.store_id[:8]}...; give each party only "
        "its own file; each is read once and removed"
    )
    return lines
