"""FedAvg on the revealed aggregate and the numpy local training of the clients."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.client import pack_weighted_update
from crypten_lite.fl import fedavg_update
from examples import fl_training as tr


def test_weighted_fedavg_is_the_weighted_mean_of_deltas():
    model = np.array([1.0, -1.0, 0.5])
    deltas = [np.array([0.1, 0.2, -0.3]), np.array([-0.2, 0.0, 0.4])]
    weights = [0.25, 0.75]
    aggregate = sum(pack_weighted_update(d, w) for d, w in zip(deltas, weights, strict=True))
    step = fedavg_update(model, aggregate, num_clients=2)
    expected = model + (0.25 * deltas[0] + 0.75 * deltas[1]) / 1.0
    np.testing.assert_allclose(step.model, expected, rtol=1e-6)
    assert step.total_weight == pytest.approx(1.0)
    plain = fedavg_update(model, deltas[0] + deltas[1], num_clients=2, weighted=False)
    np.testing.assert_allclose(plain.model, model + (deltas[0] + deltas[1]) / 2, rtol=1e-6)


def test_fedavg_validates():
    with pytest.raises(ValueError, match="elements"):
        fedavg_update(np.zeros(3), np.zeros(3), num_clients=1)
    with pytest.raises(ValueError, match="weight"):
        fedavg_update(np.zeros(3), np.zeros(4), num_clients=1)
    with pytest.raises(ValueError, match="weight"):
        pack_weighted_update(np.zeros(2), 1.5)


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_gradient_matches_finite_differences(kind):
    spec = tr.ModelSpec(kind=kind, features=5, classes=3, hidden=4)
    rng = np.random.default_rng(0)
    params = rng.normal(0, 0.5, spec.num_params)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)

    def loss(p):
        z = tr.predict_logits(spec, p, x)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(7), y]))

    grad = tr._gradient(spec, params, x, y, 0.0)
    eps = 1e-6
    numeric = np.array([(loss(params + eps * e) - loss(params - eps * e)) / (2 * eps)
                        for e in np.eye(spec.num_params)])
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_non_iid_partition_covers_the_data_with_few_classes_each():
    labels = np.repeat(np.arange(10), 30)
    parts = tr.partition_non_iid(labels, 10, classes_per_client=2, seed=1)
    joined = np.sort(np.concatenate(parts))
    assert np.array_equal(joined, np.arange(labels.size))  # disjoint and complete
    assert all(len(np.unique(labels[p])) <= 2 for p in parts)
    with pytest.raises(ValueError, match="shards"):
        tr.partition_non_iid(labels[:5], 10)


def test_local_training_learns_digits():
    pytest.importorskip("sklearn")
    data = tr.load_digits_split()
    spec = tr.ModelSpec("logreg")
    params = tr.local_train(spec, tr.init_params(spec), data.x_train, data.y_train, epochs=10)
    assert tr.accuracy(spec, params, data.x_test, data.y_test) > 0.93
