"""``Module`` and ``Sequential``: torch-style containers whose parameters are numpy arrays
(plaintext) or MPCTensors (after :meth:`Module.encrypt`).

Parameters and buffers keep torch's names and layouts, so ``state_dict()`` keys read
``"0.weight"``, ``"1.running_mean"`` and a torch ``state_dict`` loads directly (torch tensors
are converted with ``.detach().cpu().numpy()``). Integer buffers (``num_batches_tracked``) are
bookkeeping and stay public when the module is encrypted.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from crypten_lite.autograd import Parameter, Variable
from crypten_lite.errors import ShareError
from crypten_lite.session import Session, current_session
from crypten_lite.tensor import MPCTensor, cryptensor

__all__ = ["Module", "ModuleDict", "ModuleList", "Sequential"]

_INTERNAL = frozenset({"_parameters", "_buffers", "_modules", "training", "_encrypted"})


def _is_float(value: Any) -> bool:
    return isinstance(value, MPCTensor) or (
        isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)
    )


def _to_numpy(value: Any, key: str) -> np.ndarray[Any, Any]:
    if isinstance(value, MPCTensor):
        raise TypeError(f"{key}: got an MPCTensor; load plaintext values into a plaintext module")
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.array(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{key}: cannot convert {type(value).__name__} to an array") from err


Layout = list[tuple[str, tuple[int, ...]]]


def _layout_difference(source: Layout, other: Layout, src: int, rank: int) -> str | None:
    """The first difference between two parameter layouts, or None when they are equal."""
    if other == source:
        return None
    theirs = dict(other)
    for key, shape in source:
        if key not in theirs:
            return f"party {rank} has no parameter {key!r}"
        if theirs[key] != shape:
            return f"{key!r} has shape {shape} at party {src} but {theirs[key]} at party {rank}"
    ours = dict(source)
    extra = [key for key, _ in other if key not in ours]
    if extra:
        return f"party {rank} has a parameter {extra[0]!r} that party {src} lacks"
    return f"party {rank} lists its parameters in another order than party {src}"


class Module:
    """Base class of layers. Subclasses register tensors with :meth:`register_parameter` /
    :meth:`register_buffer`, sub-layers by attribute assignment, and define ``forward``."""

    training: bool
    _encrypted: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_encrypted", False)

    # -- registration and attribute access ---------------------------------------------------
    def _tables(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Module]]:
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError as err:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() first"
            ) from err

    def register_parameter(self, name: str, value: Any) -> None:
        """A learnable tensor (numpy array, MPCTensor or None for an absent bias)."""
        self._tables()[0][name] = value

    def register_buffer(self, name: str, value: Any) -> None:
        """A state tensor that is not learned (e.g. BatchNorm running statistics)."""
        self._tables()[1][name] = value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _INTERNAL:
            object.__setattr__(self, name, value)
            return
        params, buffers, modules = self._tables()
        if isinstance(value, Module):
            modules[name] = value
        elif name in params:
            params[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in modules:
            raise TypeError(f"cannot assign {type(value).__name__} to sub-module {name!r}")
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- traversal ---------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._tables()[2].items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _named(self, table: int, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for mod_name, module in self.named_modules(prefix):
            for name, value in module._tables()[table].items():
                if value is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(name, tensor)`` for every parameter, torch's dotted names (``"0.weight"``)."""
        return self._named(0, prefix)

    def parameters(self) -> Iterator[Any]:
        for _, value in self.named_parameters():
            yield value

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        return self._named(1, prefix)

    def buffers(self) -> Iterator[Any]:
        for _, value in self.named_buffers():
            yield value

    # -- modes -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every sub-module; returns the module."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode=...) expects a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Any]:
        """Parameters then buffers of each module in order, torch's key names; numpy
        values are copies, MPCTensors (encrypted module) are returned as they are."""
        out: OrderedDict[str, Any] = OrderedDict()
        for mod_name, module in self.named_modules():
            params, buffers, _ = module._tables()
            for name, value in (*params.items(), *buffers.items()):
                if value is not None:
                    key = f"{mod_name}.{name}" if mod_name else name
                    if isinstance(value, Variable):
                        value = value.data
                    out[key] = value.copy() if isinstance(value, np.ndarray) else value
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Module:
        """Copy values into this module: numpy arrays or torch tensors into a plaintext
        module, or MPCTensors (shares, e.g. from ``cl.load``) into a plaintext or encrypted
        one, which then holds those shares and is encrypted. Shapes must match; with
        ``strict`` the keys must match exactly. A Parameter keeps its identity (optimizers
        holding it see the new value). Returns the module."""
        shares = any(isinstance(v, MPCTensor) for v in state_dict.values())
        if self.encrypted and not shares:
            raise RuntimeError(
                "load_state_dict into an encrypted module needs shares (MPCTensors); "
                "call decrypt() first to load plaintext values"
            )
        slots: dict[str, tuple[dict[str, Any], str]] = {}
        for mod_name, module in self.named_modules():
            params, buffers, _ = module._tables()
            for table in (params, buffers):
                for name, value in table.items():
                    if value is not None:
                        slots[f"{mod_name}.{name}" if mod_name else name] = (table, name)
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        updates: list[tuple[dict[str, Any], str, np.ndarray[Any, Any]]] = []
        for key, (table, name) in slots.items():
            if key not in state_dict:
                continue
            given = state_dict[key]
            old = table[name]
            new: Any = given if isinstance(given, MPCTensor) else _to_numpy(given, key)
            if tuple(new.shape) != tuple(old.shape):
                raise ValueError(
                    f"load_state_dict: {key} has shape {tuple(old.shape)} in the model but "
                    f"{tuple(new.shape)} in the state dict"
                )
            reference = old.data if isinstance(old, Variable) else old
            if isinstance(new, np.ndarray) and isinstance(reference, np.ndarray):
                new = new.astype(reference.dtype)
            updates.append((table, name, new))
        for table, name, new in updates:  # all checked before anything changes
            if isinstance(table[name], Variable):
                table[name].data = new
            else:
                table[name] = new
        if shares:
            for module in self.modules():
                module._encrypted = True
        return self

    # -- encryption --------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return self._encrypted

    def encrypt(self, src: int = 0, *, session: Session | None = None) -> Module:
        """Secret-share every floating-point parameter and buffer from party ``src``; every
        party calls this on a module of the same architecture (only ``src``'s values matter:
        the others contribute ``None`` and learn shapes from ``src``). Returns the module."""
        if self.encrypted:
            raise RuntimeError(f"{type(self).__name__} is already encrypted")
        session = session or current_session()
        if not isinstance(session, Session):
            raise ShareError("encrypt() needs a crypten_lite Session")
        self._check_same_layout(session, src)
        for module in self.modules():
            params, buffers, _ = module._tables()
            for table in (params, buffers):
                for name, value in table.items():
                    plain = value.data if isinstance(value, Variable) else value
                    if isinstance(plain, np.ndarray) and np.issubdtype(plain.dtype, np.floating):
                        mine = plain if session.rank == src else None
                        shared = cryptensor(mine, src=src, session=session)
                        if isinstance(value, Variable):
                            value.data, value.grad = shared, None
                        else:
                            table[name] = shared
            module._encrypted = True
        return self

    def _float_layout(self) -> Layout:
        """``(state_dict key, shape)`` of every floating-point parameter and buffer."""
        layout = []
        for key, value in self.state_dict().items():
            plain = value.data if isinstance(value, Variable) else value
            if isinstance(plain, np.ndarray) and np.issubdtype(plain.dtype, np.floating):
                layout.append((key, tuple(int(n) for n in plain.shape)))
        return layout

    def _check_same_layout(self, session: Session, src: int) -> None:
        """One round: every party's parameter names and shapes against the source's; a
        mismatch raises on every party, naming the first difference (before any value is
        shared, so tensors are never paired wrongly)."""
        mine = json.dumps(self._float_layout()).encode()
        gathered = session.comm.all_gather(np.frombuffer(mine, dtype=np.uint8).astype(np.int64))
        layouts = []
        for rank, message in enumerate(gathered):
            try:
                raw = bytes(np.asarray(message, dtype=np.int64).astype(np.uint8))
                layouts.append([(str(k), tuple(v)) for k, v in json.loads(raw)])
            except (ValueError, TypeError) as err:
                raise ShareError(f"encrypt: party {rank} sent a malformed model layout") from err
        for rank, layout in enumerate(layouts):
            problem = _layout_difference(layouts[src], layout, src, rank)
            if problem is not None:
                raise ShareError(
                    f"encrypt(src={src}): the parties' models differ: {problem} (every party "
                    "must build the same architecture)"
                )

    def decrypt(self, dst: int | None = None) -> Module:
        """Reveal every encrypted parameter and buffer and put the plaintext numpy values back
        (1 round each). ``dst=None``: to every party. ``dst=k``: to party ``k`` only; the other
        parties' modules keep their shares (still encrypted, revealing nothing). Every party
        must call it. Returns the module."""
        session = self._session_of_shares()
        if dst is not None and (
            session is None or isinstance(dst, bool) or not 0 <= dst < session.world_size
        ):
            raise ValueError(f"decrypt: dst={dst!r} is not a party rank")
        receives = dst is None or (session is not None and session.rank == dst)
        for module in self.modules():
            params, buffers, _ = module._tables()
            for table in (params, buffers):
                for name, value in table.items():
                    shares = value.data if isinstance(value, Variable) else value
                    if not isinstance(shares, MPCTensor):
                        continue
                    plain = shares.get_plain_text(dst)
                    if not receives:
                        continue
                    if isinstance(value, Variable):
                        value.data, value.grad = np.asarray(plain), None
                    else:
                        table[name] = plain
            if receives:
                module._encrypted = False
        return self

    def _session_of_shares(self) -> Session | None:
        for value in (*self.parameters(), *self.buffers()):
            shares = value.data if isinstance(value, Variable) else value
            if isinstance(shares, MPCTensor):
                return shares.session
        return None

    # -- training ----------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Make every floating-point parameter an autograd :class:`Parameter` (a leaf whose
        ``.grad`` backward fills and optimizers update in place) that requires a gradient, or
        freeze them (``False``). Call it before building an optimizer; plain inference does
        not need it. Returns the module."""
        if not isinstance(requires_grad, bool):
            raise TypeError(f"requires_grad_ expects a bool, got {type(requires_grad).__name__}")
        for module in self.modules():
            params = module._tables()[0]
            for name, value in params.items():
                if isinstance(value, Variable):
                    value.requires_grad = requires_grad
                elif value is not None and _is_float(value):
                    params[name] = Parameter(value, requires_grad=requires_grad)
        return self

    def zero_grad(self) -> None:
        """Drop the gradients of every parameter (before the next backward)."""
        for value in self.parameters():
            if isinstance(value, Variable):
                value.grad = None

    # -- calling -----------------------------------------------------------------------------
    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def extra_repr(self) -> str:
        return ""

    def describe(self) -> str:
        """One line: ``Linear(in_features=20, out_features=32)``; used in error messages."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return self.describe()
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


class Sequential(Module):
    """Modules applied in order; children are named ``"0"``, ``"1"``, ... (or by the keys of
    an ``OrderedDict`` given as the only argument)."""

    def __init__(self, *layers: Module | Mapping[str, Module]) -> None:
        super().__init__()
        items: list[tuple[str, Any]]
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            items = list(layers[0].items())
        else:
            items = [(str(i), layer) for i, layer in enumerate(layers)]
        for name, layer in items:
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: item {name} is a {type(layer).__name__}, not a Module"
                )
            self._tables()[2][name] = layer

    def __len__(self) -> int:
        return len(self._tables()[2])

    def __getitem__(self, index: int) -> Module:
        layers = list(self._tables()[2].values())
        return layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._tables()[2].values()))

    def forward(self, *args: Any) -> Any:
        if len(args) != 1:
            raise TypeError(f"Sequential takes one input, got {len(args)}")
        x = args[0]
        for layer in self:
            x = layer(x)
        return x


def _check_module(owner: str, name: str, value: Any) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner}: item {name} is a {type(value).__name__}, not a Module")
    return value


class ModuleList(Module):
    """torch.nn.ModuleList: a list of registered sub-modules named ``"0"``, ``"1"``, ...
    (their parameters appear as ``"0.weight"``); no ``forward`` of its own."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _items(self) -> list[Module]:
        return list(self._tables()[2].values())

    def _reset(self, items: list[Module]) -> None:
        table = self._tables()[2]
        table.clear()
        for i, module in enumerate(items):
            table[str(i)] = module

    def _index(self, index: Any, length: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            kind = type(index).__name__
            raise TypeError(f"ModuleList indices must be ints or slices, not {kind}")
        i = int(index)
        if not -length <= i < length:
            raise IndexError(f"ModuleList index {i} out of range for length {length}")
        return i % length

    def __len__(self) -> int:
        return len(self._tables()[2])

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items())

    def __getitem__(self, index: int | slice) -> Any:
        items = self._items()
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[self._index(index, len(items))]

    def __setitem__(self, index: int, module: Module) -> None:
        items = self._items()
        i = self._index(index, len(items))
        items[i] = _check_module("ModuleList", str(i), module)
        self._reset(items)

    def __delitem__(self, index: int | slice) -> None:
        items = self._items()
        if isinstance(index, slice):
            del items[index]
        else:
            del items[self._index(index, len(items))]
        self._reset(items)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self._items(), *other])

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns the list."""
        n = len(self)
        self._tables()[2][str(n)] = _check_module("ModuleList", str(n), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if isinstance(modules, Module) and not isinstance(modules, ModuleList | Sequential):
            raise TypeError("ModuleList.extend expects an iterable of Modules, got a Module")
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before ``index`` (list semantics; later items are renamed)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"ModuleList.insert: index must be an int, got {index!r}")
        items = self._items()
        items.insert(int(index), _check_module("ModuleList", str(index), module))
        self._reset(items)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over its modules")


def _check_key(owner: str, key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{owner}: keys must be str, got {type(key).__name__}")
    if not key or "." in key:
        raise KeyError(f"{owner}: module name {key!r} must be non-empty and contain no '.'")
    if key in _INTERNAL:
        raise KeyError(f"{owner}: module name {key!r} is reserved")
    return key


class ModuleDict(Module):
    """torch.nn.ModuleDict: sub-modules registered under string keys, in insertion order
    (their parameters appear as ``"key.weight"``); no ``forward`` of its own."""

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __len__(self) -> int:
        return len(self._tables()[2])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._tables()[2]))

    def __contains__(self, key: object) -> bool:
        return key in self._tables()[2]

    def __getitem__(self, key: str) -> Module:
        table = self._tables()[2]
        if key not in table:
            raise KeyError(f"ModuleDict has no module {key!r}")
        return table[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self._tables()[2][_check_key("ModuleDict", key)] = _check_module("ModuleDict", key, module)

    def __delitem__(self, key: str) -> None:
        self.pop(key)

    def keys(self) -> list[str]:
        return list(self._tables()[2].keys())

    def values(self) -> list[Module]:
        return list(self._tables()[2].values())

    def items(self) -> list[tuple[str, Module]]:
        return list(self._tables()[2].items())

    def pop(self, key: str) -> Module:
        module = self[key]
        del self._tables()[2][key]
        return module

    def clear(self) -> None:
        self._tables()[2].clear()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) modules from a mapping or from ``(key, module)`` pairs."""
        if isinstance(modules, Module) and not isinstance(modules, ModuleDict):
            raise TypeError("ModuleDict.update expects a mapping or (key, module) pairs")
        pairs: list[Any]
        if isinstance(modules, Mapping | ModuleDict):
            pairs = list(modules.items())
        else:
            pairs = list(modules)
        checked = []
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: expected (key, module) pairs, got {pair!r}")
            key = _check_key("ModuleDict", pair[0])
            checked.append((key, _check_module("ModuleDict", key, pair[1])))
        for key, module in checked:
            self._tables()[2][key] = module

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); index it by key")
