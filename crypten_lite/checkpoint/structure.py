"""Turn a saveable object into a JSON tree plus a list of arrays, and back (no pickle).

Saveable: ``MPCTensor`` (any ptype and precision, names kept), numpy arrays and scalars of a
bool/integer/float/complex dtype, ``None``/``bool``/``int``/``float``/``str``, ``dict`` (str
keys; ``OrderedDict`` stays one), ``list``, ``tuple``, an ``nn.Module`` (its ``state_dict()``)
and autograd-style variables (an object with ``requires_grad`` whose ``.data`` is an
MPCTensor or array: its ``.data`` is saved). Anything else raises ``TypeError`` naming the
key path, before any communication.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from crypten_lite.checkpoint.format import Entry, LocalProblem, Status, little_endian
from crypten_lite.encoding.fixed_point import MAX_PRECISION
from crypten_lite.errors import SessionError
from crypten_lite.nn import Module
from crypten_lite.session import Session
from crypten_lite.sharing import ARITHMETIC, BINARY
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import names as names_mod

__all__ = ["MAX_DEPTH", "flatten", "unflatten"]

#: Deepest nesting of containers accepted when saving and loading.
MAX_DEPTH = 200
_NUMERIC_KINDS = "biufc"
_SUPPORTED = (
    "MPCTensor, numpy array or scalar (bool/int/float/complex), None, bool, int, float, "
    "str, dict with str keys, list, tuple, nn.Module"
)


def _variable_data(obj: Any) -> Any:
    """``obj.data`` if ``obj`` looks like an autograd variable holding a tensor, else None."""
    if not hasattr(obj, "requires_grad"):
        return None
    data = getattr(obj, "data", None)
    return data if isinstance(data, MPCTensor | np.ndarray) else None


class _Flattener:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.entries: list[Entry] = []
        self.active: set[int] = set()

    def entry(self, meta: dict[str, Any], array: np.ndarray[Any, Any]) -> dict[str, Any]:
        self.entries.append(Entry(meta, little_endian(array)))
        return {"t": "entry", "i": len(self.entries) - 1}

    def array(self, array: np.ndarray[Any, Any], path: str, kind: str) -> dict[str, Any]:
        if array.dtype.kind not in _NUMERIC_KINDS or array.dtype.fields is not None:
            raise TypeError(
                f"cannot save {path}: numpy dtype {array.dtype} is not bool, integer, float "
                "or complex"
            )
        return self.entry({"kind": kind}, array)

    def tensor(self, tensor: MPCTensor, path: str) -> dict[str, Any]:
        if tensor.session is not self.session:
            raise SessionError(f"cannot save {path}: the MPCTensor belongs to another session")
        meta = {
            "kind": "mpc",
            "ptype": tensor.ptype,
            "precision": int(tensor.precision),
            "names": list(tensor.names),
        }
        return self.entry(meta, np.asarray(tensor.share, dtype=np.uint64))

    def node(self, obj: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"cannot save {path}: nesting deeper than {MAX_DEPTH} levels")
        if isinstance(obj, MPCTensor):
            return self.tensor(obj, path)
        if isinstance(obj, np.ndarray):
            return self.array(obj, path, "array")
        if isinstance(obj, np.generic):
            return self.array(np.asarray(obj), path, "scalar")
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": bool(obj)}
        if isinstance(obj, int):
            return {"t": "int", "v": int(obj)}
        if isinstance(obj, float):
            return {"t": "float", "v": float(obj).hex()}
        if isinstance(obj, str):
            return {"t": "str", "v": str(obj)}
        if isinstance(obj, Module):
            return self.node(obj.state_dict(), path, depth)
        if isinstance(obj, dict | list | tuple):
            if id(obj) in self.active:
                raise ValueError(f"cannot save {path}: the structure contains itself")
            self.active.add(id(obj))
            try:
                return self.container(obj, path, depth)
            finally:
                self.active.discard(id(obj))
        data = _variable_data(obj)
        if data is not None:
            return self.node(data, path, depth)
        raise TypeError(
            f"cannot save {path}: unsupported type {type(obj).__qualname__} "
            f"(a checkpoint holds: {_SUPPORTED})"
        )

    def container(
        self, obj: dict[Any, Any] | list[Any] | tuple[Any, ...], path: str, depth: int
    ) -> dict[str, Any]:
        if isinstance(obj, dict):
            keys = list(obj)
            for key in keys:
                if not isinstance(key, str):
                    raise TypeError(
                        f"cannot save {path}: dict key of type {type(key).__qualname__}; "
                        "keys must be str"
                    )
            return {
                "t": "odict" if isinstance(obj, OrderedDict) else "dict",
                "keys": [str(k) for k in keys],
                "values": [self.node(obj[k], f"{path}[{k!r}]", depth + 1) for k in keys],
            }
        return {
            "t": "tuple" if isinstance(obj, tuple) else "list",
            "items": [self.node(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)],
        }


def flatten(obj: Any, session: Session, root: str = "obj") -> tuple[Any, list[Entry]]:
    """The JSON tree of ``obj`` and its arrays (shares are this party's, little-endian)."""
    flattener = _Flattener(session)
    tree = flattener.node(obj, root, 0)
    return tree, flattener.entries


def _malformed(what: str) -> LocalProblem:
    return LocalProblem(Status.HEADER_MALFORMED, f"checkpoint header malformed: {what}")


class _Builder:
    def __init__(self, entries: list[Entry], session: Session) -> None:
        self.entries = entries
        self.session = session
        self.used = [False] * len(entries)

    def entry(self, index: Any) -> Any:
        if not isinstance(index, int) or isinstance(index, bool):
            raise _malformed("entry index is not an int")
        if not 0 <= index < len(self.entries) or self.used[index]:
            raise _malformed(f"entry {index} is missing or referenced twice")
        self.used[index] = True
        meta, array = self.entries[index].meta, self.entries[index].array
        kind = meta.get("kind")
        if kind == "array":
            return array
        if kind == "scalar":
            if array.ndim != 0:
                raise _malformed(f"scalar entry {index} is not 0-d")
            return array[()]
        if kind == "mpc":
            return self.tensor(index, meta, array)
        raise _malformed(f"entry {index} has an unknown kind")

    def tensor(self, index: int, meta: dict[str, Any], array: np.ndarray[Any, Any]) -> MPCTensor:
        ptype, precision, names = meta.get("ptype"), meta.get("precision"), meta.get("names")
        if meta.get("dtype") != "<u8":
            raise _malformed(f"shares of entry {index} are not uint64")
        if ptype not in (ARITHMETIC, BINARY):
            raise _malformed(f"entry {index} has an unknown ptype")
        if not isinstance(precision, int) or isinstance(precision, bool):
            raise _malformed(f"entry {index} has a non-integer precision")
        if not 0 <= precision <= MAX_PRECISION:
            raise _malformed(f"entry {index} has a precision outside [0, {MAX_PRECISION}]")
        if not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names):
            raise _malformed(f"entry {index} has invalid names")
        try:
            checked = names_mod.check_names(names, array.ndim)
        except RuntimeError as err:
            raise _malformed(f"entry {index} has invalid names") from err
        return MPCTensor(self.session, array, precision, ptype, checked)

    def node(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _malformed(f"nesting deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            raise _malformed("a tree node is not an object")
        tag, value = node.get("t"), node.get("v")
        if tag == "entry":
            return self.entry(node.get("i"))
        if tag == "none":
            return None
        if tag == "bool" and isinstance(value, bool):
            return value
        if tag == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tag == "str" and isinstance(value, str):
            return value
        if tag == "float" and isinstance(value, str):
            try:
                return float.fromhex(value)
            except ValueError as err:
                raise _malformed("a float is not in hex notation") from err
        if tag in ("dict", "odict"):
            keys, values = node.get("keys"), node.get("values")
            if (
                not isinstance(keys, list)
                or not isinstance(values, list)
                or len(keys) != len(values)
                or not all(isinstance(k, str) for k in keys)
                or len(set(keys)) != len(keys)
            ):
                raise _malformed("a dict node has invalid keys or values")
            items = [(k, self.node(v, depth + 1)) for k, v in zip(keys, values, strict=True)]
            return OrderedDict(items) if tag == "odict" else dict(items)
        if tag in ("list", "tuple"):
            members = node.get("items")
            if not isinstance(members, list):
                raise _malformed("a list node has no items")
            built = [self.node(v, depth + 1) for v in members]
            return tuple(built) if tag == "tuple" else built
        raise _malformed("a tree node has an unknown tag or a bad value")


def unflatten(tree: Any, entries: list[Entry], session: Session) -> Any:
    """Rebuild the saved object; MPCTensors join ``session``. Raises :class:`LocalProblem`."""
    builder = _Builder(entries, session)
    obj = builder.node(tree, 0)
    if not all(builder.used):
        raise _malformed("an entry is not referenced by the tree")
    return obj
