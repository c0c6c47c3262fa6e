"""The checkpoint file format (version 1): one file per party, no pickle.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic  b"\\x89CLCKPT\\n"
    8       4     uint32 format version (1)
    12      4     uint32 reserved, 0
    16      8     uint64 H, length of the header
    24      8     uint64 P, length of the payload
    32      H     header: JSON, UTF-8 (pure ASCII: non-ASCII characters are escaped)
    32+H    P     payload: the raw little-endian bytes of every array, back to back
    32+H+P  32    SHA-256 of every byte before it

The header is one JSON object::

    {"format": "crypten_lite.checkpoint", "version": 1,
     "rank": r, "world_size": N, "save_id": "<32 hex digits>", "job_id": str | null,
     "entries": [entry, ...], "tree": node}

``save_id`` is 16 random bytes drawn by party 0 and sent to every party at save time, so the
N files of one save carry the same id and files of different saves are told apart on load.
``job_id`` is informational (a checkpoint loads in any later job). Each entry describes one
array of the payload, in order (``offset`` is relative to the payload start and equals the end
of the previous entry; ``nbytes`` is ``prod(shape) * itemsize``)::

    {"kind": "mpc", "dtype": "<u8", "shape": [...], "offset": o, "nbytes": n,
     "ptype": "arithmetic" | "binary", "precision": p, "names": [str | null, ...]}
    {"kind": "array" | "scalar", "dtype": "<f4" | "|b1" | ..., "shape": [...],
     "offset": o, "nbytes": n}

``dtype`` is numpy's little-endian type string of a bool, integer, float or complex type. The
``tree`` rebuilds the saved structure; its nodes are ``{"t": "none"}``, ``{"t": "bool"|"int"|
"str", "v": value}``, ``{"t": "float", "v": float.hex(x)}``, ``{"t": "dict"|"odict", "keys":
[...], "values": [node, ...]}``, ``{"t": "list"|"tuple", "items": [node, ...]}`` and
``{"t": "entry", "i": index}`` (each entry is referenced exactly once).

The digest detects truncation and accidental corruption; it is not a signature (anyone who
can write the file can recompute it). A party's file holds its shares: alone it reveals
nothing, but the N files of one save together reveal every saved value, so they are written
with mode 0600 and must be kept as carefully as the data itself.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import CryptenLiteError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAGIC",
    "CheckpointError",
    "Entry",
    "Header",
    "LocalProblem",
    "Status",
    "parse_file",
    "write_file",
]

MAGIC = b"\x89CLCKPT\n"
FORMAT_VERSION = 1
FORMAT_NAME = "crypten_lite.checkpoint"
_PREFIX = struct.Struct("<8sIIQQ")
_DIGEST_SIZE = hashlib.sha256().digest_size
_DTYPE_RE = re.compile(r"[<|][biufc][0-9]{1,2}")
_SAVE_ID_RE = re.compile(r"[0-9a-f]{32}")
_CHUNK = 1 << 24


class CheckpointError(CryptenLiteError, ValueError):
    """A checkpoint could not be saved or loaded. Raised on every party alike; ``faults``
    maps each party at fault to the name of its problem (a :class:`Status` name)."""

    def __init__(self, message: str, faults: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.faults: dict[int, str] = dict(faults or {})


class Status(enum.IntEnum):
    """Outcome of one party's local step, exchanged between parties (one int64 each)."""

    OK = 0
    UNREADABLE = 1
    BAD_MAGIC = 2
    UNSUPPORTED_VERSION = 3
    TRUNCATED = 4
    CORRUPTED = 5
    HEADER_MALFORMED = 6
    WRONG_RANK = 7
    WRONG_WORLD_SIZE = 8
    TARGET_IS_SYMLINK = 9
    TARGET_NOT_FILE = 10
    WRITE_FAILED = 11
    UNEXPECTED = 12


class LocalProblem(Exception):
    """A local check failed: ``status`` and ``detail`` are exchanged, ``message`` stays local."""

    def __init__(self, status: Status, message: str, detail: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Entry:
    """One array of the payload and its public metadata (``meta``: the header entry)."""

    meta: dict[str, Any]
    array: npt.NDArray[Any]


@dataclass(frozen=True)
class Header:
    """The parsed header fields a loader needs."""

    rank: int
    world_size: int
    save_id: bytes
    job_id: str | None
    tree: Any
    entries: list[Entry]


def little_endian(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``array`` as a C-contiguous array of the little-endian variant of its dtype."""
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def _chunks(array: npt.NDArray[Any]) -> Iterator[memoryview]:
    raw = array.reshape(-1).view(np.uint8)
    for start in range(0, raw.size, _CHUNK):
        yield raw[start : start + _CHUNK].data


def write_file(
    out: BinaryIO,
    *,
    rank: int,
    world_size: int,
    save_id: bytes,
    job_id: str | None,
    tree: Any,
    entries: list[Entry],
) -> None:
    """Write one party's checkpoint to ``out`` (entries' arrays little-endian, contiguous)."""
    metas: list[dict[str, Any]] = []
    offset = 0
    for entry in entries:
        nbytes = int(entry.array.nbytes)
        metas.append(
            {
                **entry.meta,
                "dtype": entry.array.dtype.str,
                "shape": list(entry.array.shape),
                "offset": offset,
                "nbytes": nbytes,
            }
        )
        offset += nbytes
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "rank": rank,
        "world_size": world_size,
        "save_id": save_id.hex(),
        "job_id": job_id,
        "entries": metas,
        "tree": tree,
    }
    raw_header = json.dumps(header, ensure_ascii=True, allow_nan=False).encode("utf-8")
    digest = hashlib.sha256()

    def put(chunk: bytes | memoryview) -> None:
        digest.update(chunk)
        out.write(chunk)

    put(_PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(raw_header), offset))
    put(raw_header)
    for entry in entries:
        for chunk in _chunks(entry.array):
            put(chunk)
    out.write(digest.digest())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise LocalProblem(Status.HEADER_MALFORMED, f"checkpoint header malformed: {what}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_entry(meta: Any, index: int, payload: memoryview, offset: int) -> tuple[Entry, int]:
    where = f"entry {index}"
    _require(isinstance(meta, dict), f"{where} is not an object")
    dtype_str = meta.get("dtype")
    _require(
        isinstance(dtype_str, str) and _DTYPE_RE.fullmatch(dtype_str) is not None,
        f"{where} has an unsupported dtype",
    )
    try:
        dtype = np.dtype(dtype_str)
    except TypeError as err:
        raise LocalProblem(
            Status.HEADER_MALFORMED, f"checkpoint header malformed: {where} has an unknown dtype"
        ) from err
    _require(dtype.str == dtype_str, f"{where} has a non-canonical dtype")
    shape = meta.get("shape")
    _require(
        isinstance(shape, list) and len(shape) <= 32 and all(_is_int(d) and d >= 0 for d in shape),
        f"{where} has an invalid shape",
    )
    nbytes = meta.get("nbytes")
    _require(
        _is_int(meta.get("offset")) and meta["offset"] == offset,
        f"{where} does not start where the previous entry ends",
    )
    _require(
        _is_int(nbytes) and nbytes == math.prod(shape) * dtype.itemsize,
        f"{where} has a byte length that does not match its shape and dtype",
    )
    end = offset + int(nbytes)
    _require(end <= len(payload), f"{where} runs past the payload")
    try:
        flat = np.frombuffer(payload[offset:end], dtype=dtype)
        array = flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    except ValueError as err:
        raise LocalProblem(
            Status.HEADER_MALFORMED, f"checkpoint header malformed: {where} has a bad shape"
        ) from err
    return Entry(meta, array), end


def parse_file(data: bytes) -> Header:
    """Check and parse one party's file; raises :class:`LocalProblem` naming the problem."""
    if len(data) < len(MAGIC):
        if data and MAGIC.startswith(data):
            raise LocalProblem(Status.TRUNCATED, "checkpoint file truncated")
        raise LocalProblem(Status.BAD_MAGIC, "not a crypten_lite checkpoint (bad magic bytes)")
    if data[: len(MAGIC)] != MAGIC:
        raise LocalProblem(Status.BAD_MAGIC, "not a crypten_lite checkpoint (bad magic bytes)")
    if len(data) < _PREFIX.size:
        raise LocalProblem(Status.TRUNCATED, "checkpoint file truncated")
    _, version, _, header_len, payload_len = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise LocalProblem(
            Status.UNSUPPORTED_VERSION,
            f"unsupported checkpoint format version {version} (this build reads {FORMAT_VERSION})",
            detail=min(int(version), 2**62),
        )
    expected = _PREFIX.size + header_len + payload_len + _DIGEST_SIZE
    if len(data) < expected:
        raise LocalProblem(
            Status.TRUNCATED,
            f"checkpoint file truncated: {len(data)} bytes, the prefix announces {expected}",
        )
    if len(data) > expected:
        raise LocalProblem(
            Status.CORRUPTED,
            f"checkpoint file corrupted: {len(data) - expected} unexpected trailing bytes",
        )
    body = memoryview(data)[: expected - _DIGEST_SIZE]
    if hashlib.sha256(body).digest() != data[expected - _DIGEST_SIZE :]:
        raise LocalProblem(Status.CORRUPTED, "checkpoint file corrupted (SHA-256 mismatch)")
    header_end = _PREFIX.size + header_len
    try:
        header = json.loads(
            bytes(body[_PREFIX.size : header_end]).decode("utf-8"),
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise LocalProblem(
            Status.HEADER_MALFORMED, "checkpoint header malformed: not valid JSON"
        ) from err
    _require(isinstance(header, dict), "not a JSON object")
    _require(header.get("format") == FORMAT_NAME, "wrong format name")
    _require(header.get("version") == version, "version differs from the prefix")
    for key in ("rank", "world_size"):
        _require(_is_int(header.get(key)) and header[key] >= 0, f"{key} is not a valid int")
    _require(header["world_size"] >= 1, "world_size < 1")
    save_id = header.get("save_id")
    _require(
        isinstance(save_id, str) and _SAVE_ID_RE.fullmatch(save_id) is not None,
        "save_id is not 32 hex digits",
    )
    job_id = header.get("job_id")
    _require(job_id is None or isinstance(job_id, str), "job_id is not a string")
    metas = header.get("entries")
    _require(isinstance(metas, list), "entries is not a list")
    payload = body[header_end:]
    entries: list[Entry] = []
    offset = 0
    for index, meta in enumerate(metas):
        entry, offset = _parse_entry(meta, index, payload, offset)
        entries.append(entry)
    _require(offset == len(payload), "the entries do not cover the payload")
    _require("tree" in header, "tree missing")
    return Header(
        rank=int(header["rank"]),
        world_size=int(header["world_size"]),
        save_id=bytes.fromhex(save_id),
        job_id=job_id,
        tree=header["tree"],
        entries=entries,
    )
