"""Golden tests against PyTorch's functional ops (optional: skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

torch = pytest.importorskip("torch")
F = torch.nn.functional

UNIT = 2.0**-16


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


CASES = [
    (
        "conv2d",
        lambda x, w: x.conv2d(w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
    ),
    (
        "conv_transpose2d",
        lambda x, w: x.conv_transpose2d(w, stride=2, padding=1, output_padding=1, groups=2),
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
    ),
    (
        "max_pool2d",
        lambda x, w: x.max_pool2d(3, stride=2, padding=1),
        lambda x, w: F.max_pool2d(x, 3, stride=2, padding=1),
    ),
    ("avg_pool2d", lambda x, w: x.avg_pool2d(2), lambda x, w: F.avg_pool2d(x, 2)),
    (
        "adaptive_avg_pool2d",
        lambda x, w: x.adaptive_avg_pool2d((3, 5)),
        lambda x, w: F.adaptive_avg_pool2d(x, (3, 5)),
    ),
    ("softmax", lambda x, w: x.softmax(dim=1), lambda x, w: F.softmax(x, dim=1)),
    ("log_softmax", lambda x, w: x.log_softmax(dim=-1), lambda x, w: F.log_softmax(x, dim=-1)),
    ("gelu", lambda x, w: x.gelu(), lambda x, w: F.gelu(x)),
    ("sigmoid", lambda x, w: x.sigmoid(), lambda x, w: torch.sigmoid(x)),
    ("tanh", lambda x, w: x.tanh(), lambda x, w: torch.tanh(x)),
    ("var", lambda x, w: x.var(dim=(2, 3)), lambda x, w: x.var(dim=(2, 3))),
    (
        "pad",
        lambda x, w: x.pad((1, 2, 0, 1), value=0.5),
        lambda x, w: F.pad(x, (1, 2, 0, 1), value=0.5),
    ),
]


@pytest.mark.parametrize(("name", "secure", "golden"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("world_size", [2, 3])
def test_matches_torch(world_size, name, secure, golden):
    data = np.random.default_rng(12)
    x = data.normal(size=(2, 4, 7, 9))
    w = data.normal(size=(4, 2, 3, 3)) / 3

    def job(session):
        return secure(cl.cryptensor(x, src=0), w).get_plain_text()

    got = run_parties(job, world_size)[0]
    want = golden(_t(x), _t(w)).numpy()
    assert got.shape == want.shape, name
    tol = 5e-3 if name in ("softmax", "log_softmax", "gelu", "sigmoid", "tanh") else 200 * UNIT
    np.testing.assert_allclose(got, want, atol=tol, rtol=0, err_msg=name)
