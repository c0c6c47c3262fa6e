"""``save`` and ``load``: one checkpoint file per party, checked together on load.

Every party calls the same function with the same arguments. ``path`` may contain ``{rank}``
(replaced by the party's rank); otherwise party ``r`` uses ``f"{path}.party{r}"``
(:func:`party_path`). Each call runs collective status exchanges so that a problem found by
one party (a symlink at the target, a corrupted or swapped file, ...) raises
:class:`CheckpointError` on every party alike and nobody is left waiting.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from crypten_lite.checkpoint.format import (
    FORMAT_VERSION,
    CheckpointError,
    LocalProblem,
    Status,
    parse_file,
    write_file,
)
from crypten_lite.checkpoint.structure import flatten, unflatten
from crypten_lite.errors import SessionError
from crypten_lite.session import Session, current_session

__all__ = ["load", "party_path", "save"]

T = TypeVar("T")

#: First word of every status message (ASCII "CLCK"): catches a party running another step.
_TAG = 0x434C434B
_WORDS = 5  # tag, status, detail, save id (two words)
_SAVE_ID_SIZE = 16
_LIMIT = 2**62


def party_path(path: str | os.PathLike[str], rank: int) -> str:
    """The file of party ``rank``: ``{rank}`` in ``path`` replaced, else ``path.party<rank>``."""
    template = os.fspath(path)
    if not isinstance(template, str):
        raise TypeError("path must be a str or os.PathLike[str]")
    if "{rank}" in template:
        return template.replace("{rank}", str(rank))
    return f"{template}.party{rank}"


def _session(session: Session | None) -> Session:
    session = session or current_session()
    if not isinstance(session, Session):
        raise SessionError("session must be a crypten_lite Session")
    return session


@dataclass(frozen=True)
class _Report:
    status: Status
    detail: int
    save_id: bytes


@dataclass
class _Outcome:
    """This party's status after a local step; on failure the problem and its cause."""

    status: Status = Status.OK
    detail: int = 0
    message: str = ""
    cause: BaseException | None = None


def _attempt(outcome: _Outcome, step: Callable[[], T], fallback: Status) -> T | None:
    """Run ``step``; on failure record it in ``outcome`` (OSError → ``fallback``)."""
    try:
        return step()
    except LocalProblem as problem:
        outcome.status, outcome.detail = problem.status, problem.detail
        outcome.message, outcome.cause = problem.message, problem
    except OSError as err:
        outcome.status, outcome.cause = fallback, err
        outcome.message = f"{type(err).__name__}: {err.strerror or err}"
    except Exception as err:
        outcome.status, outcome.cause = Status.UNEXPECTED, err
        outcome.message = type(err).__name__
    return None


def _exchange(session: Session, outcome: _Outcome, save_id: bytes) -> list[_Report]:
    """One round: every party's status, detail and save id (all_gather of 5 int64)."""
    words = np.frombuffer(save_id.ljust(_SAVE_ID_SIZE, b"\0"), dtype="<i8").astype(np.int64)
    detail = max(-_LIMIT, min(_LIMIT, outcome.detail))
    vector = np.array([_TAG, int(outcome.status), detail, *words.tolist()], dtype=np.int64)
    reports: list[_Report] = []
    for party, got in enumerate(session.comm.all_gather(vector)):
        message = np.asarray(got)
        valid = message.dtype == np.int64 and message.shape == (_WORDS,)
        if not valid or int(message[0]) != _TAG or int(message[1]) not in {s.value for s in Status}:
            raise CheckpointError(
                f"malformed checkpoint status from party {party}: is every party running "
                "the same save/load?",
                {party: "PROTOCOL"},
            )
        raw = message[3:].astype("<i8").tobytes()
        reports.append(_Report(Status(int(message[1])), int(message[2]), raw))
    return reports


def _describe(party: int, report: _Report, world_size: int) -> str:
    detail = report.detail
    texts = {
        Status.UNREADABLE: "file missing, unreadable or not a regular file",
        Status.BAD_MAGIC: "not a crypten_lite checkpoint file (bad magic bytes)",
        Status.UNSUPPORTED_VERSION: (
            f"unsupported checkpoint format version {detail} (this build reads {FORMAT_VERSION})"
        ),
        Status.TRUNCATED: "file truncated",
        Status.CORRUPTED: "file corrupted (SHA-256 digest mismatch or trailing bytes)",
        Status.HEADER_MALFORMED: "checkpoint header malformed",
        Status.WRONG_RANK: f"file of party {detail} loaded by party {party}",
        Status.WRONG_WORLD_SIZE: (
            f"file written by a job of {detail} parties, this job has {world_size}"
        ),
        Status.TARGET_IS_SYMLINK: "the target path is a symbolic link (refused)",
        Status.TARGET_NOT_FILE: "the target path exists and is not a regular file",
        Status.WRITE_FAILED: "the file could not be written",
        Status.UNEXPECTED: "unexpected error",
    }
    return f"party {party}: {texts.get(report.status, report.status.name)}"


def _check_reports(what: str, session: Session, outcome: _Outcome, reports: list[_Report]) -> None:
    """Raise the same CheckpointError on every party if any party failed."""
    failed = {p: r for p, r in enumerate(reports) if r.status != Status.OK}
    if not failed:
        return
    text = "; ".join(_describe(p, r, session.world_size) for p, r in failed.items())
    if outcome.status != Status.OK:
        text += f" [party {session.rank} here: {outcome.message}]"
    raise CheckpointError(
        f"{what}: {text}", {p: r.status.name for p, r in failed.items()}
    ) from outcome.cause


def _check_save_ids(session: Session, reports: list[_Report]) -> None:
    groups: dict[bytes, list[int]] = {}
    for party, report in enumerate(reports):
        groups.setdefault(report.save_id, []).append(party)
    if len(groups) == 1:
        return
    sizes = sorted((len(g) for g in groups.values()), reverse=True)
    majority = max(groups.values(), key=len) if sizes[0] > sizes[1] else []
    faulty = [p for p in range(session.world_size) if p not in majority]
    listing = "; ".join(
        f"parties {members} hold save {save_id.hex()[:12]}" for save_id, members in groups.items()
    )
    raise CheckpointError(
        f"cannot load checkpoint: files from different saves are mixed ({listing})",
        dict.fromkeys(faulty, "SAVE_ID_MISMATCH"),
    )


# -- save ---------------------------------------------------------------------------------
def _open_temporary(target: str) -> tuple[int, str]:
    """Refuse a symlink or non-file at ``target``; create a 0600 temporary beside it."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise LocalProblem(
            Status.TARGET_IS_SYMLINK, f"refusing to write {target!r}: it is a symbolic link"
        )
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise LocalProblem(
            Status.TARGET_NOT_FILE, f"refusing to write {target!r}: not a regular file"
        )
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    return fd, temporary


def _fsync_directory(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(
    obj: Any,
    path: str | os.PathLike[str],
    *,
    session: Session | None = None,
    job_id: str | None = None,
) -> str:
    """Save ``obj`` (see :mod:`crypten_lite.checkpoint`) to this party's file; every party
    calls it with the same structure. Returns this party's path.

    Unsupported objects raise ``TypeError`` naming the key path before any communication.
    Cost: 2 rounds of 5 int64 per party: the first checks every target and carries the save
    id drawn by party 0; the second confirms every party wrote its temporary file before
    any party replaces its target (a failure on one party leaves every old file in place
    and raises :class:`CheckpointError` on all).
    """
    session = _session(session)
    if job_id is not None and not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str or None, got {type(job_id).__name__}")
    tree, entries = flatten(obj, session)
    target = party_path(path, session.rank)
    outcome = _Outcome()
    opened = _attempt(outcome, lambda: _open_temporary(target), Status.WRITE_FAILED)
    fd, temporary = opened if opened is not None else (-1, "")
    committed = False
    try:
        drawn = secrets.token_bytes(_SAVE_ID_SIZE) if session.rank == 0 else bytes(_SAVE_ID_SIZE)
        reports = _exchange(session, outcome, drawn)
        _check_reports("checkpoint not saved", session, outcome, reports)
        save_id = reports[0].save_id

        def write() -> None:
            nonlocal fd
            with os.fdopen(fd, "wb") as out:
                fd = -1  # the file object owns it now
                write_file(
                    out,
                    rank=session.rank,
                    world_size=session.world_size,
                    save_id=save_id,
                    job_id=job_id,
                    tree=tree,
                    entries=entries,
                )
                out.flush()
                os.fsync(out.fileno())

        _attempt(outcome, write, Status.WRITE_FAILED)
        _check_reports(
            "checkpoint not saved", session, outcome, _exchange(session, outcome, save_id)
        )
        os.replace(temporary, target)
        committed = True
        _fsync_directory(target)
    finally:
        if fd >= 0:
            os.close(fd)
        if temporary and not committed:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return target


# -- load ---------------------------------------------------------------------------------
def _read(source: str) -> bytes:
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise LocalProblem(Status.UNREADABLE, f"{source!r} is not a regular file")
        return handle.read()


def load(path: str | os.PathLike[str], *, session: Session | None = None) -> Any:
    """Load what :func:`save` wrote, in this or a later job with the same number of parties:
    MPCTensors come back in ``session`` with this party's saved share (revealing gives the
    saved value), arrays and scalars as saved, dicts/OrderedDicts/lists/tuples as they were,
    a module as its ``state_dict()`` (an OrderedDict).

    Each party checks its own file (magic, version, size, SHA-256, header, rank, world
    size), then the parties exchange their status and save id (1 round of 5 int64 each):
    any failure or files from different saves raise :class:`CheckpointError` on every
    party, naming the parties at fault.
    """
    session = _session(session)
    source = party_path(path, session.rank)
    outcome = _Outcome()
    rank, world_size = session.rank, session.world_size

    def local() -> tuple[Any, bytes]:
        header = parse_file(_read(source))
        if header.world_size != world_size:
            raise LocalProblem(
                Status.WRONG_WORLD_SIZE,
                f"{source!r} was written by a job of {header.world_size} parties",
                detail=header.world_size,
            )
        if header.rank != rank:
            raise LocalProblem(
                Status.WRONG_RANK,
                f"{source!r} is the file of party {header.rank}",
                detail=header.rank,
            )
        return unflatten(header.tree, header.entries, session), header.save_id

    loaded = _attempt(outcome, local, Status.UNREADABLE)
    obj, save_id = loaded if loaded is not None else (None, bytes(_SAVE_ID_SIZE))
    reports = _exchange(session, outcome, save_id)
    _check_reports("cannot load checkpoint", session, outcome, reports)
    _check_save_ids(session, reports)
    return obj
