"""Straight-line word programs: many elementwise uint64 operations fused into one pass.

A protocol level that would otherwise issue hundreds of numpy calls over ``n``-element
arrays (each one allocating and streaming ``8 n`` bytes) is recorded once as a program of
register operations (:class:`ProgramBuilder`), then executed element-block by element-block
(:func:`run_program`): the compiled backend keeps a block of 512 elements of every live
register in cache and releases the GIL; the numpy backend runs the same instructions on whole
arrays. Both compute the same words with the same operations, so their results are
bit-identical. Arithmetic is mod 2^64; shifts are logical.

Registers are virtual while building (SSA); :meth:`ProgramBuilder.build` maps them to as few
physical slots as liveness allows. Inputs are arrays of ``n`` elements or single words
(broadcast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring.backend import active_kernels

__all__ = ["Compiled", "Op", "Program", "ProgramBuilder", "Reg", "Sym", "run_program"]

U64 = npt.NDArray[np.uint64]
Reg = int


class Op(IntEnum):
    """Instruction codes (the compiled kernel switches on these values)."""

    AND = 0
    XOR = 1
    ADD = 2
    SUB = 3
    MUL = 4
    SHR = 5  # by an immediate in [0, 63]
    SHL = 6  # by an immediate in [0, 63]
    NOT = 7
    OR = 8


_IMMEDIATE = (Op.SHR, Op.SHL)


@dataclass(frozen=True)
class Program:
    """A built program: ``code`` rows are ``(op, dst, a, b)`` over physical slots (``b`` is
    the shift count for SHR/SHL, unused for NOT); slots ``0 .. n_inputs - 1`` hold the
    inputs; ``outputs`` are the slots read at the end."""

    code: npt.NDArray[np.int64]
    n_slots: int
    n_inputs: int
    outputs: npt.NDArray[np.int64]


class ProgramBuilder:
    """Records a program; every method returns the virtual register of its result."""

    def __init__(self) -> None:
        self._inputs: list[U64 | object] = []
        self._input_of: dict[object, Reg] = {}
        self._keep: list[object] = []
        self._code: list[tuple[int, Reg, Reg, int]] = []
        self._next = 0
        self._memo: dict[tuple[int, int, int], Reg] = {}

    @property
    def inputs(self) -> list[U64]:
        """The input arrays in slot order (pass them to :func:`run_program`); only for a
        program without placeholders."""
        if not all(isinstance(a, np.ndarray) for a in self._inputs):
            raise RingShapeError("the program has placeholders: resolve them by key")
        return [np.asarray(a) for a in self._inputs]

    @property
    def input_keys(self) -> list[U64 | object]:
        """Per input slot: the constant array, or the key of a placeholder."""
        return list(self._inputs)

    def input(self, array: U64 | np.uint64 | int) -> Reg:
        """Register holding ``array`` (one register per distinct array object; single
        words are shared by value)."""
        value = np.asarray(array, dtype=np.uint64)
        if value.size == 1:
            key: object = ("word", int(value.reshape(-1)[0]))
        else:
            key = ("array", id(array))
        if key in self._input_of:
            return self._input_of[key]
        self._keep.append(array)  # ids stay unique while the builder lives
        return self._add_input(key, value)

    def placeholder(self, key: object) -> Reg:
        """Register of an input supplied at run time under ``key`` (hashable, not an
        array)."""
        if isinstance(key, np.ndarray):
            raise RingShapeError("a placeholder key must not be an array")
        slot_key = ("placeholder", key)
        if slot_key in self._input_of:
            return self._input_of[slot_key]
        return self._add_input(slot_key, key)

    def _add_input(self, key: object, value: U64 | object) -> Reg:
        reg = self._fresh()
        self._inputs.append(value)
        self._input_of[key] = reg
        return reg

    def _fresh(self) -> Reg:
        reg = self._next
        self._next += 1
        return reg

    def emit(self, op: Op, a: Reg, b: int = 0) -> Reg:
        """``op(a, b)``; identical instructions are emitted once."""
        if op in _IMMEDIATE and not 0 <= b < 64:
            raise RingShapeError(f"shift count {b} outside [0, 63]")
        key = (int(op), a, b)
        if key not in self._memo:
            dst = self._fresh()
            self._code.append((int(op), dst, a, b))
            self._memo[key] = dst
        return self._memo[key]

    def and_(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.AND, *sorted((a, b)))

    def xor(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.XOR, *sorted((a, b)))

    def add(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.ADD, *sorted((a, b)))

    def sub(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.SUB, a, b)

    def mul(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.MUL, *sorted((a, b)))

    def or_(self, a: Reg, b: Reg) -> Reg:
        return self.emit(Op.OR, *sorted((a, b)))

    def not_(self, a: Reg) -> Reg:
        return self.emit(Op.NOT, a)

    def shift(self, a: Reg, pos: int) -> Reg:
        """``a >> pos`` for ``pos > 0``, ``a << -pos`` for ``pos < 0``, ``a`` for 0."""
        if pos == 0:
            return a
        return self.emit(Op.SHR, a, pos) if pos > 0 else self.emit(Op.SHL, a, -pos)

    def build(self, outputs: list[Reg]) -> Program:
        """Map virtual registers to physical slots: inputs first, then a slot per live
        value, reusing a slot once its value's last reader has run."""
        n_inputs = len(self._inputs)
        last_use: dict[Reg, int] = {}
        for i, (op, _, a, b) in enumerate(self._code):
            last_use[a] = i
            if op not in _IMMEDIATE and op != Op.NOT:
                last_use[b] = i
        pinned = set(outputs)
        slot: dict[Reg, int] = {reg: k for k, reg in enumerate(self._input_of.values())}
        free: list[int] = []
        n_slots = n_inputs
        code = np.zeros((len(self._code), 4), dtype=np.int64)
        for i, (op, dst, a, b) in enumerate(self._code):
            binary_operand = op not in _IMMEDIATE and op != Op.NOT
            code[i] = (op, 0, slot[a], slot[b] if binary_operand else b)
            for reg in {a, b} if binary_operand else {a}:
                if last_use.get(reg) == i and reg not in pinned and slot[reg] >= n_inputs:
                    free.append(slot[reg])
            if free:
                slot[dst] = free.pop()
            else:
                slot[dst] = n_slots
                n_slots += 1
            code[i, 1] = slot[dst]
        outs = np.array([slot[r] for r in outputs], dtype=np.int64)
        return Program(code, max(n_slots, 1), n_inputs, outs)


@dataclass(frozen=True)
class Compiled:
    """A program whose inputs are constants or placeholders resolved at each run."""

    program: Program
    slots: tuple[U64 | object, ...]  # per input slot: a constant array or a placeholder key

    @classmethod
    def of(cls, builder: ProgramBuilder, outputs: list[Reg]) -> Compiled:
        return cls(builder.build(outputs), tuple(builder.input_keys))

    def run(self, resolve: Callable[[object], U64], n: int) -> U64:
        """Outputs ``(len(outputs), n)``, placeholders read through ``resolve(key)``."""
        inputs = [s if isinstance(s, np.ndarray) else resolve(s) for s in self.slots]
        return run_program(self.program, inputs, n)


def run_program(program: Program, inputs: list[U64], n: int) -> U64:
    """Run ``program`` over ``n`` elements; returns the outputs as a ``(len(outputs), n)``
    array. Every input holds ``n`` words or a single word."""
    if len(inputs) != program.n_inputs:
        raise RingShapeError(f"program takes {program.n_inputs} inputs, got {len(inputs)}")
    flat = []
    for k, array in enumerate(inputs):
        if not isinstance(array, np.ndarray | np.generic) or array.dtype != np.uint64:
            raise RingDTypeError(f"program input {k} must be uint64")
        row = np.ascontiguousarray(array).reshape(-1)
        if row.size not in (1, n):
            raise RingShapeError(f"program input {k} has {row.size} elements, expected {n} or 1")
        flat.append(row)
    return active_kernels().run_program(program.code, program.n_slots, flat, program.outputs, n)


class Sym:
    """A word of a program being built, with numpy's operators (``& | ^ ~ >> << + - *``
    and lane indexing as a no-op), so array code can be run once on symbols to record
    itself. Operands that are not symbols are constants of one word."""

    __array_ufunc__ = None  # numpy defers to the reflected operators below
    __slots__ = ("b", "reg")

    def __init__(self, builder: ProgramBuilder, reg: Reg) -> None:
        self.b = builder
        self.reg = reg

    def _reg(self, other: object) -> Reg:
        if isinstance(other, Sym):
            return other.reg
        value = np.asarray(other)
        if value.size != 1:
            raise RingShapeError("a constant operand of a symbolic word must be one word")
        return self.b.input(value.astype(np.uint64).reshape(()))

    def _make(self, reg: Reg) -> Sym:
        return Sym(self.b, reg)

    def __and__(self, other: object) -> Sym:
        return self._make(self.b.and_(self.reg, self._reg(other)))

    __rand__ = __and__

    def __or__(self, other: object) -> Sym:
        return self._make(self.b.or_(self.reg, self._reg(other)))

    __ror__ = __or__

    def __xor__(self, other: object) -> Sym:
        return self._make(self.b.xor(self.reg, self._reg(other)))

    __rxor__ = __xor__

    def __add__(self, other: object) -> Sym:
        return self._make(self.b.add(self.reg, self._reg(other)))

    __radd__ = __add__

    def __mul__(self, other: object) -> Sym:
        return self._make(self.b.mul(self.reg, self._reg(other)))

    __rmul__ = __mul__

    def __sub__(self, other: object) -> Sym:
        return self._make(self.b.sub(self.reg, self._reg(other)))

    def __rsub__(self, other: object) -> Sym:
        return self._make(self.b.sub(self._reg(other), self.reg))

    def __invert__(self) -> Sym:
        return self._make(self.b.not_(self.reg))

    def __rshift__(self, count: object) -> Sym:
        return self._make(self.b.shift(self.reg, int(np.asarray(count))))

    def __lshift__(self, count: object) -> Sym:
        return self._make(self.b.shift(self.reg, -int(np.asarray(count))))

    def __getitem__(self, _: object) -> Sym:
        return self
