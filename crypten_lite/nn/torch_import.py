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
import threading
import warnings
from typing import Any

from crypten_lite.nn.onnx_import import GraphModule, from_onnx

__all__ = ["from_pytorch"]


# torch's exporters keep global state (the tracing state, export flags, the ONNX registry):
# two in-process parties exporting at the same time would corrupt each other's export.
_EXPORT_LOCK = threading.Lock()

_MISSING: Any = object()


def from_pytorch(
    module: Any,
    example_input: Any = _MISSING,
    *,
    dummy_input: Any = _MISSING,
    opset_version: int | None = None,
    dynamic_batch: bool = True,
) -> GraphModule:
    """Export ``module`` (a ``torch.nn.Module``) traced on ``example_input`` (a torch
    tensor, a numpy array, or a tuple of them; CrypTen's name ``dummy_input=`` is accepted as
    a keyword alias) to ONNX in memory and import it. Needs torch and onnx.

    ``dynamic_batch=True`` (default) exports dim 0 of every input and output as a symbolic
    ``"batch"`` dim, so the model runs on any batch size (shape arithmetic is evaluated on
    the public shapes at run time); with ``False`` the graph is specialised to the
    example's shapes and another batch size raises a ValueError naming the expected shape.
    Exports are serialised by a process-wide lock (torch's exporter keeps global state), so
    in-process parties may call this at the same time."""
    if example_input is not _MISSING and dummy_input is not _MISSING:
        raise TypeError("from_pytorch: pass example_input or dummy_input, not both")
    if example_input is _MISSING:
        example_input = dummy_input
    if example_input is _MISSING:
        raise TypeError("from_pytorch: missing the example input (example_input / dummy_input)")
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"from_pytorch: dynamic_batch must be a bool, got {dynamic_batch!r}")
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("from_pytorch needs torch") from err

    items = example_input if isinstance(example_input, tuple) else (example_input,)
    args = tuple(
        x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float32) for x in items
    )
    if dynamic_batch and any(a.dim() == 0 for a in args):
        raise ValueError("from_pytorch: dynamic_batch needs inputs with a batch dim (dim 0)")
    buffer = io.BytesIO()
    target: Any = buffer  # the TorchScript exporter accepts file objects; torch types say paths
    options: dict[str, Any] = {}
    with _EXPORT_LOCK:
        was_training = bool(module.training)
        module.eval()
        try:
            if dynamic_batch:
                with torch.no_grad():
                    result = module(*args)
                n_out = len(result) if isinstance(result, tuple | list) else 1
                input_names = [f"input_{i}" for i in range(len(args))]
                output_names = [f"output_{i}" for i in range(n_out)]
                options = {
                    "input_names": input_names,
                    "output_names": output_names,
                    "dynamic_axes": {n: {0: "batch"} for n in (*input_names, *output_names)},
                }
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    args,
                    target,
                    dynamo=False,
                    do_constant_folding=True,
                    opset_version=opset_version,
                    **options,
                )
        finally:
            module.train(was_training)
    return from_onnx(buffer.getvalue())
