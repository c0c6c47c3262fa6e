"""L5: MPCTensor, the secret-shared tensor users compute with."""

from __future__ import annotations

from crypten_lite.tensor.core import MPCTensor, cryptensor
from crypten_lite.tensor.parity import is_encrypted_tensor, where
from crypten_lite.tensor.shape import cat, stack

__all__ = ["MPCTensor", "cat", "cryptensor", "is_encrypted_tensor", "stack", "where"]
