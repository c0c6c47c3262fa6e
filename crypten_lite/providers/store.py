"""Offline correlated randomness: a store per party, made ahead of a job, served without a
dealer.

**Plan.** The sequence of ``(kind, params)`` requests a program makes (shapes and kinds,
never data): every party makes the same requests in the same order, so a dry run records
them (``runtime.offline.record_plan``), or they are declared.

**Generation** (:func:`write_stores`, run where the dealer would run): fresh seeds per party
and the :class:`~crypten_lite.providers.engine.DealerEngine` of the online dealer; party
``i < N-1`` keeps only its seed (its shares are its stream's draws), party ``N-1`` its seed
and every correction, in request order. A party's store alone is a seed and uniformly
distributed corrections: it reveals nothing without the others'.

**File** (one per party, ``store-rank{r}.clstore``, created ``O_EXCL|O_NOFOLLOW`` with mode
0600 in a 0700 directory): ``MAGIC``, a 4-byte length and a JSON header (job id, a random
store id shared by the parties of one generation, rank, world size, the plan's SHA-256,
request and word counts per kind), the plan, the 32-byte seed, the corrections (uint64
little-endian), and a SHA-256 of everything before it.

**Online** (:class:`StoreProvider`): each request must be the plan's next one (else
:class:`StoreError` naming both); a request past the plan is refused; the file is removed
as soon as it is read, so its randomness cannot be used twice, and the parties compare
their stores' job, store id and plan digest before the first request
(``session.Session.setup``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import StoreError
from crypten_lite.providers.base import CorrectionSource, Correlation, Provider
from crypten_lite.providers.engine import (
    DealerEngine,
    layout_of,
    reply_parts,
    split_components,
)
from crypten_lite.providers.kinds import Params, decode_request, encode_request
from crypten_lite.ring.prg import SEED_SIZE, AesCtrPrg

__all__ = [
    "MAGIC",
    "PROVIDER_NAME",
    "PartyStore",
    "Plan",
    "StoreProvider",
    "StoreSummary",
    "plan_digest",
    "plan_from_json",
    "plan_to_json",
    "store_path",
    "write_stores",
]

U64 = npt.NDArray[np.uint64]
Plan = tuple[tuple[str, Params], ...]
MAGIC = b"CLSTORE1"
PROVIDER_NAME = "OfflineStore"
_DIGEST = 32
_MAX_HEADER = 1 << 20


def store_path(directory: str | Path, rank: int) -> Path:
    """Where party ``rank``'s store lives in ``directory``."""
    return Path(directory) / f"store-rank{rank}.clstore"


def _encode_plan(plan: Plan) -> bytes:
    parts = []
    for kind, params in plan:
        message = encode_request(kind, params)
        parts.append(np.array([message.size], dtype="<i8").tobytes())
        parts.append(message.astype("<i8").tobytes())
    return b"".join(parts)


def _decode_plan(blob: bytes, count: int) -> Plan:
    words = np.frombuffer(blob, dtype="<i8")
    out = []
    i = 0
    for _ in range(count):
        if i >= words.size:
            raise StoreError("the store's plan is shorter than its header says")
        size = int(words[i])
        if size <= 0 or i + 1 + size > words.size:
            raise StoreError("the store's plan is malformed")
        request = decode_request(words[i + 1 : i + 1 + size].astype(np.int64))
        if request is None:
            raise StoreError("the store's plan holds a close message")
        out.append(request)
        i += 1 + size
    if i != words.size:
        raise StoreError("the store's plan has trailing data")
    return tuple(out)


def plan_digest(plan: Plan) -> str:
    """SHA-256 (hex) of the plan's encoding: what the parties compare."""
    return hashlib.sha256(_encode_plan(plan)).hexdigest()


def plan_to_json(plan: Plan, world_size: int) -> str:
    """A plan as JSON (kinds and shapes only; no data, no randomness)."""
    requests = [[kind, [list(p) for p in params]] for kind, params in plan]
    return json.dumps({"version": 1, "world_size": world_size, "requests": requests})


def plan_from_json(text: str) -> tuple[Plan, int]:
    """``(plan, world_size)`` from :func:`plan_to_json`; every request is validated."""
    try:
        data = json.loads(text)
        world = int(data["world_size"])
        plan = tuple(
            (str(kind), tuple(tuple(int(v) for v in p) for p in params))
            for kind, params in data["requests"]
        )
    except (ValueError, KeyError, TypeError) as err:
        raise StoreError(f"not a crypten_lite plan: {err}") from err
    if data.get("version") != 1 or world < 1:
        raise StoreError("not a version-1 crypten_lite plan")
    for index, (kind, params) in enumerate(plan):
        try:
            layout_of(kind, params)
        except Exception as err:
            raise StoreError(f"plan request {index} ({kind!r}) is invalid: {err}") from err
    return plan, world


def _corrections_words(plan: Plan) -> int:
    total = 0
    for kind, params in plan:
        _, derived = layout_of(kind, params)
        total += sum(int(np.prod(c.shape, dtype=np.int64)) for c in derived)
    return total


@dataclass(frozen=True)
class StoreSummary:
    """What :func:`write_stores` wrote: paths, bytes per party, seconds, words."""

    paths: tuple[Path, ...]
    sizes: tuple[int, ...]
    seconds: float
    correction_words: int
    store_id: str


def _secure_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StoreError(f"{directory} is not a directory")
    if info.st_mode & 0o022:
        raise StoreError(f"{directory} is writable by group or others: use a private directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise StoreError(f"{directory} belongs to another user: use a private directory")


def _create(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError as err:
        raise StoreError(f"refusing to overwrite {path}: a store is never rewritten") from err
    except OSError as err:
        raise StoreError(f"cannot create {path}: {err.strerror}") from err
    os.fchmod(fd, 0o600)
    return fd


def write_stores(plan: Plan, world_size: int, directory: str | Path, job_id: str) -> StoreSummary:
    """Generate every party's store for ``plan`` into ``directory`` (see module doc).

    Cost: the dealer's work for the whole plan (every party's draws replayed, the
    corrections computed), streamed to party N-1's file request by request."""
    if world_size < 2:
        raise StoreError("an offline store needs at least 2 parties")
    if not job_id or len(job_id) > 200:
        raise StoreError("job_id must be a non-empty string of at most 200 characters")
    start = time.perf_counter()
    directory = Path(directory)
    _secure_dir(directory)
    seeds = [secrets.token_bytes(SEED_SIZE) for _ in range(world_size)]
    engine = DealerEngine([AesCtrPrg.from_seed(s) for s in seeds], AesCtrPrg.generate())
    store_id = secrets.token_hex(16)
    encoded = _encode_plan(plan)
    words = _corrections_words(plan)
    header: dict[str, object] = {
        "job_id": job_id,
        "store_id": store_id,
        "world_size": world_size,
        "plan_sha256": hashlib.sha256(encoded).hexdigest(),
        "requests": len(plan),
        "kinds": dict(Counter(kind for kind, _ in plan)),
        "correction_words": words,
    }
    paths, sizes = [], []
    for rank in range(world_size):
        path = store_path(directory, rank)
        own = {**header, "rank": rank}
        if rank != world_size - 1:
            own["correction_words"] = 0
        head = json.dumps(own, sort_keys=True).encode()
        digest = hashlib.sha256()
        fd = _create(path)
        with os.fdopen(fd, "wb") as out:
            for chunk in (MAGIC, len(head).to_bytes(4, "little"), head, encoded, seeds[rank]):
                out.write(chunk)
                digest.update(chunk)
            if rank == world_size - 1:  # the dealer's whole job, streamed to this file
                for kind, params in plan:
                    for part in engine.corrections_parts(kind, params):
                        data = part.astype("<u8", copy=False).tobytes()
                        out.write(data)
                        digest.update(data)
            out.write(digest.digest())
        paths.append(path)
        sizes.append(path.stat().st_size)
    return StoreSummary(
        tuple(paths), tuple(sizes), time.perf_counter() - start, words, store_id
    )


@dataclass(frozen=True)
class PartyStore:
    """One party's store, read and verified (see :meth:`open`)."""

    job_id: str
    store_id: str
    rank: int
    world_size: int
    plan: Plan
    plan_sha256: str
    seed: bytes
    corrections: U64

    @classmethod
    def open(
        cls, directory: str | Path, rank: int, world_size: int, job_id: str | None = None
    ) -> PartyStore:
        """Read party ``rank``'s store, verify it (checksum, header, rank, world size, job)
        and REMOVE the file, so its randomness cannot serve a second job."""
        path = store_path(directory, rank)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            raise StoreError(f"rank {rank}: cannot open the offline store {path}: "
                             f"{err.strerror}") from err
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise StoreError(f"rank {rank}: {path} is not a regular file")
            blob = bytearray(handle.read())
        try:
            store = cls._parse(blob, path, rank, world_size, job_id)
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, StoreError):
                raise
            raise StoreError(f"rank {rank}: offline store {path} has a malformed header") from err
        os.unlink(path)  # read once: the randomness can never serve two jobs
        return store

    @classmethod
    def _parse(
        cls, blob: bytearray, path: Path, rank: int, world_size: int, job_id: str | None
    ) -> PartyStore:
        where = f"rank {rank}: offline store {path}"
        if len(blob) < len(MAGIC) + 4 + _DIGEST or bytes(blob[: len(MAGIC)]) != MAGIC:
            raise StoreError(f"{where} is not a crypten_lite store (or is truncated)")
        body = memoryview(blob)[: len(blob) - _DIGEST]
        if hashlib.sha256(body).digest() != bytes(blob[len(blob) - _DIGEST :]):
            raise StoreError(f"{where} is corrupted or truncated (checksum mismatch)")
        at = len(MAGIC)
        size = int.from_bytes(blob[at : at + 4], "little")
        if size > _MAX_HEADER:
            raise StoreError(f"{where} has an oversized header")
        try:
            header = json.loads(bytes(blob[at + 4 : at + 4 + size]))
        except ValueError as err:
            raise StoreError(f"{where} has a malformed header") from err
        at += 4 + size
        if header.get("rank") != rank or header.get("world_size") != world_size:
            raise StoreError(
                f"{where} belongs to rank {header.get('rank')} of a "
                f"{header.get('world_size')}-party job, not rank {rank} of {world_size}"
            )
        if job_id is not None and header.get("job_id") != job_id:
            raise StoreError(f"{where} was made for job {header.get('job_id')!r}, not {job_id!r}")
        words = int(header["correction_words"])
        plan_end = len(body) - SEED_SIZE - 8 * words
        if plan_end < at:
            raise StoreError(f"{where} is shorter than its header says")
        plan = _decode_plan(bytes(blob[at:plan_end]), int(header["requests"]))
        if hashlib.sha256(bytes(blob[at:plan_end])).hexdigest() != header["plan_sha256"]:
            raise StoreError(f"{where}: the plan does not match its digest")
        seed = bytes(blob[plan_end : plan_end + SEED_SIZE])
        if rank == world_size - 1 and words != _corrections_words(plan):
            raise StoreError(f"{where} holds {words} correction words, the plan needs more")
        corrections = np.frombuffer(
            blob, dtype="<u8", count=words, offset=plan_end + SEED_SIZE
        ).astype(np.uint64, copy=False)
        return cls(
            str(header["job_id"]), str(header["store_id"]), rank, world_size, plan,
            str(header["plan_sha256"]), seed, corrections,
        )

    def fingerprint(self) -> bytes:
        """What every party must share: job, store id, plan digest (SHA-256)."""
        text = f"{self.job_id}\x00{self.store_id}\x00{self.plan_sha256}".encode()
        return hashlib.sha256(text).digest()

    def __repr__(self) -> str:
        return (
            f"PartyStore(job_id={self.job_id!r}, rank={self.rank}, world_size="
            f"{self.world_size}, requests={len(self.plan)}, <randomness hidden>)"
        )


class _StoreSource(CorrectionSource):
    """Party N-1's corrections, read from the store in request order."""

    def __init__(self, corrections: U64) -> None:
        self._words = corrections
        self._cursor = 0

    def request(self, kind: str, params: Params) -> None:
        """Nothing to ask: the corrections are already here."""

    def collect_part(self, kind: str, params: Params, part: int) -> dict[str, U64]:
        components = reply_parts(kind, params)[part]
        size = sum(int(np.prod(c.shape, dtype=np.int64)) for c in components)
        if self._cursor + size > self._words.size:
            raise StoreError("the offline store ran out of corrections")
        words = self._words[self._cursor : self._cursor + size]
        self._cursor += size
        return split_components(kind, components, words)


class StoreProvider(Provider):
    """Serves the plan's requests from a :class:`PartyStore`: no dealer rank, no dealer
    traffic. A request that is not the plan's next one, or one past its end, raises
    :class:`StoreError` naming the request (never a fallback to another source)."""

    name = PROVIDER_NAME

    def __init__(self, store: PartyStore) -> None:
        last = store.rank == store.world_size - 1
        super().__init__(
            store.rank,
            store.world_size,
            AesCtrPrg.from_seed(store.seed),
            _StoreSource(store.corrections) if last else None,
        )
        self._plan = store.plan
        self._job = store.job_id
        self._next = 0

    def get(self, kind: str, params: Params) -> Correlation:
        index = self._next
        if index >= len(self._plan):
            raise StoreError(
                f"offline store of job {self._job!r} is used up: request {index} "
                f"({_describe(kind, params)}) comes after the {len(self._plan)} it holds"
            )
        expected = self._plan[index]
        if expected != (kind, params):
            raise StoreError(
                f"offline store of job {self._job!r}: request {index} is "
                f"{_describe(kind, params)}, but the plan recorded {_describe(*expected)}"
            )
        self._next += 1
        return super().get(kind, params)

    @property
    def remaining(self) -> int:
        """Requests of the plan not yet served."""
        return len(self._plan) - self._next


def _describe(kind: str, params: Params) -> str:
    return f"{kind} {params[0]}" if params else kind
