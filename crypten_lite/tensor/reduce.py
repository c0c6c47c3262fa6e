"""Reductions, convolutions and average pooling: linear maps, so local on shares except for
the truncation that follows a product with a public real (0 rounds with 2-party local
truncation, 1 with the dealer's) and the Beaver round of a private weight."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.protocols import beaver
from crypten_lite.tensor._stubs import TensorStubs
from crypten_lite.tensor.shape import int_tuple

if TYPE_CHECKING:
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["LinearMixin"]

U64 = npt.NDArray[np.uint64]
Dims = int | str | tuple[int | str, ...] | list[int | str] | None


class LinearMixin(TensorStubs):
    """Mixed into MPCTensor (see module doc)."""

    __slots__ = ()

    # -- reductions ----------------------------------------------------------------------
    def _axes(self, dim: Dims) -> tuple[int, ...] | None:
        """Axes of ``dim`` (positions and/or names); None for all."""
        if dim is None:
            return None
        dims = (dim,) if isinstance(dim, int | np.integer | str) else tuple(dim)
        return tuple(self._axis(d) for d in dims)

    def sum(self, dim: Dims = None, keepdim: bool = False) -> MPCTensor:
        """Sum over ``dim`` (positions or names; all if None); reduced names are dropped
        unless ``keepdim``. Local."""
        self._require_arith()
        axes = self._axes(dim)
        out = np.asarray(np.sum(self._share, axis=axes, keepdims=keepdim, dtype=np.uint64))
        kept = (
            range(self._share.ndim)
            if keepdim
            else [i for i in range(self._share.ndim) if axes is not None and i not in axes]
        )
        return self._wrap(out, names=[self.names[i] for i in kept])

    def mean(self, dim: Dims = None, keepdim: bool = False) -> MPCTensor:
        """Mean over ``dim``: a local sum times the public ``1/n`` (one truncation)."""
        axes = self._axes(dim)
        count = self._share.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        if count == 0:
            raise ValueError("mean of an empty dimension")
        return self.sum(dim, keepdim)._mul_public(np.array(1.0 / count))

    def var(self, dim: Dims = None, keepdim: bool = False, unbiased: bool = True) -> MPCTensor:
        """Variance (unbiased by default, like torch). 1 Beaver round + 2 truncations."""
        axes = self._axes(dim)
        count = self._share.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        if count - int(unbiased) <= 0:
            raise ValueError("var needs at least 2 elements along dim (unbiased)")
        centered = self.sub(self.mean(dim, keepdim=True))
        squares = centered.mul(centered).sum(dim, keepdim)
        return squares._mul_public(np.array(1.0 / (count - int(unbiased))))

    # -- convolutions --------------------------------------------------------------------
    def _conv(
        self,
        dims: int,
        weight: Any,
        bias: Any,
        stride: int | tuple[int, ...],
        padding: int | tuple[int, ...],
        dilation: int | tuple[int, ...],
        groups: int,
    ) -> MPCTensor:
        self._require_arith()
        if self._share.ndim != dims + 2:
            raise ValueError(
                f"conv{dims}d expects input of {dims + 2} dims (N, C, ...), got shape {self.shape}"
            )
        st, pd, dl = (
            int_tuple(v, dims, n)
            for v, n in ((stride, "stride"), (padding, "padding"), (dilation, "dilation"))
        )
        conv = ring.conv1d if dims == 1 else ring.conv2d
        if hasattr(weight, "share"):
            self._check_other(weight)
            out = beaver.conv(self.session, self._share, weight.share, st, pd, dl, groups)
        else:
            out = conv(
                self._share,
                self._encode_public(weight),
                stride=st,
                padding=pd,
                dilation=dl,
                groups=groups,
            )
        result = self._wrap(out).truncate(self.precision)
        if bias is None:
            return result
        bias_shape = (1, -1) + (1,) * dims
        if hasattr(bias, "share"):
            return result.add(bias.reshape(*bias_shape))  # type: ignore[attr-defined]
        return result.add(np.asarray(bias, dtype=np.float64).reshape(bias_shape))

    def conv1d(
        self,
        weight: Any,
        bias: Any = None,
        stride: int | tuple[int] = 1,
        padding: int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
    ) -> MPCTensor:
        """torch.nn.functional.conv1d; weight public or private. Private weight: 1 round."""
        return self._conv(1, weight, bias, stride, padding, dilation, groups)

    def conv2d(
        self,
        weight: Any,
        bias: Any = None,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
    ) -> MPCTensor:
        """torch.nn.functional.conv2d; weight public or private. Private weight: 1 round."""
        return self._conv(2, weight, bias, stride, padding, dilation, groups)

    def conv_transpose2d(
        self,
        weight: Any,
        bias: Any = None,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        dilation: int | tuple[int, int] = 1,
    ) -> MPCTensor:
        """torch.nn.functional.conv_transpose2d (weight ``(C_in, C_out/groups, kH, kW)``), as a
        convolution of the zero-upsampled input with the flipped, transposed kernel."""
        st, pd, op, dl = (
            int_tuple(v, 2, n)
            for v, n in (
                (stride, "stride"),
                (padding, "padding"),
                (output_padding, "output_padding"),
                (dilation, "dilation"),
            )
        )
        n, c_in, h, w = self.shape
        up = np.zeros((n, c_in, (h - 1) * st[0] + 1, (w - 1) * st[1] + 1), dtype=np.uint64)
        up[:, :, :: st[0], :: st[1]] = self._share
        w_shape = weight.shape
        k = w_shape[2:]
        lo = [dl[i] * (k[i] - 1) - pd[i] for i in range(2)]
        if min(lo) < 0:
            raise ValueError("conv_transpose2d: padding larger than dilation * (kernel - 1)")
        up = np.pad(up, ((0, 0), (0, 0), (lo[0], lo[0] + op[0]), (lo[1], lo[1] + op[1])))

        def flip_transpose(arr: Any) -> Any:
            g = groups
            a = arr.reshape(g, w_shape[0] // g, w_shape[1], *k)
            a = np.swapaxes(a, 1, 2).reshape(w_shape[1] * g, w_shape[0] // g, *k)
            return np.flip(a, axis=(-2, -1))

        if hasattr(weight, "share"):
            kernel = weight._wrap(np.ascontiguousarray(flip_transpose(weight.share)))
        else:
            kernel = np.ascontiguousarray(flip_transpose(np.asarray(weight, dtype=np.float64)))
        return self._wrap(up).conv2d(
            kernel, bias, stride=1, padding=0, dilation=(dl[0], dl[1]), groups=groups
        )

    # -- average pooling -----------------------------------------------------------------
    def avg_pool2d(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> MPCTensor:
        """torch avg_pool2d (count_include_pad=True): local window sums times 1/k."""
        if self._share.ndim not in (3, 4):
            raise ValueError(f"avg_pool2d expects (N, C, H, W) or (C, H, W), got {self.shape}")
        ks = int_tuple(kernel_size, 2, "kernel_size")
        st = ks if stride is None else int_tuple(stride, 2, "stride")
        pd = int_tuple(padding, 2, "padding")
        x = self._share if self._share.ndim == 4 else self._share[None]
        c = x.shape[1]
        ones = np.ones((c, 1, *ks), dtype=np.uint64)
        sums = ring.conv2d(x, ones, stride=st, padding=pd, groups=c)
        out = self._wrap(sums if self._share.ndim == 4 else sums[0])
        return out._mul_public(np.array(1.0 / (ks[0] * ks[1])))

    def adaptive_avg_pool2d(self, output_size: int | tuple[int, int]) -> MPCTensor:
        """torch adaptive_avg_pool2d: window ``[floor(i H / o), ceil((i+1) H / o))``."""
        out_h, out_w = int_tuple(output_size, 2, "output_size")
        h, w = self.shape[-2:]
        rows = [(i * h // out_h, -(-(i + 1) * h // out_h)) for i in range(out_h)]
        cols = [(j * w // out_w, -(-(j + 1) * w // out_w)) for j in range(out_w)]
        sums = np.stack(
            [
                np.stack(
                    [
                        np.sum(self._share[..., r0:r1, c0:c1], axis=(-2, -1), dtype=np.uint64)
                        for c0, c1 in cols
                    ],
                    axis=-1,
                )
                for r0, r1 in rows
            ],
            axis=-2,
        )
        counts = np.array(
            [[(r1 - r0) * (c1 - c0) for c0, c1 in cols] for r0, r1 in rows], dtype=np.float64
        )
        return self._wrap(sums)._mul_public(1.0 / counts)
