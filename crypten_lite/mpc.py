"""Share types of an :class:`~crypten_lite.tensor.MPCTensor`, CrypTen-style:
``x.to(cl.mpc.binary)`` / ``x.to(cl.mpc.arithmetic)``."""

from __future__ import annotations

from crypten_lite.sharing import ARITHMETIC as arithmetic
from crypten_lite.sharing import BINARY as binary

__all__ = ["arithmetic", "binary", "ptypes"]

ptypes = (arithmetic, binary)
