"""L6: named dimensions. ``MPCTensor`` carries names itself (``cryptensor(..., names=...)``);
this package adds the plaintext ``NamedArray`` with the same rules."""

from __future__ import annotations

from crypten_lite.named.array import NamedArray
from crypten_lite.tensor.names import unify_from_right

__all__ = ["NamedArray", "unify_from_right"]
