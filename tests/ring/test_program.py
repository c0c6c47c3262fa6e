"""Word programs: both backends run the same instructions to the same words, the register
allocation keeps every live value, and bad inputs are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring import _ring_np
from crypten_lite.ring.program import Op, ProgramBuilder, run_program

MASK = (1 << 64) - 1
_PY_OPS = {
    Op.AND: lambda a, b: a & b,
    Op.XOR: lambda a, b: a ^ b,
    Op.ADD: lambda a, b: (a + b) & MASK,
    Op.SUB: lambda a, b: (a - b) & MASK,
    Op.MUL: lambda a, b: (a * b) & MASK,
    Op.OR: lambda a, b: a | b,
}


def _random_program(data, n_inputs: int, length: int):
    """A random program with a Python-int reference evaluation per element."""
    builder = ProgramBuilder()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.sampled_from([1, 5, 127, 128, 129, 300]))
    arrays = [
        rng.integers(0, 2**64, size=1 if k % 3 == 2 else n, dtype=np.uint64)
        for k in range(n_inputs)
    ]
    regs = [builder.input(a) for a in arrays]
    values = [[int(a[i % a.size]) for i in range(n)] for a in arrays]
    for _ in range(length):
        op = Op(data.draw(st.integers(0, 8)))
        i = data.draw(st.integers(0, len(regs) - 1))
        j = data.draw(st.integers(0, len(regs) - 1))
        if op in (Op.SHR, Op.SHL):
            amount = data.draw(st.integers(1, 63))
            reg = builder.shift(regs[i], amount if op == Op.SHR else -amount)
            vals = [(v >> amount) if op == Op.SHR else (v << amount) & MASK for v in values[i]]
        elif op == Op.NOT:
            reg, vals = builder.not_(regs[i]), [v ^ MASK for v in values[i]]
        else:
            reg = builder.emit(op, regs[i], regs[j])
            vals = [_PY_OPS[op](a, b) for a, b in zip(values[i], values[j], strict=True)]
        regs.append(reg)
        values.append(vals)
    picks = data.draw(st.lists(st.integers(0, len(regs) - 1), min_size=1, max_size=4))
    return builder, [regs[k] for k in picks], [values[k] for k in picks], n


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_programs_match_python_ints_on_both_backends(data):
    builder, outs, expected, n = _random_program(data, 4, data.draw(st.integers(1, 40)))
    program = builder.build(outs)
    want = np.array(expected, dtype=np.uint64).reshape(len(outs), n)
    inputs = [np.ascontiguousarray(a).reshape(-1) for a in builder.inputs]
    got_np = _ring_np.run_program(program.code, program.n_slots, inputs, program.outputs, n)
    np.testing.assert_array_equal(got_np, want)
    cy = pytest.importorskip("crypten_lite.ring._ring_cy", reason="compiled backend not built")
    got_cy = cy.run_program(program.code, program.n_slots, inputs, program.outputs, n)
    np.testing.assert_array_equal(got_cy, want)


def test_register_reuse_keeps_live_values():
    builder = ProgramBuilder()
    x = np.arange(1, 300, dtype=np.uint64)
    acc = builder.input(x)
    kept = []
    for k in range(20):
        acc = builder.mul(acc, builder.input(np.array(k + 2, dtype=np.uint64)))
        if k % 5 == 0:
            kept.append(acc)
    program = builder.build([acc, *kept])
    assert program.n_slots < 21 + 20  # reused, not one per value
    out = run_program(program, builder.inputs, x.size)
    product = np.ones_like(x)
    expect = []
    for k in range(20):
        product = product * np.uint64(k + 2)
        if k % 5 == 0:
            expect.append(x * product)
    np.testing.assert_array_equal(out[0], x * product)
    for row, want in zip(out[1:], expect, strict=True):
        np.testing.assert_array_equal(row, want)


def test_identical_instructions_are_emitted_once():
    builder = ProgramBuilder()
    a, b = builder.input(np.zeros(3, np.uint64)), builder.input(np.ones(3, np.uint64))
    assert builder.and_(a, b) == builder.and_(b, a)
    assert builder.shift(a, 0) == a


def test_bad_inputs_are_refused_by_name():
    builder = ProgramBuilder()
    reg = builder.input(np.zeros(4, np.uint64))
    program = builder.build([builder.not_(reg)])
    with pytest.raises(RingShapeError, match="input 0 has 3 elements"):
        run_program(program, [np.zeros(3, np.uint64)], 4)
    with pytest.raises(RingDTypeError, match="input 0 must be uint64"):
        run_program(program, [np.zeros(4, np.int64)], 4)
    with pytest.raises(RingShapeError, match="takes 1 inputs"):
        run_program(program, [], 4)
    with pytest.raises(RingShapeError, match="shift count"):
        builder.emit(Op.SHR, reg, 64)
