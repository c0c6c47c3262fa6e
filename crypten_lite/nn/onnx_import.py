"""Import an ONNX model as a crypten_lite :class:`~crypten_lite.nn.Module`.

:func:`from_onnx` parses the graph once (onnx is needed only here, and is imported lazily:
``pip install onnx``) into a :class:`GraphModule`. The module holds the graph's floating
point initializers as parameters under their ONNX names (for a torch export these are
torch's ``state_dict`` keys, e.g. ``"0.weight"``), so ``encrypt(src=)``, ``decrypt()``,
``state_dict()`` and ``load_state_dict()`` work as for hand-built models. Integer
initializers (shapes, axes) are public buffers, and 0-d floating initializers are public
constants (they are scalars of the computation, such as ``sqrt(2)`` in an exported GELU,
not weights). Calling the module evaluates the nodes in topological order on numpy
arrays or MPCTensors; see ``docs/onnx_ops.md`` for the supported operators.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crypten_lite.nn.module import Module
from crypten_lite.nn.onnx_ops import OPS, OnnxNode, UnsupportedOperatorError
from crypten_lite.tensor import MPCTensor

__all__ = [
    "GraphModule",
    "OnnxNodeModule",
    "UnsupportedOperatorError",
    "from_onnx",
    "supported_ops",
]

_DEFAULT_DOMAINS = ("", "ai.onnx")


def supported_ops() -> list[str]:
    """The ONNX op types :func:`from_onnx` can evaluate (default domain), sorted."""
    return sorted(OPS)


def _topological(nodes: Sequence[OnnxNode], available: set[str]) -> list[OnnxNode]:
    """Nodes in an order where every input is produced before use (stable Kahn sort)."""
    ready = set(available) | {""}
    pending = list(nodes)
    order: list[OnnxNode] = []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.inputs)]
        done = [n for n in pending if all(i in ready for i in n.inputs)]
        if not done:
            node = rest[0]
            missing = sorted(i for i in node.inputs if i not in ready)
            raise ValueError(
                f"ONNX node {node.name!r} ({node.op_type}) reads {missing}, which no graph "
                "input, initializer or node produces (or the graph has a cycle)"
            )
        for node in done:
            order.append(node)
            ready.update(node.outputs)
        pending = rest
    return order


class OnnxNodeModule(Module):
    """One node of an imported graph as a child module of its :class:`GraphModule` (as
    CrypTen exposes a graph's nodes in ``_modules``): ``node`` is the parsed
    :class:`~crypten_lite.nn.onnx_ops.OnnxNode`; ``input_names`` / ``output_names`` name the
    values it reads and writes. It holds no parameters (the graph owns them under their
    ONNX names); calling it with its input values runs the node alone (a list of outputs
    for a multi-output node)."""

    def __init__(self, node: OnnxNode) -> None:
        super().__init__()
        self.node = node

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.node.inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.node.outputs

    def extra_repr(self) -> str:
        return f"{self.node.op_type}: {list(self.node.inputs)} -> {list(self.node.outputs)}"

    def forward(self, *args: Any) -> Any:
        values = list(args)
        while values and values[-1] is None:  # trailing absent optional inputs
            values.pop()
        results = OPS[self.node.op_type](self.node, values)
        return results[0] if len(self.node.outputs) == 1 else results


class GraphModule(Module):
    """An ONNX graph as a Module: initializers are parameters/buffers, ``forward`` runs the
    nodes in order with the :data:`~crypten_lite.nn.onnx_ops.OPS` dispatch table.

    Each node is also a child module (:class:`OnnxNodeModule`) under its node name, in
    topological order: ``model._modules["/fc1/Gemm"]``, ``dict(model.named_children())``,
    ``model.node_module(name)`` (by node name or by one of its output names). Children hold
    no parameters, so ``state_dict`` keys stay the ONNX initializer names.
    ``input_shapes`` (from the graph's declared inputs; ``None`` for a dynamic dim such as
    a dynamic batch) are checked when the module is called."""

    def __init__(
        self,
        nodes: Sequence[OnnxNode],
        inputs: Sequence[str],
        outputs: Sequence[str],
        initializers: Mapping[str, np.ndarray[Any, Any]],
        input_shapes: Sequence[Sequence[int | str | None] | None] | None = None,
    ) -> None:
        super().__init__()
        constants: dict[str, np.ndarray[Any, Any]] = {}
        for name, value in initializers.items():
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(np.float64)
                if value.ndim == 0:
                    constants[name] = value
                else:
                    self.register_parameter(name, value)
            else:
                self.register_buffer(name, value)
        available = set(inputs) | set(initializers)
        for node in nodes:
            if node.op_type not in OPS:
                raise UnsupportedOperatorError(
                    f"ONNX node {node.name!r} uses unsupported op {node.op_type!r}"
                )
        self.nodes: tuple[OnnxNode, ...] = tuple(_topological(nodes, available))
        self.input_names: tuple[str, ...] = tuple(inputs)
        self.output_names: tuple[str, ...] = tuple(outputs)
        self.constants: dict[str, np.ndarray[Any, Any]] = constants
        shapes = list(input_shapes) if input_shapes is not None else [None] * len(inputs)
        if len(shapes) != len(self.input_names):
            raise ValueError("GraphModule: input_shapes must list one shape per input")
        self.input_shapes: tuple[tuple[int | str | None, ...] | None, ...] = tuple(
            None if s is None else tuple(s) for s in shapes
        )
        modules = self._tables()[2]
        for node in self.nodes:
            if node.name in modules:
                raise ValueError(f"ONNX graph has two nodes named {node.name!r}")
            modules[node.name] = OnnxNodeModule(node)

    def node_module(self, name: str) -> OnnxNodeModule:
        """The child module of the node named ``name`` (or producing the value ``name``)."""
        modules = self._tables()[2]
        found = modules.get(name)
        if isinstance(found, OnnxNodeModule):
            return found
        for module in modules.values():
            if isinstance(module, OnnxNodeModule) and name in module.output_names:
                return module
        raise KeyError(f"GraphModule has no node named or producing {name!r}")

    def _check_input(self, index: int, value: Any) -> None:
        expected = self.input_shapes[index]
        if expected is None:
            return
        got = tuple(int(n) for n in value.shape)
        fits = len(got) == len(expected) and all(
            not isinstance(e, int) or e <= 0 or e == g for e, g in zip(expected, got, strict=True)
        )
        if not fits:
            shown = tuple(e if isinstance(e, int) and e > 0 else (e or "?") for e in expected)
            dynamic = "" if any(not isinstance(e, int) for e in expected) else (
                " (the graph was exported with static shapes; export it with a dynamic batch "
                "dimension, e.g. from_pytorch(..., dynamic_batch=True), to run other batches)"
            )
            raise ValueError(
                f"GraphModule: input {self.input_names[index]!r} expects shape "
                f"{shown}, got {got}{dynamic}"
            )

    def extra_repr(self) -> str:
        return (
            f"inputs={list(self.input_names)}, outputs={list(self.output_names)}, "
            f"nodes={len(self.nodes)}"
        )

    def forward(self, *args: Any) -> Any:
        if len(args) != len(self.input_names):
            raise TypeError(
                f"GraphModule takes {len(self.input_names)} input(s) "
                f"{list(self.input_names)}, got {len(args)}"
            )
        params, buffers, _ = self._tables()
        env: dict[str, Any] = {**self.constants, **buffers, **params}
        for index, (name, value) in enumerate(zip(self.input_names, args, strict=True)):
            if not isinstance(value, MPCTensor):
                value = np.asarray(value)
                if np.issubdtype(value.dtype, np.floating):
                    value = value.astype(np.float64)
            self._check_input(index, value)
            env[name] = value
        for node in self.nodes:
            values = [env[i] if i else None for i in node.inputs]
            while values and values[-1] is None:  # trailing absent optional inputs
                values.pop()
            results = OPS[node.op_type](node, values)
            for name, value in zip(node.outputs, results, strict=False):
                if name:
                    env[name] = value
        outs = tuple(env[name] for name in self.output_names)
        return outs[0] if len(outs) == 1 else outs


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import AttributeProto, helper, numpy_helper

    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type == AttributeProto.TENSOR:
            attrs[attr.name] = numpy_helper.to_array(attr.t)
        elif attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            raise UnsupportedOperatorError(
                f"ONNX node {node.name!r} ({node.op_type}): subgraph attribute "
                f"{attr.name!r} (control flow) is not supported"
            )
        else:
            value = helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list):
                value = [v.decode() if isinstance(v, bytes) else v for v in value]
            attrs[attr.name] = value
    return attrs


def _load(model: Any) -> Any:
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes | bytearray | memoryview):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, str | os.PathLike):
        return onnx.load(os.fspath(model))
    raise TypeError(
        f"from_onnx expects an onnx.ModelProto, a path or bytes, got {type(model).__name__}"
    )


def from_onnx(model: Any) -> GraphModule:
    """A :class:`GraphModule` from an ``onnx.ModelProto``, a path to a ``.onnx`` file or
    the serialized bytes. Raises :class:`UnsupportedOperatorError` (a ``ValueError``) naming
    the node and op for anything outside the supported set (``supported_ops()``)."""
    try:
        from onnx import numpy_helper
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("from_onnx needs the optional 'onnx' package: pip install onnx") from err

    proto = _load(model)
    opset = next((int(o.version) for o in proto.opset_import if o.domain in _DEFAULT_DOMAINS), 13)
    graph = proto.graph
    initializers = {init.name: np.array(numpy_helper.to_array(init)) for init in graph.initializer}
    declared = [i for i in graph.input if i.name not in initializers]
    inputs = [i.name for i in declared]
    nodes: list[OnnxNode] = []
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.domain not in _DEFAULT_DOMAINS:
            raise UnsupportedOperatorError(
                f"ONNX node {name!r} uses unsupported op {node.domain}::{node.op_type!r}"
            )
        if node.op_type not in OPS:
            raise UnsupportedOperatorError(
                f"ONNX node {name!r} uses unsupported op {node.op_type!r}"
            )
        nodes.append(
            OnnxNode(
                name=name,
                op_type=node.op_type,
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                attrs=_attributes(node),
                opset=opset,
            )
        )
    shapes = [_declared_shape(i) for i in declared]
    return GraphModule(nodes, inputs, [o.name for o in graph.output], initializers, shapes)


def _declared_shape(value_info: Any) -> tuple[int | str | None, ...] | None:
    """A graph input's declared dims: ints, the name of a symbolic dim, or None; None
    when the input declares no shape."""
    kind = value_info.type
    if not kind.HasField("tensor_type") or not kind.tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for dim in kind.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(str(dim.dim_param))
        else:
            dims.append(None)
    return tuple(dims)
