"""Optimizers and LR schedules: float64 references (torch's documented formulas), MPC
trajectories for 2 and 3 parties, bad input, state_dict round trip through checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import optim
from crypten_lite.autograd import Parameter, Variable
from crypten_lite.optim import lr_scheduler
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]
STEPS = 5


def _grads(shape, steps=STEPS, seed=0, scale=0.5):
    """Random signs, magnitudes in [0.05, 1] * scale (inside Adam's documented MPC range)."""
    rng = np.random.default_rng(seed)
    return [
        scale * rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)
        for _ in range(steps)
    ]


def _ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p = p.copy()
    buf = None
    out = []
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p.copy())
    return out


def _ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - betas[0] ** t)
        v_hat = v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p.copy())
    return out


def _run_numpy(make, p0, grads):
    p = Parameter(p0.copy())
    opt = make([p])
    out = []
    for g in grads:
        opt.zero_grad()
        assert p.grad is None
        p.grad = g.copy()
        opt.step()
        out.append(np.asarray(p.data).copy())
    return p, opt, out


CASES = [
    ("sgd", lambda ps: optim.SGD(ps, lr=0.1), dict(lr=0.1)),
    ("sgd_mom", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1),
     dict(lr=0.1, momentum=0.9, dampening=0.1)),
    ("sgd_nesterov_wd", lambda ps: optim.SGD(ps, 0.05, 0.9, 0, 0.01, True),
     dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
]


@pytest.mark.parametrize(("name", "make", "kw"), CASES, ids=[c[0] for c in CASES])
def test_sgd_numpy_trajectory(name, make, kw):
    p0 = np.random.default_rng(1).normal(size=(3, 4))
    grads = _grads((3, 4))
    _, _, got = _run_numpy(make, p0, grads)
    for a, b in zip(got, _ref_sgd(p0, grads, **kw), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_adamw_numpy_trajectory(decoupled):
    p0 = np.random.default_rng(2).normal(size=(5,))
    grads = _grads((5,), seed=3)
    cls = optim.AdamW if decoupled else optim.Adam
    _, opt, got = _run_numpy(lambda ps: cls(ps, lr=0.01, weight_decay=0.1), p0, grads)
    want = _ref_adam(p0, grads, 0.01, weight_decay=0.1, decoupled=decoupled)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert opt.state[0]["step"] == STEPS


def test_param_groups_and_skipping():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    b.grad = np.ones(3)
    opt.step()  # a has no grad: skipped
    np.testing.assert_array_equal(a.data, np.ones(2))
    np.testing.assert_array_equal(b.data, np.zeros(3))
    opt.zero_grad()
    assert b.grad is None


def test_golden_against_torch():
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(4).normal(size=(4,))
    grads = _grads((4,), seed=5)
    pairs = [
        (lambda ps: optim.SGD(ps, 0.1, 0.9, 0, 0.01, True),
         lambda ps: torch.optim.SGD(ps, 0.1, 0.9, 0, 0.01, True)),
        (lambda ps: optim.Adam(ps, 0.01, weight_decay=0.1),
         lambda ps: torch.optim.Adam(ps, 0.01, weight_decay=0.1)),
        (lambda ps: optim.AdamW(ps, 0.01), lambda ps: torch.optim.AdamW(ps, 0.01)),
    ]
    for ours, theirs in pairs:
        _, _, got = _run_numpy(ours, p0, grads)
        tp = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
        topt = theirs([tp])
        for g, mine in zip(grads, got, strict=True):
            tp.grad = torch.tensor(g)
            topt.step()
            np.testing.assert_allclose(mine, tp.detach().numpy(), rtol=1e-10)


# -- MPC ----------------------------------------------------------------------------------
MPC_CASES = [
    ("sgd_momentum", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd_nesterov", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
    ("adam", lambda ps: optim.Adam(ps, lr=0.01)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize(("name", "make"), MPC_CASES, ids=[c[0] for c in MPC_CASES])
def test_mpc_trajectory_matches_numpy(world, name, make):
    rng = np.random.default_rng(6)
    p0 = [rng.normal(size=(3, 4)), rng.normal(size=(5,))]
    grads = [_grads(p.shape, seed=7 + i) for i, p in enumerate(p0)]
    want_params = [Parameter(p.copy()) for p in p0]
    ref = make(want_params)
    for t in range(STEPS):
        for p, g in zip(want_params, grads, strict=True):
            p.grad = g[t].copy()
        ref.step()

    def party(session):
        params = [Parameter(cl.cryptensor(p, src=0)) for p in p0]
        opt = make(params)
        for t in range(STEPS):
            for p, g in zip(params, grads, strict=True):
                p.grad = cl.cryptensor(g[t], src=0)
            opt.step()
        assert all(isinstance(p.data, cl.MPCTensor) for p in params)
        return [p.get_plain_text() for p in params]

    got = run_parties(party, world)[0]
    for a, b in zip(got, want_params, strict=True):
        np.testing.assert_allclose(a, b.data, atol=1e-3)


def test_mpc_public_grad_on_private_param_and_names():
    def party(session):
        x = cl.cryptensor(np.ones((2, 2)), src=0, names=("a", "b"))
        p = Parameter(x)
        opt = optim.SGD([p], lr=0.5)
        p.grad = np.ones((2, 2))
        opt.step()
        return p.data.names, p.get_plain_text()

    names, value = run_parties(party, 2)[0]
    assert names == ("a", "b")
    np.testing.assert_allclose(value, 0.5, atol=1e-4)


@pytest.mark.parametrize("world", WORLDS)
def test_state_dict_round_trip_through_checkpoint(world, tmp_path):
    path = str(tmp_path / "opt-{rank}.clck")
    p0 = np.linspace(-1, 1, 6)
    grads = _grads((6,), steps=4, seed=9)

    def party(session):
        p = Parameter(cl.cryptensor(p0, src=0))
        opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.99))
        for g in grads[:2]:
            p.grad = cl.cryptensor(g, src=0)
            opt.step()
        cl.checkpoint.save({"opt": opt.state_dict(), "p": p.data}, path)
        loaded = cl.checkpoint.load(path)
        q = Parameter(loaded["p"])
        opt2 = optim.Adam([q], lr=0.5)
        opt2.load_state_dict(loaded["opt"])
        assert opt2.param_groups[0]["lr"] == 0.01
        assert opt2.param_groups[0]["betas"] == (0.8, 0.99)
        assert opt2.state[0]["step"] == 2
        for a, g in ((p, grads[2]), (q, grads[2])):
            a.grad = cl.cryptensor(g, src=0)
        opt.step()
        opt2.step()
        return p.get_plain_text(), q.get_plain_text()

    a, b = run_parties(party, world)[0]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_state_dict_numpy_round_trip():
    p0 = np.ones(3)
    p, opt, _ = _run_numpy(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), p0, _grads((3,), 2))
    sd = opt.state_dict()
    assert set(sd["state"]) == {"0"} and sd["param_groups"][0]["params"] == [0]
    q = Parameter(np.asarray(p.data).copy())
    opt2 = optim.SGD([q], lr=1.0, momentum=0.9)
    opt2.load_state_dict(sd)
    g = np.full(3, 0.3)
    p.grad, q.grad = g, g.copy()
    opt.step()
    opt2.step()
    np.testing.assert_allclose(p.data, q.data)
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt2.load_state_dict({"state": {}, "param_groups": []})


# -- errors --------------------------------------------------------------------------------
def test_bad_parameters_name_index():
    good = Parameter(np.ones(2))
    with pytest.raises(TypeError, match=r"parameter 1 .*ndarray.*requires_grad_\(\)"):
        optim.SGD([good, np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"parameter 0 .*does not require grad"):
        optim.SGD([Variable(np.ones(2))], lr=0.1)
    nonleaf = good * 2.0
    with pytest.raises(TypeError, match=r"parameter 0 .*not a leaf"):
        optim.Adam([nonleaf])
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(good, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([good, good], lr=0.1)


def test_mpctensor_parameter_rejected():
    def party(session):
        with pytest.raises(TypeError, match="parameter 0 is a MPCTensor"):
            optim.SGD([cl.cryptensor(np.ones(2), src=0)], lr=0.1)

    run_parties(party, 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ps: optim.SGD(ps, lr=-1.0), "Invalid learning rate"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "Invalid momentum"),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
        (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "weight_decay"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.9)), "beta parameter at index 0"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta parameter at index 1"),
        (lambda ps: optim.Adam(ps, eps=0.0), "epsilon"),
        (lambda ps: optim.AdamW(ps, lr=-0.1), "Invalid learning rate"),
        (lambda ps: optim.Adam(ps, v_scale=10.0), "power of 4"),
    ],
)
def test_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([Parameter(np.ones(2))])


def test_module_parameters_after_requires_grad():
    model = cl.nn.Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="requires_grad_"):
        optim.SGD(model.parameters(), lr=0.1)
    model.requires_grad_()
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2


# -- schedules -----------------------------------------------------------------------------
def test_step_lr_sequence():
    opt = optim.SGD([Parameter(np.ones(1))], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    seen = []
    for _ in range(10):
        seen.append(sched.get_last_lr()[0])
        sched.step()
    want = [0.5 ** (e // 3) for e in range(10)]
    np.testing.assert_allclose(seen, want)
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]


def test_cosine_lr_sequence():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    seen = []
    for _ in range(25):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    want = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(25)]
    np.testing.assert_allclose(seen, want, rtol=1e-10, atol=1e-12)


def test_schedules_against_torch():
    torch = pytest.importorskip("torch")
    for make, tmake in [
        (lambda o: lr_scheduler.StepLR(o, 2, 0.3),
         lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.3)),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, 7, 0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.01)),
    ]:
        opt = optim.SGD([Parameter(np.ones(1))], lr=0.2)
        topt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.2)
        s, ts = make(opt), tmake(topt)
        for _ in range(20):
            np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
            topt.step()
            s.step()
            ts.step()


def test_scheduler_errors():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, 0)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.StepLR(object(), 2)


def test_lambda_lr_follows_its_function():
    p = Parameter(np.zeros(2))
    opt = cl.optim.SGD([p], lr=0.5)
    sched = cl.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 4))
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert "lr_lambda" not in sched.state_dict()
    with pytest.raises(TypeError, match="callable"):
        cl.optim.lr_scheduler.LambdaLR(opt, 3)
