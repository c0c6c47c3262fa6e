"""Import a torch ``nn.Module`` by exporting it to ONNX in memory, then :func:`from_onnx`.

Uses torch's TorchScript-based exporter (``dynamo=False``), which needs only torch and
onnx (the dynamo exporter would also need ``onnxscript``), with constant folding so shape
arithmetic is folded where possible; what remains is evaluated on the (public) shapes.
The module is exported in eval mode, so BatchNorm uses its running statistics (the
exporter may fold a BatchNorm into the preceding convolution).

Weights can also be copied without ONNX: a crypten_lite model built with the same
architecture loads a torch ``state_dict`` directly with ``Module.load_state_dict`` (same
key names and layouts). The :class:`GraphModule` returned here names its parameters by
the torch ``state_dict`` keys as well, wherever the exporter kept them unfolded.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from crypten_lite.nn.onnx_import import GraphModule, from_onnx

__all__ = ["from_pytorch"]


def from_pytorch(
    module: Any, example_input: Any, *, opset_version: int | None = None
) -> GraphModule:
    """Export ``module`` (a ``torch.nn.Module``) traced on ``example_input`` (a torch
    tensor, a numpy array, or a tuple of them) to ONNX in memory and import it. Shapes are
    static: the graph is specialised to the example's shapes. Needs torch and onnx."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("from_pytorch needs torch") from err

    items = example_input if isinstance(example_input, tuple) else (example_input,)
    args = tuple(
        x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float32) for x in items
    )
    buffer = io.BytesIO()
    target: Any = buffer  # the TorchScript exporter accepts file objects; torch types say paths
    was_training = bool(module.training)
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                target,
                dynamo=False,
                do_constant_folding=True,
                opset_version=opset_version,
            )
    finally:
        module.train(was_training)
    return from_onnx(buffer.getvalue())
