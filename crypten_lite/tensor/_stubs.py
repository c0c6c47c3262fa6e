"""Typing-only declarations of what the MPCTensor mixins use from ``MPCTensor`` itself.

The mixins (shape, reductions, comparisons, approximations) each implement one concern of
``MPCTensor``; this base tells the type checker what the finished class provides. It adds no
runtime code and no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from crypten_lite.session import Session
    from crypten_lite.tensor.core import MPCTensor
    from crypten_lite.tensor.names import Names

__all__ = ["TensorStubs"]

U64 = npt.NDArray[np.uint64]


class TensorStubs:
    """What the mixins may rely on (see module doc)."""

    __slots__ = ()
    _share: U64

    if TYPE_CHECKING:
        precision: int
        ptype: str

        def _wrap(
            self,
            share: U64,
            precision: int | None = None,
            ptype: str | None = None,
            names: Sequence[str | None] | None = None,
        ) -> MPCTensor: ...

        @property
        def shape(self) -> tuple[int, ...]: ...

        @property
        def names(self) -> Names: ...

        @property
        def session(self) -> Session: ...

        def _axis(self, dim: Any) -> int: ...
        def _require_arith(self) -> None: ...
        def _debug_compare(self, op: str, operands: Sequence[Any]) -> None: ...
        def _check_other(self, other: MPCTensor, *, integer_ok: bool = False) -> None: ...
        def _encode_public(self, value: Any) -> U64: ...
        def _mul_public(self, value: Any) -> MPCTensor: ...
        def _add_masked_public(self, mask: npt.NDArray[np.bool_], value: float) -> MPCTensor: ...
        def truncate(self, bits: int) -> MPCTensor: ...
        def add(self, other: Any) -> MPCTensor: ...
        def sub(self, other: Any) -> MPCTensor: ...
        def mul(self, other: Any) -> MPCTensor: ...
        def neg(self) -> MPCTensor: ...
