"""L6'': Captum-style attributions of encrypted (or public) models on encrypted (or public)
inputs: ``Saliency``, ``InputXGradient``, ``IntegratedGradients``, ``NoiseTunnel``,
``DeepLift`` and the layer methods ``LayerIntegratedGradients``, ``LayerConductance``.

Captum 0.9's names, argument conventions and numerical rules (Gauss-Legendre and Riemann
integration, convergence delta, SmoothGrad/VarGrad). For MPC, every method runs ONE forward
and ONE backward of the model on one batch (all integration steps and noisy copies stacked
along the batch dim), so an attribution costs the rounds of one forward + one backward plus
a constant, whatever ``n_steps`` or ``nt_samples``. Results stay secret-shared unless
``dst=k`` reveals them to party ``k`` only. See ``attribution`` and ``noise_tunnel`` for the
costs of each method.
"""

from __future__ import annotations

from crypten_lite.explain._core import noisy_copies, private_gaussian
from crypten_lite.explain.approximation import (
    SUPPORTED_METHODS,
    SUPPORTED_RIEMANN_METHODS,
    Method,
    approximation_parameters,
)
from crypten_lite.explain.attribution import (
    GradientAttribution,
    InputXGradient,
    IntegratedGradients,
    Saliency,
)
from crypten_lite.explain.deeplift import MPC_EPS, DeepLift
from crypten_lite.explain.layer import LayerConductance, LayerIntegratedGradients
from crypten_lite.explain.noise_tunnel import (
    SUPPORTED_NOISE_TUNNEL_TYPES,
    NoiseTunnel,
    NoiseTunnelType,
)

__all__ = [
    "MPC_EPS",
    "SUPPORTED_METHODS",
    "SUPPORTED_NOISE_TUNNEL_TYPES",
    "SUPPORTED_RIEMANN_METHODS",
    "DeepLift",
    "GradientAttribution",
    "InputXGradient",
    "IntegratedGradients",
    "LayerConductance",
    "LayerIntegratedGradients",
    "Method",
    "NoiseTunnel",
    "NoiseTunnelType",
    "Saliency",
    "approximation_parameters",
    "noisy_copies",
    "private_gaussian",
]
