"""CrypTen's access-control helpers: ONE party reads or writes a PLAINTEXT file.

``load_from_party(path, src)`` — party ``src`` reads a numpy file it holds in the clear and
secret-shares its contents among all parties; the other parties never open a file.
``save_from_party(obj, path, src)`` — MPCTensors are revealed to ``src`` only and ``src``
writes the plaintext values; the other parties write nothing.

File format (no pickle, ever):

* a single array is stored as a ``.npy`` file (``numpy.save`` format), loaded back as one
  ``MPCTensor``;
* a dict of arrays (a ``state_dict``, ``{"w": ..., "b": ...}``) is stored as an ``.npz``
  file (a zip of ``.npy`` members, ``numpy.savez`` format), loaded back as an ``OrderedDict``
  of ``MPCTensor`` in the file's order.

The kind is read from the file's magic bytes, not from its name, so files written by
``numpy.save``/``numpy.savez`` load too (``np.savez(f, x)`` gives ``{"arr_0": x}``). Files
are parsed with ``allow_pickle=False``; only bool, integer and floating-point arrays are
accepted (object, string, complex arrays and anything else are refused with a clear error).

Every party calls the same function with the same ``path``/``src``; a problem found on any
party (missing or malformed file on ``src``, ``src`` out of range or different between
parties, unsupported object, model that does not fit the file) raises
:class:`CheckpointError` on every party alike, after one all-gather of a status (5 int64).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import json
import os
import stat
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from crypten_lite.autograd import Variable
from crypten_lite.checkpoint.api import _fsync_directory, _open_temporary, _session
from crypten_lite.checkpoint.format import CheckpointError, LocalProblem
from crypten_lite.nn import Module
from crypten_lite.session import Session
from crypten_lite.tensor import MPCTensor, cryptensor

__all__ = ["load_from_party", "save_from_party"]

#: First word of every status message (ASCII "CLPF").
_TAG = 0x434C5046
_WORDS = 5  # tag, status, src, detail, digest
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


class _Status(enum.IntEnum):
    OK = 0
    BAD_SRC = 1
    UNREADABLE = 2
    NOT_NUMPY = 3
    UNSUPPORTED = 4
    TARGET_IS_SYMLINK = 5
    TARGET_NOT_FILE = 6
    WRITE_FAILED = 7
    MODEL_FAILED = 8
    UNEXPECTED = 9


_TEXTS = {
    _Status.BAD_SRC: "src is not a party rank",
    _Status.UNREADABLE: "file missing, unreadable or not a regular file",
    _Status.NOT_NUMPY: "not a numpy .npy/.npz file (pickled or other data is refused)",
    _Status.UNSUPPORTED: "unsupported object or array dtype",
    _Status.TARGET_IS_SYMLINK: "the target path is a symbolic link (refused)",
    _Status.TARGET_NOT_FILE: "the target path exists and is not a regular file",
    _Status.WRITE_FAILED: "the file could not be written",
    _Status.MODEL_FAILED: "the model could not be built or does not fit the file",
    _Status.UNEXPECTED: "unexpected error",
}


class _Problem(Exception):
    def __init__(self, status: _Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Outcome:
    """This party's status; the first problem wins."""

    def __init__(self) -> None:
        self.status = _Status.OK
        self.message = ""
        self.cause: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status == _Status.OK

    def attempt(self, step: Callable[[], Any], fallback: _Status) -> Any:
        if not self.ok:
            return None
        try:
            return step()
        except _Problem as problem:
            self.status, self.message, self.cause = problem.status, problem.message, problem
        except LocalProblem as problem:  # from checkpoint.api._open_temporary
            status = {9: _Status.TARGET_IS_SYMLINK, 10: _Status.TARGET_NOT_FILE}.get(
                int(problem.status), _Status.WRITE_FAILED
            )
            self.status, self.message, self.cause = status, problem.message, problem
        except OSError as err:
            self.status, self.cause = fallback, err
            self.message = f"{type(err).__name__}: {err.strerror or err}"
        except Exception as err:
            self.status = fallback if fallback != _Status.WRITE_FAILED else _Status.UNEXPECTED
            self.message, self.cause = f"{type(err).__name__}: {err}", err
        return None


def _valid_src(src: Any, world_size: int) -> bool:
    return isinstance(src, int) and not isinstance(src, bool) and 0 <= src < world_size


def _agree(
    what: str, session: Session, outcome: _Outcome, src: Any, *, digest: int = 0, detail: int = 0
) -> list[int]:
    """One all-gather of (status, src, detail, digest); raise alike on every party if any
    party failed, the parties disagree on ``src`` or on ``digest``. Returns the details."""
    given = int(src) if _valid_src(src, session.world_size) else -1
    vector = np.array([_TAG, int(outcome.status), given, detail, digest], dtype=np.int64)
    rows: list[tuple[_Status, int, int, int]] = []
    for party, got in enumerate(session.comm.all_gather(vector)):
        message = np.asarray(got)
        valid = message.dtype == np.int64 and message.shape == (_WORDS,)
        if not valid or int(message[0]) != _TAG or int(message[1]) not in set(_Status):
            raise CheckpointError(
                f"{what}: malformed status from party {party}: is every party running the "
                "same save_from_party/load_from_party?",
                {party: "PROTOCOL"},
            )
        rows.append((_Status(int(message[1])), int(message[2]), int(message[3]), int(message[4])))
    failed = {p: row[0] for p, row in enumerate(rows) if row[0] != _Status.OK}
    if failed:
        text = "; ".join(f"party {p}: {_TEXTS.get(s, s.name)}" for p, s in failed.items())
        if not outcome.ok:
            text += f" [party {session.rank} here: {outcome.message}]"
        raise CheckpointError(
            f"{what}: {text}", {p: s.name for p, s in failed.items()}
        ) from outcome.cause
    if len({row[1] for row in rows}) != 1:
        listing = ", ".join(f"party {p}: src={row[1]}" for p, row in enumerate(rows))
        raise CheckpointError(f"{what}: the parties passed different src ({listing})")
    if len({row[3] for row in rows}) != 1:
        raise CheckpointError(
            f"{what}: the parties passed different encrypted structures (keys or shapes of "
            "their MPCTensors differ)",
            {p: "LAYOUT_MISMATCH" for p in range(session.world_size) if p != given},
        )
    return [row[2] for row in rows]


# -- what may be saved ----------------------------------------------------------------------
def _plain_array(value: Any, key: str) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise _Problem(
            _Status.UNSUPPORTED,
            f"{key}: only bool, integer and floating-point arrays can be written, got dtype "
            f"{array.dtype}",
        )
    return array


def _leaf(value: Any, key: str) -> MPCTensor | npt.NDArray[Any]:
    if isinstance(value, Variable):
        value = value.data
    if isinstance(value, MPCTensor):
        return value
    if isinstance(value, np.ndarray | np.generic | bool | int | float):
        return _plain_array(value, key)
    raise _Problem(
        _Status.UNSUPPORTED,
        f"{key}: cannot save {type(value).__name__} (MPCTensor, numpy array or number only)",
    )


def _collect(obj: Any) -> tuple[str, list[tuple[str, MPCTensor | npt.NDArray[Any]]]]:
    """``("array", [("", leaf)])`` or ``("dict", [(key, leaf), ...])``."""
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        entries = []
        for key, value in obj.items():
            if not isinstance(key, str) or not key or "\0" in key:
                raise _Problem(_Status.UNSUPPORTED, f"dict keys must be non-empty str, got {key!r}")
            entries.append((key, _leaf(value, repr(key))))
        return "dict", entries
    return "array", [("", _leaf(obj, "object"))]


def _layout_digest(entries: list[tuple[str, MPCTensor | npt.NDArray[Any]]]) -> int:
    """A 63-bit digest of the (key, shape) of every MPCTensor: all parties must agree."""
    layout = [[k, list(v.shape)] for k, v in entries if isinstance(v, MPCTensor)]
    if not layout:
        return 0
    raw = hashlib.blake2b(json.dumps(layout).encode(), digest_size=8).digest()
    return int.from_bytes(raw, "little") >> 1


def _write(out: io.BufferedWriter, kind: str, arrays: list[tuple[str, npt.NDArray[Any]]]) -> None:
    if kind == "array":
        np.lib.format.write_array(out, arrays[0][1], allow_pickle=False)
        return
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays:
            with archive.open(f"{key}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save_from_party(
    obj: Any, path: str | os.PathLike[str], src: int = 0, *, session: Session | None = None
) -> str:
    """Party ``src`` writes ``obj`` in the clear to ``path``; every party calls it.

    ``obj``: an ``MPCTensor`` (revealed to ``src`` only: ``get_plain_text(dst=src)``), a numpy
    array or number (``src``'s own value is written; the other parties may pass ``None``), an
    ``nn.Module`` (its ``state_dict()``) or a dict of those with str keys. Every party must
    pass MPCTensors of the same keys and shapes. ``src`` writes a ``.npy`` (one array) or
    ``.npz`` (dict) file with mode 0600 through a temporary file (``O_EXCL|O_NOFOLLOW``)
    and ``os.replace``, refusing a symlink at ``path``; the other parties write nothing.
    Returns ``path``. Cost: 2 all-gathers of 5 int64 plus one reveal per MPCTensor.
    """
    session = _session(session)
    target = os.fspath(path)
    if not isinstance(target, str):
        raise TypeError("path must be a str or os.PathLike[str]")
    outcome = _Outcome()
    is_src = _valid_src(src, session.world_size) and session.rank == src
    if not _valid_src(src, session.world_size):
        outcome.status = _Status.BAD_SRC
        outcome.message = f"src={src!r} is not a party rank (0..{session.world_size - 1})"
    passed_none = obj is None and not is_src
    collected = None if passed_none else outcome.attempt(lambda: _collect(obj), _Status.UNSUPPORTED)
    kind, entries = collected if collected is not None else ("array", [])
    opened = None
    if is_src:
        opened = outcome.attempt(lambda: _open_temporary(target), _Status.WRITE_FAILED)
    fd, temporary = opened if opened is not None else (-1, "")
    committed = False
    try:
        _agree("not saved", session, outcome, src, digest=_layout_digest(entries))
        plain: list[tuple[str, npt.NDArray[Any]]] = []
        for key, value in entries:
            if isinstance(value, MPCTensor):
                revealed = value.get_plain_text(dst=src)
                if is_src:
                    plain.append((key, np.asarray(revealed)))
            elif is_src:
                plain.append((key, value))

        def write() -> None:
            nonlocal fd, committed
            with os.fdopen(fd, "wb") as out:
                fd = -1  # the file object owns it now
                _write(out, kind, plain)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
            committed = True
            _fsync_directory(target)

        if is_src:
            outcome.attempt(write, _Status.WRITE_FAILED)
        _agree("not saved", session, outcome, src)
    finally:
        if fd >= 0:
            os.close(fd)
        if temporary and not committed:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return target


# -- load -----------------------------------------------------------------------------------
def _read(source: str) -> bytes:
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _Problem(_Status.UNREADABLE, f"{source!r} is not a regular file")
        return handle.read()


def _parse(data: bytes, source: str) -> npt.NDArray[Any] | OrderedDict[str, npt.NDArray[Any]]:
    """A ``.npy`` array or an ``.npz`` dict, parsed with ``allow_pickle=False``."""
    try:
        if data.startswith(_NPY_MAGIC):
            array = np.load(io.BytesIO(data), allow_pickle=False)
            return _plain_array(array, source)
        if data.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
            out: OrderedDict[str, npt.NDArray[Any]] = OrderedDict()
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                for key in archive.files:
                    out[key] = _plain_array(archive[key], f"{source!r}[{key!r}]")
            return out
    except _Problem:
        raise
    except Exception as err:
        raise _Problem(_Status.NOT_NUMPY, f"{source!r}: {type(err).__name__}: {err}") from err
    raise _Problem(
        _Status.NOT_NUMPY,
        f"{source!r} is not a numpy .npy/.npz file (pickled or other data is refused)",
    )


def load_from_party(
    path: str | os.PathLike[str] | None,
    src: int = 0,
    *,
    model_class: Callable[[], Module] | None = None,
    session: Session | None = None,
    precision: int | None = None,
) -> Any:
    """Party ``src`` reads the plaintext numpy file ``path`` and secret-shares it; every
    party calls it (only ``src`` opens a file; the others' ``path`` is ignored and may be
    ``None``).

    Returns an ``MPCTensor`` for a ``.npy`` file, an ``OrderedDict[str, MPCTensor]`` for an
    ``.npz`` file. With ``model_class`` every party builds ``model_class()``; ``src`` loads
    the file (an ``.npz`` state dict) into it with ``load_state_dict`` and the model is
    encrypted from ``src`` (``encrypt(src=src)``), so every party returns the same encrypted
    model holding shares of ``src``'s weights (non-floating-point buffers are not shared
    and keep each party's own values). Errors raise :class:`CheckpointError` on every party
    alike. Cost: 1 all-gather of 5 int64, 1 broadcast of the key list, then 1 round per
    tensor (``cryptensor``).
    """
    session = _session(session)
    outcome = _Outcome()
    if not _valid_src(src, session.world_size):
        outcome.status = _Status.BAD_SRC
        outcome.message = f"src={src!r} is not a party rank (0..{session.world_size - 1})"
    is_src = outcome.ok and session.rank == src

    def build() -> Module:
        model = cast(Callable[[], Any], model_class)()  # only called when model_class is set
        if not isinstance(model, Module):
            raise _Problem(
                _Status.MODEL_FAILED,
                f"model_class() must return a crypten_lite.nn.Module, got {type(model).__name__}",
            )
        return model

    model = outcome.attempt(build, _Status.MODEL_FAILED) if model_class is not None else None
    plain: Any = None
    source = os.fspath(path) if is_src and path is not None else ""
    if is_src:
        plain = outcome.attempt(lambda: _parse(_read(source), source), _Status.UNREADABLE)
    if is_src and model is not None and outcome.ok:

        def fill() -> None:
            if not isinstance(plain, Mapping):
                raise _Problem(
                    _Status.MODEL_FAILED, f"{source!r} holds one array, not a state dict (.npz)"
                )
            model.load_state_dict(plain)

        outcome.attempt(fill, _Status.MODEL_FAILED)
    is_dict = isinstance(plain, Mapping)
    kinds = _agree("cannot load", session, outcome, src, detail=int(is_dict))
    if model is not None:
        return model.encrypt(src=src, session=session)
    if not kinds[src]:
        return cryptensor(plain if is_src else None, src=src, precision=precision, session=session)
    keys_payload = (
        np.frombuffer(json.dumps(list(plain)).encode(), dtype=np.uint8) if is_src else None
    )
    keys = json.loads(session.comm.broadcast(keys_payload, src).tobytes().decode())
    return OrderedDict(
        (key, cryptensor(plain[key] if is_src else None, src=src, precision=precision,
                         session=session))
        for key in keys
    )
