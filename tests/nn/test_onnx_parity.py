"""ONNX import additions: ConvTranspose, Pad, Where, Gather (private data), Slice,
ReduceMean, Clip, unbatched Conv/pool, training-mode BatchNormalization, ceil_mode
pooling; per-node modules; from_pytorch's dummy_input alias, lock and dynamic batch.
Each op: a small onnx.helper graph against a numpy reference, plaintext and encrypted."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from crypten_lite.nn import from_onnx, from_pytorch  # noqa: E402
from crypten_lite.nn.onnx_import import OnnxNodeModule  # noqa: E402
from crypten_lite.nn.onnx_ops import UnsupportedOperatorError  # noqa: E402

RNG = np.random.default_rng(3)


def _model(nodes, shape, inits=None, opset=17, outputs=("y",)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()],
    )
    return from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def _check(nodes, x, want, inits=None, opset=17, atol=1e-9, mpc_atol=2e-2, world=2):
    model = _model(nodes, x.shape, inits, opset)
    np.testing.assert_allclose(model(x), want, atol=atol, rtol=1e-6)

    def job(session):
        return model(cl.cryptensor(x, src=0)).get_plain_text()

    np.testing.assert_allclose(run_parties(job, world)[0], want, atol=mpc_atol, rtol=1e-2)
    return model


def _conv_transpose_ref(x, w, stride, pad, out_pad, dil, groups):
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    oh = (h - 1) * stride[0] - 2 * pad[0] + dil[0] * (kh - 1) + out_pad[0] + 1
    ow = (wd - 1) * stride[1] - 2 * pad[1] + dil[1] * (kw - 1) + out_pad[1] + 1
    full = np.zeros((n, cog * groups, oh + 2 * pad[0] + kh * dil[0], ow + 2 * pad[1] + kw * dil[1]))
    cig = cin // groups
    for c in range(cin):
        g = c // cig
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for b in range(kw):
                        full[
                            :,
                            g * cog : (g + 1) * cog,
                            i * stride[0] + a * dil[0],
                            j * stride[1] + b * dil[1],
                        ] += x[:, c, i, j, None] * w[c, :, a, b]
    return full[:, :, pad[0] : pad[0] + oh, pad[1] : pad[1] + ow]


@pytest.mark.parametrize("world", [2, 3])
def test_conv_transpose_2d(world):
    x, w, b = RNG.normal(size=(2, 4, 3, 4)), RNG.normal(size=(4, 3, 3, 2)), RNG.normal(size=6)
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w", "b"],
        ["y"],
        strides=[2, 1],
        pads=[1, 0, 1, 0],
        output_padding=[1, 0],
        group=2,
    )
    want = _conv_transpose_ref(x, w, (2, 1), (1, 0), (1, 0), (1, 1), 2) + b.reshape(1, -1, 1, 1)
    _check([node], x, want, {"w": w, "b": b}, world=world)


def test_conv_transpose_1d_unbatched_and_errors():
    x, w = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 2, 3))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2], dilations=[2])
    ref = _conv_transpose_ref(x[None, :, None], w[:, :, None], (1, 2), (0, 0), (0, 0), (1, 2), 1)
    _check([node], x, ref[0, :, 0], {"w": w})
    bad = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="ct", output_shape=[9])
    with pytest.raises(UnsupportedOperatorError, match=r"'ct'.*output_shape"):
        _model([bad], x.shape, {"w": w})(x)


def test_conv_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = RNG.normal(size=(1, 2, 4, 4)), RNG.normal(size=(2, 3, 3, 3))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])
    want = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(w), stride=2, padding=1
    )
    np.testing.assert_allclose(_model([node], x.shape, {"w": w})(x), want.numpy(), atol=1e-9)


def test_pad_constant():
    x = RNG.normal(size=(2, 3, 4))
    inits = {"pads": np.array([0, 1, 2, 0, 2, 1], np.int64), "v": np.array(1.5, np.float32)}
    node = helper.make_node("Pad", ["x", "pads", "v"], ["y"])
    _check([node], x, np.pad(x, ((0, 0), (1, 2), (2, 1)), constant_values=1.5), inits)
    axes = {"pads": np.array([1, 3], np.int64), "axes": np.array([-1], np.int64)}
    node = helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], name="pa")
    _check([node], x, np.pad(x, ((0, 0), (0, 0), (1, 3))), axes, opset=18)
    reflect = helper.make_node("Pad", ["x", "pads"], ["y"], name="pr", mode="reflect")
    with pytest.raises(UnsupportedOperatorError, match=r"'pr'.*reflect"):
        _model([reflect], x.shape, {"pads": inits["pads"]})(x)


def test_where_public_condition_private_branches():
    x = RNG.normal(size=(3, 4))
    cond = RNG.random((3, 4)) > 0.5
    other = RNG.normal(size=(4,))
    node = helper.make_node("Where", ["c", "x", "o"], ["y"])
    _check([node], x, np.where(cond, x, other), {"c": cond, "o": other})
    node = helper.make_node("Where", ["c", "o", "x"], ["y"])
    _check([node], x, np.where(cond, other, x), {"c": cond, "o": other})


def test_gather_private_data():
    x = RNG.normal(size=(4, 5, 3))
    idx = np.array([[3, -1], [0, 0]], np.int64)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=1)
    _check([node], x, np.take(x, idx, axis=1), {"i": idx})
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=0)
    _check([node], x, x[2], {"i": np.array(2, np.int64)})
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="gb", axis=0)
    m = _model([node], x.shape, {"i": np.array([7], np.int64)})
    with pytest.raises(Exception, match=r"'gb'.*out of range"):
        run_parties(lambda s: m(cl.cryptensor(x)), 2)


def test_slice_and_reduce_mean_private():
    x = RNG.normal(size=(4, 6, 5))
    inits = {
        "s": np.array([1, -1], np.int64),
        "e": np.array([6, -6], np.int64),
        "a": np.array([1, 2], np.int64),
        "st": np.array([2, -1], np.int64),
    }
    node = helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])
    _check([node], x, x[:, 1:6:2, -1:-6:-1], inits)
    node = helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=0)
    _check([node], x, x.mean(axis=(0, 2)), {"ax": np.array([0, -1], np.int64)}, opset=18)


def test_clip():
    x = RNG.uniform(-3, 3, size=(4, 5))
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    lo, hi = np.array(-1.0, np.float32), np.array(0.5, np.float32)
    _check([node], x, np.clip(x, -1.0, 0.5), {"lo": lo, "hi": hi})
    node = helper.make_node("Clip", ["x", "", "hi"], ["y"])
    _check([node], x, np.minimum(x, 0.5), {"hi": hi})
    node = helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0)
    _check([node], x, np.clip(x, 0, 6), opset=10)


def test_unbatched_conv_and_pool():
    x, w = RNG.normal(size=(2, 6, 5)), RNG.normal(size=(3, 2, 3, 2))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    batched = _model([conv], (1, 2, 6, 5), {"w": w})(x[None])
    _check([conv], x, batched[0], {"w": w})
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    _check([pool], x, x[:, :6, :4].reshape(2, 3, 2, 2, 2).max(axis=(2, 4)))
    avg = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3], strides=[3])
    x1 = RNG.normal(size=(3, 9))
    _check([avg], x1, x1.reshape(3, 3, 3).mean(-1))


def test_batch_norm_training_mode():
    x = RNG.normal(size=(4, 3, 2, 2)) * 2 + 1
    scale, bias = RNG.normal(size=3), RNG.normal(size=3)
    mean, var = np.zeros(3), np.ones(3)
    mu, sig2 = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    want = (x - mu.reshape(1, 3, 1, 1)) / np.sqrt(sig2.reshape(1, 3, 1, 1) + 1e-5)
    want = want * scale.reshape(1, 3, 1, 1) + bias.reshape(1, 3, 1, 1)
    inits = {"s": scale, "b": bias, "m": mean, "v": var}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1)
    _check([node], x, want, inits, mpc_atol=5e-2)
    node = helper.make_node(
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        ["y", "rm", "rv"],
        training_mode=1,
        momentum=0.8,
    )
    model = _model([node], x.shape, inits, outputs=("y", "rm", "rv"))
    _, rm, rv = model(x)
    np.testing.assert_allclose(rm, 0.2 * mu, atol=1e-9)
    np.testing.assert_allclose(rv, 0.8 + 0.2 * sig2, atol=1e-9)


def _pool_ref(x, k, s, p, kind, include_pad):
    """ceil_mode pooling over the last dim (torch's rule)."""
    length = x.shape[-1]
    out = math.ceil((length + 2 * p - k) / s) + 1
    if (out - 1) * s >= length + p:
        out -= 1
    res = []
    for i in range(out):
        lo, hi = i * s - p, i * s - p + k
        real = x[..., max(lo, 0) : min(hi, length)]
        if kind == "max":
            res.append(real.max(-1))
        else:
            count = (min(hi, length + p) - lo) if include_pad else real.shape[-1]
            res.append(real.sum(-1) / count)
    return np.stack(res, -1)


@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("include_pad", [0, 1])
def test_ceil_mode_pooling(kind, include_pad):
    x = RNG.normal(size=(2, 3, 8))
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1}
    if kind == "AveragePool":
        attrs["count_include_pad"] = include_pad
    node = helper.make_node(kind, ["x"], ["y"], **attrs)
    want = _pool_ref(x, 3, 2, 1, "max" if kind == "MaxPool" else "avg", include_pad)
    assert want.shape == (2, 3, 5)
    _check([node], x, want)
    x2 = RNG.normal(size=(1, 2, 5, 5))
    node2 = helper.make_node(kind, ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    model = _model([node2], x2.shape)
    assert model(x2).shape == (1, 2, 3, 3)


def test_ceil_mode_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(1, 2, 7, 6))
    tx = torch.tensor(x)
    for kind, fn, extra in (
        ("MaxPool", torch.nn.functional.max_pool2d, {}),
        ("AveragePool", torch.nn.functional.avg_pool2d, {"count_include_pad": 0}),
    ):
        node = helper.make_node(
            kind,
            ["x"],
            ["y"],
            kernel_shape=[3, 2],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            ceil_mode=1,
            **extra,
        )
        kw = {"count_include_pad": False} if extra else {}
        want = fn(tx, (3, 2), (2, 2), (1, 1), ceil_mode=True, **kw).numpy()
        np.testing.assert_allclose(_model([node], x.shape)(x), want, atol=1e-12)


# -- graph access and from_pytorch --------------------------------------------------------
def test_graph_node_modules():
    w = RNG.normal(size=(3, 4))
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="act"),
    ]
    model = _model(nodes, (2, 4), {"w": w})
    assert list(model._modules) == ["fc", "act"]
    children = dict(model.named_children())
    assert isinstance(children["fc"], OnnxNodeModule) and children["fc"].op_type == "Gemm"
    assert model.node_module("h") is children["fc"] and model.act.input_names == ("h",)
    assert list(model.state_dict()) == ["w"]
    x = RNG.normal(size=(2, 4))
    np.testing.assert_allclose(children["act"](x), np.maximum(x, 0))
    with pytest.raises(KeyError, match="no node named or producing 'zz'"):
        model.node_module("zz")
    with pytest.raises(ValueError, match=r"input 'x' expects shape \(2, 4\), got \(2, 5\)"):
        model(np.zeros((2, 5)))


def _torch_net(torch):
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 3)
    )


def test_from_pytorch_dummy_input_and_dynamic_batch():
    torch = pytest.importorskip("torch")
    net = _torch_net(torch)
    x = RNG.normal(size=(2, 1, 4, 4)).astype(np.float32)
    model = from_pytorch(net, dummy_input=torch.tensor(x))
    big = RNG.normal(size=(5, 1, 4, 4)).astype(np.float32)
    want = net(torch.tensor(big)).detach().numpy()
    np.testing.assert_allclose(model(big), want, atol=1e-5)
    got = run_parties(lambda s: model(cl.cryptensor(big)).get_plain_text(), 2)[0]
    np.testing.assert_allclose(got, want, atol=5e-2)
    static = from_pytorch(net, x, dynamic_batch=False)
    with pytest.raises(ValueError, match=r"expects shape \(2, 1, 4, 4\), got \(5, 1, 4, 4\)"):
        static(big)
    with pytest.raises(TypeError, match="not both"):
        from_pytorch(net, x, dummy_input=x)
    with pytest.raises(TypeError, match="missing the example input"):
        from_pytorch(net)


def test_from_pytorch_concurrent_parties():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = _torch_net(torch)
    x = RNG.normal(size=(3, 1, 4, 4)).astype(np.float32)
    want = net(torch.tensor(x)).detach().numpy()
    barrier = threading.Barrier(3)

    def job(session):
        barrier.wait()
        model = from_pytorch(net, x)
        return model.encrypt(src=0)(cl.cryptensor(x, src=1)).get_plain_text()

    for got in run_parties(job, 3):
        np.testing.assert_allclose(got, want, atol=5e-2)
