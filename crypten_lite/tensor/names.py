"""Name inference for named dimensions (PyTorch 1.3-2.12 semantics, its error wording).

Pure functions on name tuples and shapes: they decide the output names of an operation, or
raise, before any share is touched or any triple is spent. Both ``MPCTensor`` and the
plaintext ``NamedArray`` apply them. Names are public metadata, like shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ELLIPSIS",
    "Names",
    "Size",
    "align_plan",
    "check_names",
    "fmt",
    "index_names",
    "is_named",
    "lookup",
    "matmul_names",
    "refine",
    "rename",
    "unflatten_names",
    "unify_from_right",
    "unnamed",
]

Names = tuple[str | None, ...]
ELLIPSIS = "..."
MAX_NAMED_DIMS = 64


def fmt(names: Sequence[str | None]) -> str:
    """``Tensor['N', None]`` as PyTorch prints it."""
    return "Tensor[" + ", ".join("None" if n is None else repr(n) for n in names) + "]"


def _listing(names: Sequence[str | None]) -> str:
    return "[" + ", ".join("None" if n is None else repr(n) for n in names) + "]"


def unnamed(ndim: int) -> Names:
    return (None,) * ndim


def is_named(names: Names) -> bool:
    return any(n is not None for n in names)


def check_names(names: Sequence[str | None] | None, ndim: int) -> Names:
    """Validate ``names`` for a tensor of ``ndim`` dims (None means all unnamed)."""
    if names is None:
        return unnamed(ndim)
    out = tuple(names)
    for name in out:
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            raise RuntimeError(
                f"Invalid name: a valid identifier contains only digits, alphabetical "
                f"characters and/or underscore and starts with a non-digit. got: {name!r}"
            )
        if name == ELLIPSIS:
            raise RuntimeError("'...' is only allowed where a function documents it")
    if len(out) != ndim:
        raise RuntimeError(
            f"Number of names ({len(out)}) and number of dimensions in tensor ({ndim}) do not "
            f"match. Attempted to create a tensor with names {_listing(out)}"
        )
    if ndim > MAX_NAMED_DIMS and is_named(out):
        raise RuntimeError(f"Named tensors only support up to {MAX_NAMED_DIMS} dims")
    named = [n for n in out if n is not None]
    if len(set(named)) != len(named):
        dup = next(n for n in named if named.count(n) > 1)
        raise RuntimeError(
            f"Cannot construct a tensor with duplicate names. Got names: {_listing(out)}; "
            f"'{dup}' appears more than once"
        )
    return out


def _normalize(args: Sequence[Any]) -> list[Any]:
    """``...`` (the Ellipsis object) and ``'...'`` mean the same."""
    return [ELLIPSIS if a is Ellipsis else a for a in args]


def _expand(args: Sequence[Any], current: Names, fn: str) -> list[str | None]:
    """Replace one ``'...'`` in ``args`` by the dims of ``current`` it stands for."""
    args = _normalize(args)
    if args.count(ELLIPSIS) > 1:
        raise RuntimeError(f"{fn}: More than one Ellipsis ('...') found in names ({list(args)})")
    if ELLIPSIS not in args:
        return list(args)
    pos = list(args).index(ELLIPSIS)
    n_fill = len(current) - (len(args) - 1)
    if n_fill < 0:
        raise RuntimeError(
            f"{fn}: too many names {list(args)} for a tensor with {len(current)} dims"
        )
    return [*args[:pos], *current[pos : pos + n_fill], *args[pos + 1 :]]


def rename(current: Names, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Names:
    """``rename(*names)`` or ``rename(**{old: new})``; ``rename(None)`` drops all names."""
    if args and kwargs:
        raise RuntimeError(
            "rename: This function takes either positional args or keyword args, but not both. "
            "Use rename(*names) to name dims and rename(**rename_map) to rename dims."
        )
    if kwargs:
        out = list(current)
        for old, new in kwargs.items():
            if old not in current:
                raise RuntimeError(
                    f"rename: Tried to rename dim '{old}' to dim {new} in {fmt(current)} but "
                    f"dim '{old}' does not exist"
                )
            out[current.index(old)] = new
        return check_names(out, len(current))
    if len(args) == 1 and args[0] is None:
        return unnamed(len(current))
    return check_names(_expand(args, current, "rename"), len(current))


def refine(current: Names, args: tuple[Any, ...]) -> Names:
    """``refine_names``: None may become a name; a name may only stay itself."""
    target = _expand(args, current, "refine_names")
    if len(target) != len(current):
        raise RuntimeError(
            f"refine_names: cannot coerce {fmt(current)} to {fmt(target)} because they have a "
            f"different number of dims ({len(current)} and {len(target)} respectively)."
        )
    for i, (have, want) in enumerate(zip(current, target, strict=True)):
        if have is None or have == want:
            continue
        if want is None:
            raise RuntimeError(
                f"refine_names: cannot coerce {fmt(current)} to {fmt(target)} because "
                f"'{have}' is more specific than None at index {i}"
            )
        raise RuntimeError(
            f"refine_names: cannot coerce {fmt(current)} to {fmt(target)} because '{have}' is "
            f"different from '{want}' at index {i}"
        )
    return check_names(target, len(current))


def lookup(names: Names, dim: Any, ndim: int) -> int:
    """Resolve a dim given by name or (possibly negative) position."""
    if isinstance(dim, str):
        if dim not in names:
            raise RuntimeError(f"Name '{dim}' not found in {fmt(names)}.")
        return names.index(dim)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int or a name, got {type(dim).__name__}")
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], "
            f"but got {dim})"
        )
    return dim % span


def align_plan(current: Names, args: Sequence[Any]) -> tuple[list[int | None], Names]:
    """``align_to(*names)``: for each output dim the input dim it takes (None: a new size-1
    dim), and the output names."""
    args = _normalize(args)
    if any(a is None for a in args):
        raise RuntimeError(
            f"align_to: the desired order of dimensions cannot contain a None name, got "
            f"{_listing(args)}"
        )
    if ELLIPSIS in args:
        mentioned = {a for a in args if a != ELLIPSIS}
        rest = [n for n in current if n not in mentioned]
        if None in rest:
            raise RuntimeError(
                f"align_to: All input dims must be named. Found unnamed dim at index "
                f"{current.index(None)} of {fmt(current)}"
            )
        target: list[str | None] = []
        for a in args:
            target.extend(rest if a == ELLIPSIS else [a])
    else:
        for i, n in enumerate(current):
            if n is None:
                raise RuntimeError(
                    f"align_to: All input dims must be named. Found unnamed dim at index {i} "
                    f"of {fmt(current)}"
                )
        target = list(args)
    for n in current:
        if n not in target:
            raise RuntimeError(
                f"align_to: Cannot find dim '{n}' from {fmt(current)} in desired alignment "
                f"{_listing(target)}."
            )
    plan = [current.index(n) if n in current else None for n in target]
    return plan, check_names(target, len(target))


def unify_from_right(a: Names, b: Names) -> Names:
    """Broadcast names: positional from the right; names must match or be None."""
    out: list[str | None] = []
    for i in range(1, max(len(a), len(b)) + 1):
        na = a[-i] if i <= len(a) else None
        nb = b[-i] if i <= len(b) else None
        if na is not None and nb is not None and na != nb:
            raise RuntimeError(
                f"Error when attempting to broadcast dims {_listing(a)} and dims {_listing(b)}: "
                f"dim '{na}' and dim '{nb}' are at the same position from the right but do not "
                f"match."
            )
        name = na if na is not None else nb
        # a name meeting None must not sit elsewhere in the other operand
        misaligned = (na is not None and nb is None and i <= len(b) and na in b) or (
            nb is not None and na is None and i <= len(a) and nb in a
        )
        if misaligned:
            raise RuntimeError(
                f"Misaligned dims when attempting to broadcast dims {_listing(a)} and dims "
                f"{_listing(b)}: dim '{name}' appears in a different position from the "
                f"right across both lists."
            )
        out.append(name)
    return tuple(reversed(out))


def matmul_names(a: Names, b: Names) -> Names:
    """PyTorch's matmul rule: batch dims unified from the right, then (a[-2], b[-1]);
    1-D operands lose their contracted dim."""
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        out = (*b[:-2], b[-1])
    elif len(b) == 1:
        out = a[:-1]
    else:
        out = (*unify_from_right(a[:-2], b[:-2]), a[-2], b[-1])
    named = [n for n in out if n is not None]
    if len(set(named)) != len(named):
        raise RuntimeError(
            f"Matrix multiplying {fmt(a)} with {fmt(b)} would produce output tensor with "
            f"duplicate names {_listing(out)}. Please rename the input tensors to prevent this."
        )
    return tuple(out)


def unflatten_names(names: Names, axis: int, new: Sequence[str | None]) -> Names:
    return check_names((*names[:axis], *new, *names[axis + 1 :]), len(names) - 1 + len(new))


def index_names(names: Names, index: Any) -> Names | None:
    """Names after basic indexing (ints drop dims, slices keep, None adds an unnamed dim,
    one Ellipsis); ``None`` for advanced indexing (the result is unnamed)."""
    items = index if isinstance(index, tuple) else (index,)
    if any(not (isinstance(i, int | slice) or i is None or i is Ellipsis) for i in items):
        return None
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    out: list[str | None] = []
    pos = 0
    for item in items:
        if item is Ellipsis:
            span = len(names) - consumed
            out.extend(names[pos : pos + span])
            pos += span
        elif item is None:
            out.append(None)
        elif isinstance(item, slice):
            out.append(names[pos])
            pos += 1
        else:
            pos += 1
    out.extend(names[pos:])
    return tuple(out)


class Size(int):
    """A tensor's element count (numpy's ``size``: ``x.size == 6``) that is also callable like
    torch's ``size()``: ``x.size()`` is the shape, ``x.size(dim)`` the length of one dim (by
    position or name). Both conventions give the right number, so code ported from numpy
    or from torch/CrypTen reads the same value."""

    _shape: tuple[int, ...]
    _names: Names

    def __new__(cls, shape: tuple[int, ...], names: Names) -> Size:
        count = 1
        for length in shape:
            count *= int(length)
        obj = super().__new__(cls, count)
        obj._shape, obj._names = tuple(shape), names
        return obj

    def __call__(self, dim: Any = None) -> Any:
        if dim is None:
            return self._shape
        return self._shape[lookup(self._names, dim, len(self._shape))]
