"""from_onnx / from_pytorch: per-op graphs against numpy/torch, encrypted MLP and CNN."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from crypten_lite.nn.onnx_import import (  # noqa: E402
    GraphModule,
    UnsupportedOperatorError,
    from_onnx,
    supported_ops,
)

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits=None, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _f32(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _run(nodes, x, inits=None, opset=17, outputs=("y",)):
    model = from_onnx(_model(nodes, {"x": list(x.shape)}, list(outputs), inits, opset))
    return model(x)


def _erf(x):
    return np.vectorize(math.erf)(x)


# -- per-op plaintext checks ---------------------------------------------------------------
def test_gemm_attributes():
    a, b, c = _f32(3, 4), _f32(5, 3), _f32(5)
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], alpha=0.5, beta=2.0, transA=1, transB=1)
    got = _run([node], a, {"b": b, "c": c})
    np.testing.assert_allclose(got, 0.5 * a.T @ b.T + 2.0 * c, rtol=1e-5)


def test_matmul_and_elementwise_arithmetic():
    x, w, b, c, d = _f32(2, 3, 4), _f32(4, 5), _f32(5), _f32(5), np.float32(4.0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["s"]),
        helper.make_node("Mul", ["s", "c"], ["p"]),
        helper.make_node("Sub", ["p", "b"], ["q"]),
        helper.make_node("Div", ["q", "d"], ["y"]),
    ]
    got = _run(nodes, x, {"w": w, "b": b, "c": c, "d": d})
    np.testing.assert_allclose(got, ((x @ w + b) * c - b) / d, rtol=1e-5, atol=1e-6)


def test_conv_1d_and_2d_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = _f32(2, 4, 7, 6), _f32(6, 2, 3, 2), _f32(6)
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        strides=[2, 1],
        pads=[1, 1, 1, 1],
        dilations=[1, 2],
        group=2,
        kernel_shape=[3, 2],
    )
    got = _run([node], x, {"w": w, "b": b})
    want = tf.conv2d(
        *map(torch.from_numpy, (x, w, b)), stride=(2, 1), padding=1, dilation=(1, 2), groups=2
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    x1, w1 = _f32(2, 3, 9), _f32(4, 3, 3)
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2], pads=[1, 1])
    want1 = tf.conv1d(torch.from_numpy(x1), torch.from_numpy(w1), stride=2, padding=1)
    np.testing.assert_allclose(_run([node], x1, {"w": w1}), want1.numpy(), rtol=1e-4, atol=1e-5)


def test_activations():
    x = _f32(3, 5)
    x64 = x.astype(np.float64)
    cases = {
        "Relu": np.maximum(x64, 0),
        "Sigmoid": 1 / (1 + np.exp(-x64)),
        "Tanh": np.tanh(x64),
        "Erf": _erf(x64),
        "Identity": x64,
    }
    for op, want in cases.items():
        np.testing.assert_allclose(_run([helper.make_node(op, ["x"], ["y"])], x), want, atol=1e-12)
    exact = 0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))
    gelu = helper.make_node("Gelu", ["x"], ["y"])
    np.testing.assert_allclose(_run([gelu], x, opset=20), exact, atol=1e-12)
    gelu_t = helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")
    np.testing.assert_allclose(_run([gelu_t], x, opset=20), exact, atol=1e-3)


def test_softmax_axes_and_legacy_coercion():
    x = _f32(2, 3, 4).astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    soft1 = e / e.sum(axis=1, keepdims=True)
    got = _run([helper.make_node("Softmax", ["x"], ["y"], axis=1)], x.astype(np.float32))
    np.testing.assert_allclose(got, soft1, rtol=1e-6)
    got = _run([helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], x.astype(np.float32))
    np.testing.assert_allclose(got, np.log(soft1), rtol=1e-6)
    # opset 11: coerce to 2-D at axis=1, i.e. softmax over the last two dims together
    flat = x.reshape(2, 12)
    e2 = np.exp(flat - flat.max(axis=1, keepdims=True))
    want = (e2 / e2.sum(axis=1, keepdims=True)).reshape(x.shape)
    got = _run([helper.make_node("Softmax", ["x"], ["y"])], x.astype(np.float32), opset=11)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = _f32(2, 3, 7, 7)
    tx = torch.from_numpy(x)
    mp = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
    )
    np.testing.assert_allclose(_run([mp], x), tf.max_pool2d(tx, 3, 2, 1).numpy(), rtol=1e-6)
    ap = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[2, 2],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=1,
    )
    np.testing.assert_allclose(_run([ap], x), tf.avg_pool2d(tx, 2, 2, 1).numpy(), rtol=1e-5)
    gp = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    np.testing.assert_allclose(_run([gp], x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-5)
    x1 = _f32(2, 3, 8)
    mp1 = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2], strides=[2])
    np.testing.assert_allclose(_run([mp1], x1), tf.max_pool1d(torch.from_numpy(x1), 2).numpy())


def test_batch_and_layer_normalization():
    x = _f32(4, 3, 2, 2).astype(np.float64)
    s, b, m, v = _f32(3), _f32(3), _f32(3), np.abs(_f32(3)) + 0.5
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    got = _run([bn], x.astype(np.float32), {"s": s, "b": b, "m": m, "v": v})
    r = (1, 3, 1, 1)
    want = (x - m.reshape(r)) / np.sqrt(v.reshape(r) + 1e-3) * s.reshape(r) + b.reshape(r)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    g, beta = _f32(2, 2), _f32(2, 2)
    ln = helper.make_node("LayerNormalization", ["x", "g", "beta"], ["y"], axis=-2, epsilon=1e-4)
    got = _run([ln], x.astype(np.float32), {"g": g, "beta": beta})
    mu = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(got, (x - mu) / np.sqrt(var + 1e-4) * g + beta, rtol=1e-4)


def test_shape_ops():
    x = _f32(2, 3, 4, 5)
    flat = _run([helper.make_node("Flatten", ["x"], ["y"], axis=2)], x)
    assert flat.shape == (6, 20)
    np.testing.assert_array_equal(flat, x.reshape(6, 20))
    shape = helper.make_node(
        "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, -1, 5], np.int64))
    )
    got = _run([shape, helper.make_node("Reshape", ["x", "shape"], ["y"])], x)
    np.testing.assert_array_equal(got, x.reshape(2, 12, 5))
    got = _run([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], x)
    np.testing.assert_array_equal(got, x.transpose(0, 2, 3, 1))
    got = _run([helper.make_node("Transpose", ["x"], ["y"])], x)
    np.testing.assert_array_equal(got, x.transpose())


def test_split_and_concat():
    x = _f32(2, 6, 3)
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]),
        helper.make_node("Concat", ["b", "a"], ["y"], axis=1),
    ]
    want = np.concatenate([x[:, 2:], x[:, :2]], axis=1)
    np.testing.assert_array_equal(_run(nodes, x, opset=11), want)
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "b", "c"], axis=-1),
        helper.make_node("Concat", ["c", "b", "a"], ["y"], axis=-1),
    ]
    got = _run(nodes, x, {"sizes": np.array([1, 1, 1], np.int64)}, opset=13)
    np.testing.assert_array_equal(got, x[..., ::-1])
    nodes = [helper.make_node("Split", ["x"], ["a", "y"], axis=1)]
    model = from_onnx(_model(nodes, {"x": [2, 6, 3]}, ["a", "y"]))
    a, y = model(x)
    np.testing.assert_array_equal(a, x[:, :3])
    np.testing.assert_array_equal(y, x[:, 3:])


def test_dynamic_flatten_shape_chain():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch exports x.view(n, -1)."""
    x = _f32(3, 2, 4)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
    }
    np.testing.assert_array_equal(_run(nodes, x, inits), x.reshape(3, 8))


def test_unsupported_op_names_op_and_node():
    node = helper.make_node("LSTM", ["x"], ["y"], name="conv_7")
    with pytest.raises(
        UnsupportedOperatorError, match="ONNX node 'conv_7' uses unsupported op 'LSTM'"
    ):
        from_onnx(_model([node], {"x": [1, 2]}, ["y"]))
    assert issubclass(UnsupportedOperatorError, ValueError)
    pad = helper.make_node("Pad", ["x", "pads"], ["y"], name="p", mode="reflect")
    pads = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)
    with pytest.raises(UnsupportedOperatorError, match=r"'p'.*reflect"):
        _run([pad], _f32(1, 1, 4, 4), {"pads": pads})
    assert "Gemm" in supported_ops() and "LSTM" not in supported_ops()


def test_model_from_bytes_and_path_and_state_dict(tmp_path):
    w, b = _f32(4, 3), _f32(4)
    nodes = [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)]
    proto = _model(nodes, {"x": [2, 3]}, ["y"], {"fc.weight": w, "fc.bias": b})
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    x = _f32(2, 3)
    for source in (proto, proto.SerializeToString(), path, str(path)):
        model = from_onnx(source)
        assert isinstance(model, GraphModule)
        np.testing.assert_allclose(model(x), x @ w.T + b, rtol=1e-5)
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]
    model.load_state_dict({"fc.weight": 2 * w, "fc.bias": b})
    np.testing.assert_allclose(model(x), x @ (2 * w).T + b, rtol=1e-5)
    with pytest.raises(TypeError):
        from_onnx(123)


# -- encrypted -----------------------------------------------------------------------------
def _mlp_graph():
    rng = np.random.default_rng(1)
    inits = {
        "w1": rng.normal(scale=0.3, size=(16, 10)).astype(np.float32),
        "b1": rng.normal(scale=0.1, size=16).astype(np.float32),
        "w2": rng.normal(scale=0.3, size=(16, 4)).astype(np.float32),
        "b2": rng.normal(scale=0.1, size=4).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["y"]),
    ]
    return _model(nodes, {"x": [5, 10]}, ["y"], inits), (5, 10)


def _cnn_graph():
    rng = np.random.default_rng(2)
    inits = {
        "cw": rng.normal(scale=0.4, size=(4, 1, 3, 3)).astype(np.float32),
        "cb": rng.normal(scale=0.1, size=4).astype(np.float32),
        "bs": rng.uniform(0.5, 1.5, size=4).astype(np.float32),
        "bb": rng.normal(scale=0.1, size=4).astype(np.float32),
        "bm": rng.normal(scale=0.1, size=4).astype(np.float32),
        "bv": rng.uniform(0.5, 1.5, size=4).astype(np.float32),
        "fw": rng.normal(scale=0.2, size=(3, 64)).astype(np.float32),
        "fb": rng.normal(scale=0.1, size=3).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bs", "bb", "bm", "bv"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    return _model(nodes, {"x": [3, 1, 8, 8]}, ["y"], inits), (3, 1, 8, 8)


@pytest.mark.parametrize("build", [_mlp_graph, _cnn_graph], ids=["mlp", "cnn"])
def test_encrypted_graph_matches_plaintext(build):
    proto, shape = build()
    model = from_onnx(proto)
    x = np.random.default_rng(3).normal(size=shape)
    want = model(x)

    def job(session):
        mine = copy.deepcopy(model).encrypt(src=0)
        assert all(isinstance(p, cl.MPCTensor) for p in mine.parameters())
        data = x if session.rank == 1 else None
        return mine(cl.cryptensor(data, src=1)).get_plain_text()

    for got in run_parties(job, 2):
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=5e-3)
        np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))


def test_encrypted_shape_and_activation_ops():
    x = np.random.default_rng(4).normal(size=(2, 6, 3))
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Sigmoid", ["a"], ["sa"]),
        helper.make_node("Concat", ["b", "sa", "k"], ["c"], axis=1),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["t"], ["y"], axis=-1),
    ]
    inits = {"sizes": np.array([2, 4], np.int64), "k": np.ones((2, 1, 3), np.float32)}
    model = from_onnx(_model(nodes, {"x": [2, 6, 3]}, ["y"], inits))
    want = model(x)

    def job(session):
        return model(cl.cryptensor(x if session.rank == 0 else None, src=0)).get_plain_text()

    np.testing.assert_allclose(run_parties(job, 2)[0], want, atol=1e-2)


# -- from_pytorch --------------------------------------------------------------------------
def _torch_models():
    torch = pytest.importorskip("torch")
    from crypten_lite.nn.torch_import import from_pytorch

    tn = torch.nn
    torch.manual_seed(0)
    mlp = tn.Sequential(tn.Linear(8, 16), tn.GELU(), tn.LayerNorm(16), tn.Linear(16, 3))
    cnn = tn.Sequential(
        tn.Conv2d(2, 4, 3, padding=1),
        tn.BatchNorm2d(4),
        tn.ReLU(),
        tn.AvgPool2d(2),
        tn.Conv2d(4, 4, 3, padding=1, groups=2),
        tn.Tanh(),
        tn.MaxPool2d(2),
        tn.Flatten(),
        tn.Linear(16, 5),
        tn.LogSoftmax(dim=1),
    )
    with torch.no_grad():
        cnn[1].running_mean.uniform_(-0.2, 0.2)
        cnn[1].running_var.uniform_(0.5, 1.5)
    return torch, from_pytorch, [(mlp, (4, 8)), (cnn, (3, 2, 8, 8))]


def test_from_pytorch_matches_torch():
    torch, from_pytorch, models = _torch_models()
    for module, shape in models:
        x = torch.randn(*shape)
        module.train()
        model = from_pytorch(module, x)
        assert module.training  # the mode is restored after the (eval-mode) export
        with torch.no_grad():
            want = module.eval()(x).numpy()
        np.testing.assert_allclose(model(x.numpy()), want, rtol=1e-4, atol=1e-5)
    keys = set(from_pytorch(models[0][0], torch.zeros(1, 8)).state_dict())
    assert {"0.weight", "0.bias", "3.weight", "3.bias"} <= keys


@pytest.mark.parametrize("opset", [11, 17])
def test_from_pytorch_view_split_cat_and_decomposed_layer_norm(opset):
    torch, from_pytorch, _ = _torch_models()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(2, 3, 3)
            self.fc = torch.nn.Linear(18, 4)
            self.ln = torch.nn.LayerNorm(4)

        def forward(self, x):
            y = torch.relu(self.conv(x))
            y = y.view(y.size(0), -1)
            a, b = y.split([10, 8], dim=1)
            y = torch.cat([b, a], 1)
            return torch.softmax(self.ln(self.fc(y)) / 2, dim=-1)

    net = Net().eval()
    x = torch.randn(5, 2, 8)
    model = from_pytorch(net, x, opset_version=opset)
    with torch.no_grad():
        want = net(x).numpy()
    np.testing.assert_allclose(model(x.numpy()), want, rtol=1e-4, atol=1e-6)


def test_from_pytorch_cnn_encrypted():
    torch, from_pytorch, models = _torch_models()
    module, shape = models[1]
    x = torch.randn(*shape)
    model = from_pytorch(module, x)
    want = model(x.numpy())

    def job(session):
        mine = copy.deepcopy(model).encrypt(src=0)
        data = x.numpy() if session.rank == 1 else None
        return mine(cl.cryptensor(data, src=1)).get_plain_text()

    got = run_parties(job, 2)[0]
    np.testing.assert_allclose(got, want, atol=3e-2)
    np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))
