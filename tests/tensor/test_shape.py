"""Shape operations follow numpy/torch semantics on the revealed values, at no cost."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

A = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 11.5

CASES = [
    ("reshape", lambda x: x.reshape(4, 6), lambda a: a.reshape(4, 6)),
    ("view", lambda x: x.view(-1), lambda a: a.reshape(-1)),
    ("flatten", lambda x: x.flatten(1), lambda a: a.reshape(2, 12)),
    ("transpose", lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("permute", lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("unsqueeze", lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
    ("squeeze", lambda x: x[:, :1].squeeze(1), lambda a: a[:, 0]),
    ("squeeze_noop", lambda x: x.squeeze(0), lambda a: a),
    (
        "expand",
        lambda x: x[:, :1].expand(-1, 5, -1),
        lambda a: np.broadcast_to(a[:, :1], (2, 5, 4)),
    ),
    ("expand_new", lambda x: x.expand(3, 2, 3, 4), lambda a: np.broadcast_to(a, (3, 2, 3, 4))),
    ("repeat", lambda x: x.repeat(1, 2, 1, 3), lambda a: np.tile(a, (1, 2, 1, 3))),
    ("index", lambda x: x[1, ::2, [0, 3]], lambda a: a[1, ::2, [0, 3]]),
    ("flip", lambda x: x.flip(-1), lambda a: a[..., ::-1]),
    ("pad", lambda x: x.pad((1, 2)), lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2)))),
    (
        "pad_value",
        lambda x: x.pad((0, 1, 2, 0), value=-2.5),
        lambda a: np.pad(a, ((0, 0), (2, 0), (0, 1)), constant_values=-2.5),
    ),
    ("cat", lambda x: cl.cat([x, x[:, :2]], dim=1), lambda a: np.concatenate([a, a[:, :2]], 1)),
    ("stack", lambda x: cl.stack([x, -x], dim=-1), lambda a: np.stack([a, -a], -1)),
    ("t", lambda x: x[0].t(), lambda a: a[0].T),
]


@pytest.mark.parametrize("world_size", [2, 3])
def test_shape_ops_are_local_and_exact(world_size):
    def job(session):
        x = cl.cryptensor(A, src=0)
        session.stats.reset()
        outs = [fn(x) for _, fn, _ in CASES]
        splits = x.split(3, dim=2) + x.split([1, 2], dim=1) + x.chunk(2, dim=0)
        cost = session.stats.snapshot()
        return [t.get_plain_text() for t in outs + splits], cost

    values, cost = run_parties(job, world_size)[0]
    assert cost.rounds == 0 and cost.bytes_sent == 0
    for (name, _, ref), got in zip(CASES, values, strict=False):
        np.testing.assert_array_equal(got, ref(A), err_msg=name)
    want_splits = [A[:, :, :3], A[:, :, 3:], A[:, :1], A[:, 1:], A[:1], A[1:]]
    for got, want in zip(values[len(CASES) :], want_splits, strict=True):
        np.testing.assert_array_equal(got, want)


def test_shape_errors_use_torch_wording():
    def job(session):
        x = cl.cryptensor(A, src=0)
        with pytest.raises(RuntimeError, match="is invalid for input of size 24"):
            x.reshape(5, 5)
        with pytest.raises(IndexError, match=r"out of range"):
            x.transpose(0, 3)
        with pytest.raises(RuntimeError, match="split_sizes to sum exactly"):
            x.split([1, 1], dim=1)
        with pytest.raises(RuntimeError, match="not a permutation"):
            x.permute(0, 0, 1)
        with pytest.raises(RuntimeError, match="expand"):
            x.expand(2, 3)
        with pytest.raises(TypeError, match="len"):
            len(x.sum())
        return True

    assert run_parties(job, 2) == [True, True]
