"""Parameter gradients of small ``crypten_lite.nn`` models against their torch twins (float64),
public (numpy Variables) and encrypted (2 parties). Optional: skipped without torch."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.runtime.testing import run_parties
from crypten_lite.tensor import MPCTensor

torch = pytest.importorskip("torch")


def _mlp(seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(6, 8, rng=rng), nn.ReLU(), nn.Linear(8, 4, rng=rng), nn.LogSoftmax(1)
    )


def _mlp_torch() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4), torch.nn.LogSoftmax(1)
    ).double()


def _cnn(seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 4, rng=rng),
    )


def _cnn_torch() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 3 * 3, 4),
    ).double()


MODELS = {
    "mlp": (_mlp, _mlp_torch, (5, 6), (5, 4)),
    "cnn": (_cnn, _cnn_torch, (2, 1, 6, 6), (2, 4)),
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    _, _, x_shape, out_shape = MODELS[name]
    rng = np.random.default_rng(len(name) * 101)
    return rng.uniform(-1, 1, x_shape), rng.normal(size=out_shape)


def _torch_grads(name: str, seed: int) -> dict[str, np.ndarray]:
    build, build_torch, _, _ = MODELS[name]
    x, weights = _data(name)
    twin = build_torch()
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in build(seed).state_dict().items()}
    twin.load_state_dict(state)
    out = twin(torch.from_numpy(x))
    (out * torch.from_numpy(weights)).sum().backward()
    return {k: p.grad.numpy() for k, p in twin.named_parameters()}


@pytest.mark.parametrize("name", list(MODELS))
def test_public_parameter_grads_match_torch(name):
    seed = 7
    x, weights = _data(name)
    model = MODELS[name][0](seed).requires_grad_()
    out = model(x)
    (out * weights).sum().backward()
    got = {k: p.grad for k, p in model.named_parameters()}
    want = _torch_grads(name, seed)
    assert got.keys() == want.keys()
    for key in want:
        assert isinstance(got[key], np.ndarray), key
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", list(MODELS))
def test_encrypted_parameter_grads_match_torch(name):
    seed = 7
    x, weights = _data(name)

    def job(session):
        model = MODELS[name][0](seed)
        model.encrypt(src=0)
        model.requires_grad_()
        out = model(cl.cryptensor(x, src=1))
        (out * weights).sum().backward()
        # the last bias's gradient is sum(R): public (a numpy array); the others are shares
        return {
            key: p.grad.get_plain_text() if isinstance(p.grad, MPCTensor) else p.grad
            for key, p in model.named_parameters()
        }

    got = run_parties(job, 2)[0]
    want = _torch_grads(name, seed)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=2e-3, rtol=0, err_msg=key)
