"""nn layers: plaintext forward against torch (or numpy formulas), encrypted forward."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]


def _close(got, want, rel=1e-2, atol=2e-3):
    np.testing.assert_allclose(got, want, rtol=rel, atol=atol)


# -- plaintext against explicit numpy formulas (no torch needed) ----------------------------
def test_linear_plaintext_formula_and_layout():
    rng = np.random.default_rng(0)
    layer = nn.Linear(5, 3, rng=rng)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert np.abs(layer.weight).max() <= 1 / math.sqrt(5)
    x = rng.normal(size=(4, 5))
    np.testing.assert_allclose(layer(x), x @ layer.weight.T + layer.bias)
    assert nn.Linear(5, 3, bias=False).bias is None


def test_conv2d_plaintext_matches_direct_loop():
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2, rng=rng)
    assert conv.weight.shape == (6, 2, 3, 2)
    x = rng.normal(size=(2, 4, 7, 6))
    got = conv(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = got.shape[2:]
    want = np.zeros_like(got)
    for o in range(6):
        g = o // 3
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, 2 * g : 2 * g + 2, 2 * i : 2 * i + 3, j : j + 3 : 2]
                want[:, o, i, j] = (patch * conv.weight[o]).sum(axis=(1, 2, 3)) + conv.bias[o]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_activations_and_norms_plaintext_formulas():
    x = np.random.default_rng(2).normal(size=(3, 4))
    np.testing.assert_allclose(nn.ReLU()(x), np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax(dim=-1)(x)), nn.Softmax(-1)(x))
    ln = nn.LayerNorm(4)(x)
    np.testing.assert_allclose(ln.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(ln.var(axis=-1), 1, atol=1e-4)
    np.testing.assert_array_equal(nn.Identity()(x), x)
    assert nn.Flatten()(np.zeros((2, 3, 4, 5))).shape == (2, 60)
    assert nn.Flatten(0, 1)(np.zeros((2, 3, 4))).shape == (6, 4)


# -- plaintext against torch ----------------------------------------------------------------
def _torch_pairs():
    torch = pytest.importorskip("torch")
    tn = torch.nn
    return torch, [
        (nn.Linear(6, 4), tn.Linear(6, 4), (3, 6)),
        (
            nn.Conv1d(2, 4, 3, padding=1, stride=2),
            tn.Conv1d(2, 4, 3, padding=1, stride=2),
            (2, 2, 9),
        ),
        (
            nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
            tn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
            (2, 4, 7, 7),
        ),
        (nn.BatchNorm1d(5), tn.BatchNorm1d(5), (4, 5)),
        (nn.BatchNorm2d(3), tn.BatchNorm2d(3), (2, 3, 4, 4)),
        (nn.LayerNorm((3, 4)), tn.LayerNorm((3, 4)), (2, 3, 4)),
        (nn.ReLU(), tn.ReLU(), (3, 5)),
        (nn.Sigmoid(), tn.Sigmoid(), (3, 5)),
        (nn.Tanh(), tn.Tanh(), (3, 5)),
        (nn.GELU(), tn.GELU(), (3, 5)),
        (nn.GELU("tanh"), tn.GELU("tanh"), (3, 5)),
        (nn.Softmax(dim=1), tn.Softmax(dim=1), (3, 5)),
        (nn.LogSoftmax(dim=-1), tn.LogSoftmax(dim=-1), (3, 5)),
        (nn.MaxPool2d(3, stride=2, padding=1), tn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7)),
        (nn.AvgPool2d(2, padding=1), tn.AvgPool2d(2, padding=1), (2, 3, 5, 5)),
        (nn.AdaptiveAvgPool2d((3, 2)), tn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
        (nn.Flatten(), tn.Flatten(), (2, 3, 4)),
        (nn.Dropout(0.3), tn.Dropout(0.3), (3, 5)),
        (nn.Identity(), tn.Identity(), (3, 5)),
    ]


def test_plaintext_layers_match_torch_eval():
    torch, pairs = _torch_pairs()
    rng = np.random.default_rng(3)
    for ours, theirs, shape in pairs:
        theirs = theirs.double().eval()
        if isinstance(theirs, torch.nn.modules.batchnorm._BatchNorm):
            theirs.running_mean.uniform_(-1, 1)
            theirs.running_var.uniform_(0.5, 2)
            theirs.weight.data.uniform_(0.5, 2)
            theirs.bias.data.uniform_(-1, 1)
        ours.load_state_dict(theirs.state_dict())
        ours.eval()
        x = rng.normal(size=shape)
        want = theirs(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(ours(x), want, rtol=1e-10, atol=1e-12, err_msg=repr(ours))
        assert list(ours.state_dict()) == list(theirs.state_dict())


def test_batchnorm_train_mode_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3).double()
    x = np.random.default_rng(4).normal(size=(4, 3, 5, 5))
    for _ in range(2):
        np.testing.assert_allclose(
            ours(x), theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-10
        )
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), atol=1e-12)


# -- encrypted forward ----------------------------------------------------------------------
def _mlp(rng):
    return nn.Sequential(nn.Linear(20, 32, rng=rng), nn.ReLU(), nn.Linear(32, 10, rng=rng))


def _cnn(rng):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10, rng=rng),
    )


MODELS = {"mlp": (_mlp, (6, 20)), "cnn": (_cnn, (5, 1, 8, 8))}


def _check_logits(got, want):
    _close(got, want)
    np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))


@pytest.mark.parametrize("world_size", WORLDS)
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_private_model_private_input(world_size, kind):
    build, shape = MODELS[kind]
    model = build(np.random.default_rng(5)).eval()
    x = np.random.default_rng(6).normal(size=shape)
    want = model(x)

    def job(session):
        mine = copy.deepcopy(model) if session.rank == 0 else build(np.random.default_rng(99))
        assert mine.encrypt(src=0) is mine and mine.encrypted
        assert all(isinstance(p, cl.MPCTensor) for p in mine.parameters())
        data = x if session.rank == session.world_size - 1 else None
        return mine(cl.cryptensor(data, src=session.world_size - 1)).get_plain_text()

    for got in run_parties(job, world_size):
        _check_logits(got, want)


@pytest.mark.parametrize("world_size", WORLDS)
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_public_model_private_input(world_size, kind):
    build, shape = MODELS[kind]
    model = build(np.random.default_rng(7))
    x = np.random.default_rng(8).normal(size=shape)

    def job(session):
        return model(cl.cryptensor(x, src=0)).get_plain_text()

    _check_logits(run_parties(job, world_size)[0], model(x))


@pytest.mark.parametrize("world_size", WORLDS)
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_private_model_public_input(world_size, kind):
    build, shape = MODELS[kind]
    model = build(np.random.default_rng(9))
    x = np.random.default_rng(10).normal(size=shape)

    def job(session):
        mine = copy.deepcopy(model).encrypt(src=1)
        return mine(x).get_plain_text()

    _check_logits(run_parties(job, world_size)[0], model(x))


def test_encrypted_norms_and_activations():
    rng = np.random.default_rng(11)
    bn = nn.BatchNorm1d(3)
    bn.load_state_dict(
        {
            "weight": rng.uniform(0.5, 2, 3),
            "bias": rng.uniform(-1, 1, 3),
            "running_mean": rng.uniform(-1, 1, 3),
            "running_var": rng.uniform(0.5, 2, 3),
            "num_batches_tracked": np.array(3),
        }
    )
    model = nn.Sequential(
        nn.LayerNorm(4), nn.Tanh(), bn, nn.GELU(), nn.Sigmoid(), nn.Conv1d(3, 2, 2), nn.Softmax(-1)
    ).eval()
    x = rng.normal(size=(2, 3, 4))
    want = model(x)

    def job(session):
        public_weights = model(cl.cryptensor(x, src=0)).get_plain_text()
        mine = copy.deepcopy(model).encrypt(src=0)
        assert mine[2].num_batches_tracked.dtype == np.int64  # integer buffers stay public
        assert isinstance(mine[2].running_var, cl.MPCTensor)
        private = mine(cl.cryptensor(x, src=0)).get_plain_text()
        return public_weights, private

    for got in run_parties(job, 2)[0]:
        _close(got, want, rel=2e-2, atol=5e-3)


# -- module mechanics -----------------------------------------------------------------------
def test_state_dict_round_trip_and_names():
    rng = np.random.default_rng(12)
    a = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    keys = list(a.state_dict())
    assert keys[:2] == ["0.weight", "0.bias"] and "1.running_var" in keys and keys[-1] == "3.bias"
    assert [n for n, _ in a.named_parameters()] == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "3.weight",
        "3.bias",
    ]
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    assert b.load_state_dict(a.state_dict()) is b
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    sd = a.state_dict()
    sd["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(a[0].weight != 0)


def test_load_state_dict_errors():
    m = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(KeyError, match="missing keys"):
        m.load_state_dict({"0.weight": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="unexpected keys"):
        m.load_state_dict({"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(2), "x": np.ones(1)})
    with pytest.raises(ValueError, match=r"0.weight has shape \(2, 3\)"):
        m.load_state_dict({"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(2)})
    m.load_state_dict({"0.bias": np.ones(2)}, strict=False)
    np.testing.assert_array_equal(m[0].bias, 1)


def test_encrypt_decrypt_round_trip():
    model = _mlp(np.random.default_rng(13))

    def job(session):
        mine = copy.deepcopy(model) if session.rank == 1 else _mlp(np.random.default_rng(0))
        mine.encrypt(src=1)
        assert mine.encrypted and all(m.encrypted for m in mine.modules())
        with pytest.raises(RuntimeError, match="already encrypted"):
            mine.encrypt(src=1)
        with pytest.raises(RuntimeError, match="decrypt"):
            mine.load_state_dict(model.state_dict())
        assert mine.decrypt() is mine and not mine.encrypted
        return mine.state_dict()

    for sd in run_parties(job, 3):
        for key, value in model.state_dict().items():
            assert isinstance(sd[key], np.ndarray)
            np.testing.assert_allclose(sd[key], value, atol=2**-16)


def test_train_eval_flags_and_dropout():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Sequential(nn.ReLU()))
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    x = np.ones((2, 4))
    np.testing.assert_array_equal(model[1](x), x)
    model.train()
    assert all(m.training for m in model.modules())
    dropped = model[1](np.ones((100, 100)))
    assert set(np.unique(dropped)) <= {0.0, 2.0} and 0.3 < (dropped == 0).mean() < 0.7
    assert len(list(model.children())) == 3 and len(model) == 3


def test_error_messages_name_the_layer():
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=20, out_features=32\): expected input with last dim 20, "
        r"got shape \(4, 19\)",
    ):
        nn.Linear(20, 32)(np.zeros((4, 19)))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*C=3, got shape \(1, 2, 5, 5\)"):
        nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        nn.BatchNorm2d(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="LayerNorm"):
        nn.LayerNorm(4)(np.zeros((2, 5)))
    with pytest.raises(
        TypeError, match=r"ReLU\(\): expected a numpy float array or an MPCTensor, got list"
    ):
        nn.ReLU()([1.0, 2.0])
    with pytest.raises(TypeError, match="Sequential: item 1"):
        nn.Sequential(nn.ReLU(), "relu")
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)


