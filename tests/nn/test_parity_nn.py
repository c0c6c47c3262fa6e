"""CrypTen/torch parity layers: containers, ReLU6/Hardtanh, GroupNorm, AdaptiveMaxPool2d,
Dropout2d, ConstantPad1d/2d/3d and nn.init, against numpy float64 (and torch when present),
plaintext and encrypted (2 and 3 parties)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.autograd import Variable
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]
RNG = np.random.default_rng(0)


def _close(got, want, rtol=1e-2, atol=5e-3):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol)


def _encrypted(layer, x, world, src=0, encrypt_model=False):
    def job(session):
        mine = copy.deepcopy(layer)
        if encrypt_model:
            mine.encrypt(src=1)
        return mine(cl.cryptensor(x, src=src)).get_plain_text()

    return run_parties(job, world)


# -- numpy references --------------------------------------------------------------------
def _group_norm_ref(x, groups, weight, bias, eps):
    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    out = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)
    out = out.reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return out * weight.reshape(shape) + bias.reshape(shape)


def _adaptive_max_ref(x, oh, ow):
    h, w = x.shape[-2:]
    out = np.empty((*x.shape[:-2], oh, ow))
    for i in range(oh):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        for j in range(ow):
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            out[..., i, j] = x[..., r0:r1, c0:c1].max(axis=(-2, -1))
    return out


# -- containers --------------------------------------------------------------------------
def test_module_list_semantics():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    ml = nn.ModuleList([a, b])
    assert len(ml) == 2 and ml[0] is a and ml[-1] is b
    ml.append(c)
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2"]
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "ReLU", "Linear"]
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    ml.extend([nn.Tanh()])
    ml += [nn.Sigmoid()]
    assert len(ml) == 6 and isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert ml[0] is a
    ml[1] = nn.GELU()
    assert isinstance(ml[1], nn.GELU)
    with pytest.raises(TypeError, match="ModuleList: item"):
        ml.append(np.zeros(2))
    with pytest.raises(IndexError, match="ModuleList index 9"):
        ml[9]
    with pytest.raises(NotImplementedError, match="ModuleList"):
        ml(np.zeros(2))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4, rng=RNG) for _ in range(2)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    net = Net()
    assert list(net.state_dict()) == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    x = RNG.normal(size=(3, 4))
    want = net(x)

    def job(session):
        return copy.deepcopy(net).encrypt(src=0)(cl.cryptensor(x)).get_plain_text()

    _close(run_parties(job, 2)[0], want)


def test_module_dict_semantics():
    md = nn.ModuleDict({"fc": nn.Linear(2, 2), "act": nn.ReLU()})
    assert md.keys() == ["fc", "act"] and list(md) == ["fc", "act"]
    assert "fc" in md and len(md) == 2
    assert [k for k, _ in md.items()] == ["fc", "act"]
    assert isinstance(md.values()[1], nn.ReLU) and md.fc is md["fc"]
    md["out"] = nn.Linear(2, 1)
    md.update([("act", nn.Tanh())])
    assert isinstance(md["act"], nn.Tanh) and md.keys() == ["fc", "act", "out"]
    assert list(md.state_dict()) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert isinstance(md.pop("act"), nn.Tanh) and "act" not in md
    del md["out"]
    assert md.keys() == ["fc"]
    with pytest.raises(KeyError, match="ModuleDict has no module 'zz'"):
        md["zz"]
    with pytest.raises(KeyError, match=r"contain no '\.'"):
        md["a.b"] = nn.ReLU()
    with pytest.raises(TypeError, match="keys must be str"):
        md[1] = nn.ReLU()  # type: ignore[index]
    with pytest.raises(TypeError, match="ModuleDict: item x"):
        md["x"] = 3  # type: ignore[assignment]
    md.clear()
    assert len(md) == 0


# -- Hardtanh / ReLU6 --------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_hardtanh_relu6(world):
    x = RNG.uniform(-9, 9, size=(3, 7))
    for layer, lo, hi in ((nn.ReLU6(), 0, 6), (nn.Hardtanh(-2.0, 1.5), -2.0, 1.5)):
        want = np.clip(x, lo, hi)
        np.testing.assert_array_equal(layer(x), want)
        _close(_encrypted(layer, x, world)[0], want)
    with pytest.raises(ValueError, match="Hardtanh: max_val"):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(TypeError, match="Hardtanh: min_val"):
        nn.Hardtanh("a", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ReLU6\(\)"):
        nn.ReLU6()([1.0])


def test_hardtanh_gradient_flows():
    x = np.array([[-3.0, -0.5, 0.2, 0.9, 4.0]])
    v = Variable(x, requires_grad=True)
    out = nn.Hardtanh(-1.0, 1.0)(v)
    np.testing.assert_allclose(out.data, np.clip(x, -1, 1))
    out.sum().backward()
    np.testing.assert_allclose(v.grad, [[0, 1, 1, 1, 0]])

    def job(session):
        p = Variable(cl.cryptensor(x), requires_grad=True)
        r = nn.ReLU6()(p * 3.0)
        r.sum().backward()
        return r.get_plain_text(), p.grad.get_plain_text()

    value, grad = run_parties(job, 2)[0]
    _close(value, np.clip(3 * x, 0, 6))
    _close(grad, [[0, 0, 3, 3, 0]])


# -- GroupNorm ---------------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_group_norm(world):
    layer = nn.GroupNorm(2, 4)
    layer.weight = RNG.normal(size=4)
    layer.bias = RNG.normal(size=4)
    x = RNG.normal(size=(2, 4, 3, 3))
    want = _group_norm_ref(x, 2, layer.weight, layer.bias, 1e-5)
    np.testing.assert_allclose(layer(x), want, atol=1e-12)
    _close(_encrypted(layer, x, world)[0], want, atol=3e-2)
    _close(_encrypted(layer, x, world, encrypt_model=True)[0], want, atol=3e-2)
    x3 = RNG.normal(size=(2, 4, 5))
    plain = nn.GroupNorm(4, 4, affine=False)
    assert plain.weight is None
    np.testing.assert_allclose(plain(x3), _group_norm_ref(x3, 4, np.ones(4), np.zeros(4), 1e-5))


def test_group_norm_errors_and_grad():
    with pytest.raises(ValueError, match="GroupNorm: num_channels"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="GroupNorm: num_groups"):
        nn.GroupNorm(0, 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4.*C=4"):
        nn.GroupNorm(2, 4)(np.zeros((2, 3, 5)))
    layer = nn.GroupNorm(2, 4).requires_grad_()
    x = Variable(RNG.normal(size=(2, 4, 3)), requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.shape == (2, 4, 3) and layer.weight.grad.shape == (4,)
    np.testing.assert_allclose(layer.bias.grad, np.full(4, 6.0))


def test_group_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(2, 6, 4, 3))
    ours = nn.GroupNorm(3, 6, eps=1e-3)
    ours.weight = RNG.normal(size=6)
    ours.bias = RNG.normal(size=6)
    theirs = torch.nn.GroupNorm(3, 6, eps=1e-3).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)


# -- AdaptiveMaxPool2d -------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_adaptive_max_pool(world):
    x = RNG.normal(size=(2, 3, 7, 5))
    for size in ((3, 2), 4, (7, 5), (1, 1)):
        layer = nn.AdaptiveMaxPool2d(size)
        oh, ow = size if isinstance(size, tuple) else (size, size)
        want = _adaptive_max_ref(x, oh, ow)
        np.testing.assert_array_equal(layer(x), want)
        np.testing.assert_array_equal(layer(x[0]), want[0])
    layer = nn.AdaptiveMaxPool2d((3, None))
    assert layer(x).shape == (2, 3, 3, 5)
    _close(_encrypted(nn.AdaptiveMaxPool2d((3, 2)), x, world)[0], _adaptive_max_ref(x, 3, 2))


def test_adaptive_max_pool_grad_and_errors():
    x = RNG.normal(size=(1, 2, 4, 4))
    v = Variable(x, requires_grad=True)
    out = nn.AdaptiveMaxPool2d(2)(v)
    np.testing.assert_allclose(out.data, _adaptive_max_ref(x, 2, 2))
    out.sum().backward()
    windows = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    mask = windows == windows.max(-1, keepdims=True)
    assert v.grad.sum() == pytest.approx(8.0) and mask.sum() == 8
    with pytest.raises(ValueError, match="AdaptiveMaxPool2d: output_size"):
        nn.AdaptiveMaxPool2d(0)
    with pytest.raises(ValueError, match="return_indices"):
        nn.AdaptiveMaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match=r"AdaptiveMaxPool2d\(output_size=\(2, 2\)\)"):
        nn.AdaptiveMaxPool2d(2)(np.zeros((4, 4)))


def test_adaptive_max_pool_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(2, 3, 9, 6))
    want = torch.nn.AdaptiveMaxPool2d((4, 5))(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d((4, 5))(x), want)


# -- Dropout2d ---------------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_dropout2d(world):
    x = RNG.normal(size=(4, 6, 3, 3)) + 3.0
    layer = nn.Dropout2d(0.5, rng=np.random.default_rng(1))
    out = layer(x)
    ratio = out / x
    per_channel = ratio.reshape(4, 6, -1)
    assert np.allclose(per_channel, per_channel[..., :1])  # whole channels kept or zeroed
    assert set(np.round(np.unique(ratio), 6)) <= {0.0, 2.0}
    np.testing.assert_array_equal(layer.eval()(x), x)

    def job(session):
        mine = nn.Dropout2d(0.5)
        return mine(cl.cryptensor(x)).get_plain_text()

    results = run_parties(job, world)
    r = results[0] / x
    assert np.allclose(r.reshape(4, 6, -1), r.reshape(4, 6, -1)[..., :1], atol=1e-2)
    assert np.all(np.isclose(r, 0.0, atol=1e-2) | np.isclose(r, 2.0, atol=1e-2))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    with pytest.raises(ValueError, match="Dropout2d"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\)"):
        nn.Dropout2d()(np.zeros((2, 3)))


# -- ConstantPad -------------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_constant_pad(world):
    x1, x2, x3 = (
        RNG.normal(size=(2, 3, 4)),
        RNG.normal(size=(2, 3, 4, 5)),
        RNG.normal(size=(1, 2, 3, 2, 2)),
    )
    cases = [
        (nn.ConstantPad1d((1, 2), 0.5), x1, ((0, 0), (0, 0), (1, 2))),
        (nn.ConstantPad2d(1, -1.0), x2, ((0, 0), (0, 0), (1, 1), (1, 1))),
        (nn.ConstantPad2d((0, 1, 2, 0), 0.0), x2, ((0, 0), (0, 0), (2, 0), (0, 1))),
        (nn.ConstantPad3d((1, 0, 0, 1, 2, 0), 2.0), x3, ((0, 0), (0, 0), (2, 0), (0, 1), (1, 0))),
    ]
    for layer, x, pads in cases:
        want = np.pad(x, pads, constant_values=layer.value)
        np.testing.assert_array_equal(layer(x), want)
        _close(_encrypted(layer, x, world)[0], want)
    v = Variable(x1, requires_grad=True)
    nn.ConstantPad1d(2, 1.0)(v).sum().backward()
    np.testing.assert_array_equal(v.grad, np.ones_like(x1))
    with pytest.raises(ValueError, match="ConstantPad2d: padding"):
        nn.ConstantPad2d((1, 2, 3), 0.0)
    with pytest.raises(ValueError, match="ConstantPad1d: negative"):
        nn.ConstantPad1d(-1, 0.0)
    with pytest.raises(ValueError, match="ConstantPad3d"):
        nn.ConstantPad3d(1, 0.0)(np.zeros((2, 3)))


def test_constant_pad_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(2, 3, 4, 5))
    want = torch.nn.ConstantPad2d((1, 2, 0, 3), 1.5)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(nn.ConstantPad2d((1, 2, 0, 3), 1.5)(x), want)


# -- nn.init -----------------------------------------------------------------------------
def test_init_functions():
    init = nn.init
    w = np.zeros((64, 32, 3, 3))
    fan_in, fan_out = 32 * 9, 64 * 9
    assert init.uniform_(w, -0.5, 0.25, rng=np.random.default_rng(0)) is w
    assert -0.5 <= w.min() and w.max() <= 0.25
    init.normal_(w, 1.0, 0.1, rng=np.random.default_rng(0))
    assert abs(w.mean() - 1.0) < 0.01 and abs(w.std() - 0.1) < 0.01
    init.constant_(w, 3.0)
    assert np.all(w == 3.0)
    init.zeros_(w)
    assert not w.any()
    init.ones_(w)
    assert np.all(w == 1.0)
    init.xavier_uniform_(w, gain=2.0, rng=np.random.default_rng(1))
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    init.xavier_normal_(w, rng=np.random.default_rng(2))
    assert abs(w.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.005
    init.kaiming_uniform_(w, a=math.sqrt(5), rng=np.random.default_rng(3))
    assert np.abs(w).max() <= 1 / math.sqrt(fan_in)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=np.random.default_rng(4))
    assert abs(w.std() - math.sqrt(2 / fan_out)) < 0.005
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    layer = nn.Linear(4, 3).requires_grad_()
    init.zeros_(layer.weight)
    assert not layer.weight.data.any()
    same = init.uniform_(np.zeros(3), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(same, init.uniform_(np.zeros(3), rng=np.random.default_rng(5)))


def test_init_errors():
    init = nn.init
    with pytest.raises(ValueError, match=r"xavier_uniform_.*at least 2 dims"):
        init.xavier_uniform_(np.zeros(3))
    with pytest.raises(ValueError, match="kaiming_normal_: mode"):
        init.kaiming_normal_(np.zeros((2, 2)), mode="fan")
    with pytest.raises(TypeError, match="ones_: expected a numpy float array"):
        init.ones_(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")

    def job(session):
        layer = nn.Linear(2, 2).encrypt(src=0)
        with pytest.raises(TypeError, match="cannot initialise an encrypted tensor"):
            init.normal_(layer.weight)
        return True

    assert run_parties(job, 2) == [True, True]


def test_init_matches_torch_statistics():
    torch = pytest.importorskip("torch")
    t = torch.empty(50, 20)
    torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
    ours = nn.init.kaiming_uniform_(np.zeros((50, 20)), a=math.sqrt(5))
    assert abs(float(t.abs().max()) - np.abs(ours).max()) < 0.02
