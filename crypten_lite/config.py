"""Frozen configuration objects (no module-level settings anywhere)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PROVIDERS", "TRUNCATIONS", "ApproxConfig", "SessionConfig"]

PROVIDERS = ("TrustedDealer", "InsecureLocalDealer")
TRUNCATIONS = ("auto", "local", "dealer")


@dataclass(frozen=True)
class ApproxConfig:
    """Knobs of the nonlinear approximations (filled in by the approximation layer)."""

    exp_iterations: int = 8
    reciprocal_iterations: int = 10


@dataclass(frozen=True)
class SessionConfig:
    """Per-session settings.

    ``truncation``: ``"local"`` (2 parties only; 0 rounds, error at most 1 unit except with
    probability about ``2^-(63-b)`` per element for values below ``2^b`` in magnitude),
    ``"dealer"`` (any number of parties; 1 round, error at most 1 unit for values below
    ``2^62``), or ``"auto"`` (local for 2 parties, dealer otherwise).
    ``debug_range_check``: check every revealed value against the representable range.
    ``min_rounds``: products with a comparison bit (relu, abs, clamp, max) fuse the Beaver
    product into the comparison (3 rounds instead of 4) at the cost of more computation and
    about 1.8x the dealer traffic; worth it when the network round trip dominates.
    """

    precision: int = 16
    timeout_s: float = 30.0
    provider: str = "TrustedDealer"
    truncation: str = "auto"
    debug_range_check: bool = False
    min_rounds: bool = False
    approx: ApproxConfig = field(default_factory=ApproxConfig)

    def __post_init__(self) -> None:
        if isinstance(self.precision, bool) or not isinstance(self.precision, int):
            raise TypeError(f"precision must be an int, got {type(self.precision).__name__}")
        if not 0 <= self.precision <= 40:
            raise ValueError(f"precision must lie in [0, 40], got {self.precision}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, got {self.provider!r}")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {self.truncation!r}")
