"""``QuantStub`` / ``DeQuantStub``: mark where a model switches between float and int8.

Before ``convert`` both are identities (``QuantStub`` gets an activation observer from
``prepare``, which calibrates the model's input qparams); ``convert`` swaps them for
``Quantize`` / ``DeQuantize``. ``QuantWrapper`` puts a stub pair around a module.
"""

from __future__ import annotations

from typing import Any

from crypten_lite.nn import Module

__all__ = ["DeQuantStub", "PassThrough", "QuantStub", "QuantWrapper"]


class _Stub(Module):
    """An identity marker (forward and QAT backward) that ``convert`` replaces."""

    def __init__(self, qconfig: Any = None) -> None:
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, *args: Any) -> Any:
        return args[0]

    def backward(self, grad_output: Any) -> Any:
        """Identity (QAT: the fake-quant observer attached by ``prepare_qat`` clips)."""
        return grad_output


class QuantStub(_Stub):
    """Identity until ``convert`` turns it into ``Quantize`` (float -> int8)."""


class DeQuantStub(_Stub):
    """Identity until ``convert`` turns it into ``DeQuantize`` (int8 -> float)."""


class QuantWrapper(Module):
    """``dequant(module(quant(x)))``; the wrapped module's ``qconfig`` is copied to the stubs."""

    def __init__(self, module: Module) -> None:
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.quant = QuantStub(qconfig)
        self.dequant = DeQuantStub(qconfig)
        self.module = module

    def forward(self, *args: Any) -> Any:
        return self.dequant(self.module(self.quant(args[0])))


class PassThrough(Module):
    """Returns its input, whatever it is (an int8 ``QTensor`` included): what ``convert``
    puts in place of the ``Identity`` left behind by fusion; also the QAT identity."""

    def forward(self, *args: Any) -> Any:
        return args[0]

    def backward(self, grad_output: Any) -> Any:
        return grad_output

    @classmethod
    def from_float(cls, mod: Module) -> PassThrough:
        return cls()
