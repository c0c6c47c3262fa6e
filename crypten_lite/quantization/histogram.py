"""``HistogramObserver``: PyTorch's histogram + L2 range search
(``torch.ao.quantization.HistogramObserver``).

Port of ``torch.ao.quantization.observer.HistogramObserver`` as shipped in torch 2.13, with its
float32 arithmetic emulated in numpy:

* a ``bins``-bin histogram over the running ``[min, max]`` (``torch.histc`` binning against
  float32 ``linspace`` edges; the maximum falls in the last bin);
* when the range grows, the old histogram is up-sampled ``upsample_rate`` times (each sub-bin
  gets ``count / rate`` at its mid point) and re-bucketed onto the new edges. torch 2.13 uses
  ``upsample_rate = 16`` (older releases documented 128); the default here follows 2.13;
* ``calculate_qparams`` runs ``_non_linear_param_search``: greedily narrow ``[start_bin,
  end_bin]`` from whichever side drops more mass per 1e-5 quantile step, estimate the L2 error
  of quantizing into ``2**bits`` destination bins, stop when it rises; then PyTorch's
  min/max formula on the narrowed range.

Slow (a Python loop, one vectorised error estimate per step): post-training calibration only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import FLOAT32_EPS
from crypten_lite.errors import QuantizationError
from crypten_lite.quantization.observers import ObserverBase, QParams

__all__ = ["HistogramObserver"]

F32 = npt.NDArray[np.float32]
f32 = np.float32


def linspace32(start: np.float32, end: np.float32, steps: int) -> F32:
    """``torch.linspace`` in float32 (the CPU kernel fills from both ends)."""
    idx = np.arange(steps)
    step = f32((end - start) / f32(max(steps - 1, 1)))
    fwd = start + step * idx.astype(np.float32)
    bwd = end - step * (steps - idx - 1).astype(np.float32)
    return np.where(idx < steps // 2, fwd, bwd).astype(np.float32)


def histc32(x: npt.NDArray[np.floating], bins: int, lo: np.float32, hi: np.float32) -> F32:
    """``torch.histc`` (float32): values outside ``[lo, hi]`` are ignored; ``hi`` counts in the
    last bin; a degenerate range ``lo == hi`` is widened to ``[lo - 1, hi + 1]``."""
    if lo == hi:
        lo, hi = f32(lo - 1), f32(hi + 1)
    v = np.asarray(x, dtype=np.float32).reshape(-1)
    v = v[(v >= lo) & (v <= hi)]
    edges = linspace32(lo, hi, bins + 1)
    pos = np.searchsorted(edges, v, side="right") - 1
    pos = np.clip(pos, 0, bins - 1)
    return np.bincount(pos, minlength=bins).astype(np.float32)


def _norm(delta_begin: Any, delta_end: Any, density: F32) -> F32:
    """``density * (end^3 - begin^3) / 3`` (float32)."""
    cubes = delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin
    return np.asarray(density * (cubes / f32(3)), dtype=np.float32)


class HistogramObserver(ObserverBase):
    """Per-tensor observer minimising the L2 quantization error over a running histogram."""

    def __init__(
        self,
        bins: int = 2048,
        dtype: Any = "quint8",
        qscheme: str = "per_tensor_affine",
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = FLOAT32_EPS,
        is_dynamic: bool = False,
        upsample_rate: int = 16,
    ) -> None:
        if is_dynamic:
            raise QuantizationError("HistogramObserver does not support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        for arg, value in (("bins", bins), ("upsample_rate", upsample_rate)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise QuantizationError(f"HistogramObserver: {arg} must be a positive int")
        self.bins = bins
        self.upsample_rate = upsample_rate
        self.dst_nbins = 2 ** (8 * self.dtype.itemsize)
        self.register_buffer("histogram", np.zeros(bins, dtype=np.float32))
        self.register_buffer("min_val", np.array(np.inf, dtype=np.float32))
        self.register_buffer("max_val", np.array(-np.inf, dtype=np.float32))

    def extra_repr(self) -> str:
        return f"bins={self.bins}, {super().extra_repr()}"

    @property
    def has_observed(self) -> bool:
        return bool(self.min_val != np.inf)

    # -- recording ---------------------------------------------------------------------------
    def _upscale(
        self,
        hist: F32,
        orig_min: np.float32,
        orig_max: np.float32,
        new_min: np.float32,
        new_max: np.float32,
    ) -> F32:
        rate = self.upsample_rate
        n = self.bins * rate
        fine = np.repeat(hist, rate) / f32(rate)
        bin_size = f32((orig_max - orig_min) / f32(n))
        mids = linspace32(orig_min, orig_max, n + 1)[:-1] + f32(0.5) * bin_size
        edges = linspace32(new_min, new_max, self.bins + 1)
        bucket = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, self.bins - 1)
        return np.bincount(bucket, weights=fine, minlength=self.bins).astype(np.float32)

    def _observe(self, x: npt.NDArray[np.float64]) -> None:
        lo, hi = f32(x.min()), f32(x.max())
        if not self.has_observed:
            self.register_buffer("min_val", np.array(lo))
            self.register_buffer("max_val", np.array(hi))
            self.register_buffer("histogram", histc32(x, self.bins, lo, hi))
            return
        cur_min, cur_max = f32(self.min_val), f32(self.max_val)
        new_min, new_max = min(cur_min, lo), max(cur_max, hi)
        update = histc32(x, self.bins, new_min, new_max)
        if new_min == cur_min and new_max == cur_max:
            combined = self.histogram + update
        elif cur_min == cur_max:
            total = f32(self.histogram.sum(dtype=np.float32))
            combined = histc32(np.array([cur_min]), self.bins, new_min, new_max) * total + update
        else:
            combined = update + self._upscale(self.histogram, cur_min, cur_max, new_min, new_max)
        self.register_buffer("histogram", np.asarray(combined, dtype=np.float32))
        self.register_buffer("min_val", np.array(new_min))
        self.register_buffer("max_val", np.array(new_max))

    # -- range search ------------------------------------------------------------------------
    def _quantization_error(self, start: int, end: int) -> float:
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        dst_width = bin_width * (end - start + 1) / self.dst_nbins
        if dst_width == 0.0:
            return 0.0
        bw, dw = f32(bin_width), f32(dst_width)
        top = f32(self.dst_nbins - 1)
        src_begin = (np.arange(self.bins) - start).astype(np.float32) * bw
        src_end = src_begin + bw
        dst_begin = np.clip(np.floor(src_begin / dw), f32(0), top)
        dst_begin_center = (dst_begin + f32(0.5)) * dw
        dst_end = np.clip(np.floor(src_end / dw), f32(0), top)
        density = self.histogram / bw
        half = f32(dst_width / 2)
        norm = _norm(src_begin - dst_begin_center, np.full(self.bins, half), density)
        norm = norm + (dst_end - dst_begin - f32(1)) * _norm(-half, half, density)
        dst_end_center = dst_end * dw + half
        norm = norm + _norm(f32(-dst_width / 2), src_end - dst_end_center, density)
        return float(np.asarray(norm, dtype=np.float32).sum(dtype=np.float32))

    def _search_range(self) -> tuple[np.float32, np.float32]:
        """PyTorch's ``_non_linear_param_search``: the narrowed float32 ``(min, max)``."""
        bin_width = f32((self.max_val - self.min_val) / f32(self.bins))
        total = float(self.histogram.sum(dtype=np.float32))
        csum = np.cumsum(self.histogram, dtype=np.float32)
        step = 1e-5
        alpha, beta = 0.0, 1.0
        start, end = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + step, beta - step
            lo_target, hi_target = f32(next_alpha * total), f32(next_beta * total)
            left, right = start, end
            while left < end and csum[left] < lo_target:
                left += 1
            while right > start and csum[right] > hi_target:
                right -= 1
            next_start, next_end = start, end
            if (left - start) > (end - right):
                next_start, alpha = left, next_alpha
            else:
                next_end, beta = right, next_beta
            if next_start == start and next_end == end:
                continue
            norm = self._quantization_error(next_start, next_end)
            if norm > norm_min:
                break
            norm_min, start, end = norm, next_start, next_end
        new_min = f32(self.min_val + bin_width * f32(start))
        new_max = f32(self.min_val + bin_width * f32(end + 1))
        return new_min, new_max

    def calculate_qparams(self) -> QParams:
        if not self.has_observed:
            return self._qparams(np.inf, -np.inf)  # warns, scale 1.0 / zero point 0
        new_min, new_max = self._search_range()
        return self._qparams(new_min, new_max)
