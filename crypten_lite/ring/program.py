"""Straight-line word programs: many elementwise uint64 operations fused into one pass.

A protocol level that would otherwise issue hundreds of numpy calls over ``n``-element
arrays (each one allocating and streaming ``8 n`` bytes) is recorded once as a program of
register operations (:class:`ProgramBuilder`), then executed element-block by element-block
(:func:`run_program`): the compiled backend keeps a block of 128 elements of every live
register in cache and releases the GIL; the numpy backend runs the same instructions on whole
arrays. Both compute the same words with the same operations, so their results are
bit-identical. Arithmetic is mod 2^64; shifts are logical.

Registers are virtual while building (SSA); :meth:`ProgramBuilder.build` maps them to as few
physical slots as liveness allows. Inputs are arrays of ``n`` elements or single words
(broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring.backend import active_kernels

__all__ = ["Op", "Program", "ProgramBuilder", "Reg", "run_program"]

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
        self._inputs: list[U64] = []
        self._input_of: dict[int, Reg] = {}
        self._code: list[tuple[int, Reg, Reg, int]] = []
        self._next = 0
        self._memo: dict[tuple[int, int, int], Reg] = {}

    @property
    def inputs(self) -> list[U64]:
        """The input arrays in slot order (pass them to :func:`run_program`)."""
        return list(self._inputs)

    def input(self, array: U64 | np.uint64) -> Reg:
        """Register holding ``array`` (one register per distinct object)."""
        key = id(array)
        if key in self._input_of:
            return self._input_of[key]
        reg = self._fresh()
        self._inputs.append(np.asarray(array, dtype=np.uint64))
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
