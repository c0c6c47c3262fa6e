"""``NoiseTunnel``: SmoothGrad, SmoothGrad-squared and VarGrad over an attribution method
(Captum 0.9's names and conventions).

``nt_samples`` noisy copies of every example (Gaussian noise of std ``stdevs``; example
``i``'s copies are rows ``i * nt_samples ...``, torch's ``repeat_interleave``) go to the
inner method as ONE batch: Integrated Gradients then runs one forward and one backward at
``n_steps * nt_samples * N`` rows. The per-copy attributions are combined locally:
``smoothgrad`` = their mean (one truncation), ``smoothgrad_sq`` = the mean of their squares
(+1 product round on shares), ``vargrad`` = ``mean(a^2) - mean(a)^2`` (both squares in the
same product round, one truncation).

Noise on a PRIVATE input stays secret: each of the ``W`` parties draws its own component
``N(0, stdevs^2 / W)`` from its own AES-CTR stream (``session.private``, Box-Muller in
float64) and adds its fixed-point encoding to its own share: no communication, the sum is
``N(0, stdevs^2)``, and no party knows it. On a PUBLIC input the noise is public:
``np.random.default_rng(seed)``; with ``seed=None`` inside a session of several parties,
party 0 broadcasts a fresh seed (1 round) so that every party adds the same noise.

Cost: the inner method's cost at batch ``nt_samples * N`` (see ``attribution``), + 1
product round for ``smoothgrad_sq``/``vargrad`` on private attributions, + 1 truncation round
with 3+ parties, + 1 round to reveal with ``dst=k``. ``draw_baseline_from_distrib=True`` is
not supported (ValueError).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

from crypten_lite.explain import _core
from crypten_lite.explain._core import Value
from crypten_lite.explain.attribution import GradientAttribution
from crypten_lite.tensor import MPCTensor

__all__ = ["SUPPORTED_NOISE_TUNNEL_TYPES", "NoiseTunnel"]

#: How NoiseTunnel combines the attributions of the noisy copies.
NoiseTunnelType = Literal["smoothgrad", "smoothgrad_sq", "vargrad"]
SUPPORTED_NOISE_TUNNEL_TYPES: tuple[str, ...] = get_args(NoiseTunnelType)


class NoiseTunnel:
    """``NoiseTunnel(attribution_method).attribute(inputs, nt_type=, nt_samples=,
    stdevs=, draw_baseline_from_distrib=False, seed=None, dst=None, **kwargs)``;
    ``kwargs`` (``target``, ``baselines``, ``n_steps``, ``method``, ``abs``,
    ``return_convergence_delta``) go to the inner method. With
    ``return_convergence_delta=True`` (Integrated Gradients) the delta of every noisy copy
    is returned, shape ``(N * nt_samples,)``, as Captum does."""

    def __init__(self, attribution_method: GradientAttribution) -> None:
        if not isinstance(attribution_method, GradientAttribution):
            raise TypeError(
                "NoiseTunnel: attribution_method must be a crypten_lite.explain attribution "
                f"(Saliency, InputXGradient, IntegratedGradients), got "
                f"{type(attribution_method).__name__}"
            )
        self.attribution_method = attribution_method
        self.is_delta_supported = attribution_method.supports_delta

    @property
    def forward_func(self) -> Any:
        return self.attribution_method.forward_func

    def has_convergence_delta(self) -> bool:
        return self.is_delta_supported

    def attribute(
        self,
        inputs: Any,
        nt_type: NoiseTunnelType = "smoothgrad",
        nt_samples: int = 5,
        stdevs: float = 1.0,
        draw_baseline_from_distrib: bool = False,
        seed: int | None = None,
        dst: int | None = None,
        **kwargs: Any,
    ) -> Any:
        where = "NoiseTunnel.attribute"
        inner = self.attribution_method
        if not isinstance(nt_type, str) or nt_type not in SUPPORTED_NOISE_TUNNEL_TYPES:
            raise ValueError(
                f"{where}: nt_type must be one of {', '.join(SUPPORTED_NOISE_TUNNEL_TYPES)}, "
                f"got {nt_type!r}"
            )
        if isinstance(nt_samples, bool) or not isinstance(nt_samples, int | np.integer):
            raise TypeError(f"{where}: nt_samples must be an int, got {nt_samples!r}")
        if nt_samples < 1:
            raise ValueError(f"{where}: nt_samples must be at least 1, got {nt_samples}")
        samples = int(nt_samples)
        if isinstance(stdevs, bool) or not isinstance(stdevs, int | float | np.floating):
            raise TypeError(f"{where}: stdevs must be a float, got {stdevs!r}")
        std = float(stdevs)
        if not np.isfinite(std) or std < 0:
            raise ValueError(f"{where}: stdevs must be finite and non-negative, got {stdevs!r}")
        if draw_baseline_from_distrib:
            raise ValueError(
                f"{where}: draw_baseline_from_distrib=True is not supported (baselines are "
                "expanded per noisy copy, as with draw_baseline_from_distrib=False)"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"{where}: seed must be None or an int, got {seed!r}")
        unknown = set(kwargs) - {"target", *inner._options}
        if unknown:
            raise TypeError(
                f"{where}: unexpected arguments {sorted(unknown)} for "
                f"{type(inner).__name__} (accepted: target, {', '.join(inner._options)})"
            )
        options = {k: v for k, v in kwargs.items() if k != "target"}
        x = _core.check_inputs(inputs, where)
        targets = _core.check_target(kwargs.get("target"), x.shape[0], where)
        plan = inner._plan(x, options)
        rank = _core.check_dst(dst, where)

        noisy = _core.noisy_copies(x, samples, std, seed)
        rows = None if targets is None else np.repeat(targets, samples)
        attr, delta = inner._compute(noisy, rows, inner._expand_plan(plan, samples))
        smoothed = _smooth(attr, nt_type, x.shape[0], samples)
        if delta is None:
            return _core.reveal([smoothed], rank)[0]
        out = _core.reveal([smoothed, delta], rank)
        return out[0], out[1]


def _group_sum(a: Value, n: int, samples: int) -> Value:
    """``a`` of shape ``(n * samples, ...)`` -> per-example sums over its copies (local)."""
    grouped = _core.reshape(a, (n, samples, *a.shape[1:]))
    if isinstance(grouped, MPCTensor):
        return grouped.sum(1)
    return np.asarray(grouped.sum(axis=1), dtype=np.float64)


def _smooth(a: Value, nt_type: str, n: int, samples: int) -> Value:
    if nt_type == "smoothgrad":
        return _core.scale(_group_sum(a, n, samples), 1.0 / samples)
    if nt_type == "smoothgrad_sq":
        return _core.scale(_group_sum(_core.square(a), n, samples), 1.0 / samples)
    # vargrad: sum(a^2)/s - (sum a)^2/s^2, both squares in one product, one truncation
    total = _group_sum(a, n, samples)
    size = int(np.prod(a.shape))
    both = _core.square(_core.concat([_core.reshape(a, (-1,)), _core.reshape(total, (-1,))]))
    sq_sum = _group_sum(_core.reshape(_core.take_rows(both, 0, size), tuple(a.shape)), n, samples)
    total_sq = _core.reshape(_core.take_rows(both, size, both.shape[0]), tuple(total.shape))
    factors = np.concatenate(
        [np.full(int(np.prod(total.shape)), 1.0 / samples),
         np.full(int(np.prod(total.shape)), 1.0 / samples**2)]
    )
    scaled = _core.scale(
        _core.concat([_core.reshape(sq_sum, (-1,)), _core.reshape(total_sq, (-1,))]), factors
    )
    half = int(np.prod(total.shape))
    return _core.reshape(
        _core.sub(_core.take_rows(scaled, 0, half), _core.take_rows(scaled, half, 2 * half)),
        tuple(total.shape),
    )
