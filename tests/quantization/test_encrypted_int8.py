"""The encrypted twin of an int8 model: bit-exact against its plaintext integer simulation,
within one step of the float-requantized int8 model, its round count, options and errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from crypten_lite import nn
from crypten_lite import quantization as Q
from crypten_lite.config import SessionConfig
from crypten_lite.errors import QuantizationError
from crypten_lite.quantization import encrypted as enc
from crypten_lite.quantization import quantized as qm
from crypten_lite.runtime.testing import run_parties

INPUT_OWNER = 1


def _convert(model, x):
    fused = Q.fuse_modules(model, [["1", "2"]])
    fused.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(fused)
    prepared(x)
    return Q.convert(prepared)


@pytest.fixture(scope="module")
def mlp():
    rng = np.random.default_rng(10)
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Linear(20, 16, rng=rng),
        nn.ReLU(),
        nn.Linear(16, 6, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    x = rng.normal(size=(40, 20))
    return _convert(model, x), x


@pytest.fixture(scope="module")
def cnn():
    rng = np.random.default_rng(11)
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(1, 3, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(27, 4, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    x = rng.uniform(0, 1, size=(8, 1, 6, 6))
    return _convert(model, x), x


def _without_dequant(model):
    return nn.Sequential(*list(model)[:-1])


def _private_ints(qmodel, x, world_size, upto=-1, **options):
    """Run the twin's layers ``[:upto]`` (default all but DeQuantize) and reveal the output
    QTensor; also the rounds they took."""

    def job(session):
        twin = enc.encrypt_quantized(copy.deepcopy(qmodel), src=0, **options)
        shared = enc.share_quantized(twin, x if session.rank == INPUT_OWNER else None, INPUT_OWNER)
        session.stats.reset()
        for layer in list(twin)[:upto]:
            shared = layer(shared)
        rounds = session.stats.snapshot().rounds
        return shared.reveal(), rounds

    return run_parties(job, world_size=world_size)[0]


@pytest.mark.parametrize("world_size", [2, 3])
def test_mlp_twin_is_bit_exact_with_its_simulation(mlp, world_size):
    qmodel, x = mlp
    got, rounds = _private_ints(qmodel, x, world_size)
    sim = enc.simulate(_without_dequant(qmodel), x, local_truncation=world_size == 2)
    np.testing.assert_array_equal(got.int_repr, sim.int_repr)
    assert got.scale == sim.scale and got.zero_point == sim.zero_point
    # per weighted layer: matmul 1 + truncation (0 local | 1 dealer) + comparisons 3 + clamp 1
    assert rounds == 2 * (5 if world_size == 2 else 6)
    # against the float-requantized int8 model: only ties differ, by one step
    plain = _without_dequant(qmodel)(x).int_repr.astype(np.int64)
    diff = np.abs(got.int_repr.astype(np.int64) - plain)
    assert diff.max() <= 1 and np.mean(diff) < 0.02


def test_cnn_twin_is_bit_exact_with_its_simulation(cnn):
    qmodel, x = cnn
    got, _ = _private_ints(qmodel, x, 2)
    sim = enc.simulate(_without_dequant(qmodel), x)
    np.testing.assert_array_equal(got.int_repr, sim.int_repr)
    plain = _without_dequant(qmodel)(x).int_repr.astype(np.int64)
    assert np.abs(got.int_repr.astype(np.int64) - plain).max() <= 1


def test_unfused_relu_and_a_single_module_root():
    rng = np.random.default_rng(12)
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Linear(8, 6, rng=rng),
        nn.ReLU(),
        nn.Linear(6, 3, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)  # no fusion: Linear, standalone ReLU, Linear
    x = rng.normal(size=(10, 8))
    prepared(x)
    qmodel = Q.convert(prepared)
    assert isinstance(qmodel[2], qm.QuantizedReLU)
    got, rounds = _private_ints(qmodel, x, 2)
    sim = enc.simulate(_without_dequant(qmodel), x)
    np.testing.assert_array_equal(got.int_repr, sim.int_repr)
    assert rounds == 5 + 4 + 5  # the standalone ReLU is MPCTensor.relu

    def job(session):
        twin = enc.encrypt_quantized(copy.deepcopy(qmodel[1]), src=0)  # one module as root
        assert twin is not None and twin.encrypted
        xq = qmodel[0](x)
        shared = enc.share_quantized(qmodel, x if session.rank == 1 else None, 1)
        return twin(shared).reveal(), xq

    out, xq = run_parties(job, world_size=2)[0]
    np.testing.assert_array_equal(out.int_repr, enc.simulate(qmodel[1], xq).int_repr)


def test_dequantize_twin_is_local_and_keeps_argmax(mlp):
    qmodel, x = mlp
    plain = qmodel(x)
    step = qmodel[3].scale

    def job(session):
        twin = enc.encrypt_quantized(copy.deepcopy(qmodel), src=0)
        shared = enc.share_quantized(twin, x if session.rank == INPUT_OWNER else None, INPUT_OWNER)
        return twin(shared).get_plain_text()

    out = run_parties(job, world_size=2)[0]
    # (q - z) * round(s 2^16) / 2^16: at most 255 * 2^-17 from the plaintext dequantization,
    # plus at most one step where the requantization hit a tie
    err = np.abs(out - plain)
    assert np.all((err < 2e-3) | (np.abs(err - step) < 2e-3))
    assert np.mean(out.argmax(1) == plain.argmax(1)) >= 0.95


def test_cheaper_options_trade_exactness_for_rounds(mlp):
    qmodel, x = mlp
    first = nn.Sequential(*list(qmodel)[:2])
    sim = enc.simulate(first, x).int_repr.astype(np.int64)
    stochastic, r1 = _private_ints(qmodel, x, 2, upto=2, exact=False)
    diff = np.abs(stochastic.int_repr.astype(np.int64) - sim)
    assert diff.max() <= 1 and 0 < np.mean(diff) < 0.5  # stochastic rounding, one layer
    assert r1 == 5  # the ReLU clamp still needs the comparison round trip
    full = enc.simulate(_without_dequant(qmodel), x).int_repr.astype(np.int64)
    unclamped, r2 = _private_ints(qmodel, x, 2, exact=False, saturate=False)
    # the plain last layer needs no comparison at all: matmul only
    assert r2 == 5 + 1
    assert np.abs(unclamped.int_repr.astype(np.int64) - full).max() <= 4
    # exact rounding without the saturating clamp: equal wherever the clamp did not act
    exact, r3 = _private_ints(qmodel, x, 2, saturate=False)
    assert r3 == 5 + 4  # ReLU layer: full cost; plain layer: matmul + comparison (for b)
    inside = (full > 0) & (full < 255)
    np.testing.assert_array_equal(exact.int_repr.astype(np.int64)[inside], full[inside])


def test_only_the_model_owner_values_count(mlp):
    qmodel, x = mlp
    rng = np.random.default_rng(99)  # another float model, another calibration: same shapes
    other = nn.Sequential(
        Q.QuantStub(),
        nn.Linear(20, 16, rng=rng),
        nn.ReLU(),
        nn.Linear(16, 6, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    other = _convert(other, 3.0 * rng.normal(size=(40, 20)))
    assert other[0].scale != qmodel[0].scale

    def job(session):
        mine = copy.deepcopy(qmodel if session.rank == 0 else other)
        twin = enc.encrypt_quantized(mine, src=0)
        shared = enc.share_quantized(twin, x if session.rank == 1 else None, 1)
        assert shared.scale == qmodel[0].scale  # the data owner used the owner's qparams
        for layer in list(twin)[:-1]:
            shared = layer(shared)
        return shared.reveal()

    got = run_parties(job, world_size=2)[1]
    sim = enc.simulate(_without_dequant(qmodel), x)
    np.testing.assert_array_equal(got.int_repr, sim.int_repr)
    assert got.scale == sim.scale


def test_truncation_config_local_vs_dealer_changes_only_rounds(mlp):
    qmodel, x = mlp

    def job(session):
        twin = enc.encrypt_quantized(copy.deepcopy(qmodel), src=0)
        shared = enc.share_quantized(twin, x if session.rank == 1 else None, 1)
        for layer in list(twin)[:-1]:
            shared = layer(shared)
        return shared.reveal()

    got = run_parties(job, world_size=2, config=SessionConfig(truncation="dealer"))[0]
    sim = enc.simulate(_without_dequant(qmodel), x, local_truncation=False)
    np.testing.assert_array_equal(got.int_repr, sim.int_repr)


def test_errors_name_the_problem(mlp):
    qmodel, x = mlp
    with pytest.raises(QuantizationError, match="shift of"):
        enc.requant_shift(2.0**30, 1.0, 0.0, 40)
    n = enc.requant_shift(2.0**21, 0.01, 4.0, 40)  # one bit of margin below the budget
    total = 2.0**21 * 0.01 + 4.0 + 1.0
    assert total * 2.0**n < 2.0**39 <= total * 2.0 ** (n + 2)

    def job(session):
        with pytest.raises(QuantizationError, match="no quantized modules"):
            enc.encrypt_quantized(nn.Sequential(nn.Linear(2, 2)), src=0)
        twin = enc.encrypt_quantized(copy.deepcopy(qmodel), src=0)
        with pytest.raises(QuantizationError, match=r"SharedQTensor.*share_quantized"):
            twin(x)
        with pytest.raises(QuantizationError, match="no Quantize"):
            enc.share_quantized(nn.Sequential(nn.ReLU()), x, 0)
        shared = enc.share_quantized(twin, x if session.rank == 0 else None, 0)
        assert "<hidden>" in repr(shared) and "SharedQTensor" in repr(shared)
        bad = enc.SharedQTensor(shared.centered, shared.scale * 2, shared.zero_point, shared.dtype)
        with pytest.raises(QuantizationError, match="input qparams"):
            twin(bad)
        return True

    assert run_parties(job, world_size=2) == [True, True]
    assert isinstance(qmodel[1], qm.QuantizedLinearReLU)  # the fixture was not modified
