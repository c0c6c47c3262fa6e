"""Frozen configuration objects (no module-level settings anywhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PROVIDERS", "TRUNCATIONS", "ApproxConfig", "ComparisonRounds", "SessionConfig"]

PROVIDERS = ("TrustedDealer", "InsecureLocalDealer", "OfflineStore")
TRUNCATIONS = ("auto", "local", "dealer")


@dataclass(frozen=True)
class ApproxConfig:
    """Knobs of the nonlinear approximations (``MPCTensor.exp``, ``reciprocal``, ``sigmoid``,
    ...; algorithms, error bounds and costs in :mod:`crypten_lite.tensor.approx`).

    Ranges are the inputs a function is designed and tested for (outside them the result is
    as documented per function, and ``SessionConfig(debug_range_check=True)`` reports them).
    Degrees and iterations trade rounds and time for accuracy:

    - ``exp_range``, ``exp_degree``, ``exp_squarings``: ``exp(x) = q(x)^(2^s)`` with ``q`` the
      degree-``d`` Chebyshev interpolant of ``exp(x / 2^s)`` on the range;
      ``ceil(log2 d) + s`` product levels.
    - ``reciprocal_range``: the range of ``|x|`` (``[lo, hi]``, ``0 < lo``);
      ``reciprocal_iterations``: Newton steps after the optimal polynomial guess (whose
      degree follows from the range).
    - ``scale_range``: inputs of ``log``, ``sqrt`` and ``inv_sqrt`` normalized exactly by
      comparisons against powers of 4 (one comparison per power in the range);
      ``log_degree``, ``sqrt_degree``: their polynomials on ``[1, 4]``.
    - ``sigmoid_range``, ``tanh_range``, ``erf_range``, ``gelu_range`` (``R``: inputs in
      ``[-R, R]``) and the matching ``*_degree``: one Chebyshev interpolant each.
    - ``softmax_shift``: ``None`` subtracts the (secret) maximum along ``dim``; a number
      ``c`` subtracts the public ``c`` instead (no comparisons; requires ``max <= c`` and
      ``max >= c - 4`` along ``dim``).
    - ``saturate``: clamp inputs to the range first (one ``clamp``: 4 rounds, 3 with
      ``min_rounds``, about two comparisons of work), so that outside it ``exp``, ``sigmoid``,
      ``tanh``, ``erf``, ``gelu``, ``reciprocal``, ``log``, ``sqrt`` and ``inv_sqrt`` return
      their value at the nearest end (``gelu``: ``x`` above the range) instead of undefined.
    """

    exp_range: tuple[float, float] = (-32.0, 4.0)
    exp_degree: int = 8
    exp_squarings: int = 3
    reciprocal_range: tuple[float, float] = (0.1, 100.0)
    reciprocal_iterations: int = 1
    scale_range: tuple[float, float] = (2.0**-8, 2.0**8)
    log_degree: int = 8
    sqrt_degree: int = 8
    sigmoid_range: float = 12.0
    sigmoid_degree: int = 31
    tanh_range: float = 12.0
    tanh_degree: int = 63
    erf_range: float = 4.0
    erf_degree: int = 15
    gelu_range: float = 8.0
    gelu_degree: int = 32
    softmax_shift: float | None = None
    saturate: bool = False

    def __post_init__(self) -> None:
        self._range("exp_range", self.exp_range, positive=False)
        self._range("reciprocal_range", self.reciprocal_range, positive=True)
        self._range("scale_range", self.scale_range, positive=True)
        self._int("exp_squarings", self.exp_squarings, 0, 8)
        self._int("reciprocal_iterations", self.reciprocal_iterations, 0, 8)
        for name in ("exp", "log", "sqrt", "sigmoid", "tanh", "erf", "gelu"):
            self._int(f"{name}_degree", getattr(self, f"{name}_degree"), 1, 255)
        for name in ("sigmoid", "tanh", "erf", "gelu"):
            if not self._real(f"{name}_range", getattr(self, f"{name}_range")) > 0:
                raise ValueError(f"{name}_range must be positive")
        if self.softmax_shift is not None:
            self._real("softmax_shift", self.softmax_shift)
        if not isinstance(self.saturate, bool):
            raise TypeError(f"saturate must be a bool, got {type(self.saturate).__name__}")

    @staticmethod
    def _int(name: str, value: object, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")

    @staticmethod
    def _real(name: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not abs(value) < float("inf"):  # also rejects NaN
            raise ValueError(f"{name} must be finite, got {value}")
        return float(value)

    @classmethod
    def _range(cls, name: str, value: object, positive: bool) -> None:
        if not isinstance(value, tuple) or len(value) != 2:
            raise TypeError(f"{name} must be a tuple (low, high)")
        low, high = (cls._real(name, v) for v in value)
        if not low < high or (positive and low <= 0):
            need = "0 < low < high" if positive else "low < high"
            raise ValueError(f"{name} must satisfy {need}, got {value}")


ComparisonRounds = Literal[3, 4]


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
    about 6x the dealer traffic (55 words per element instead of 9); worth it only when the
    network round trip dominates.
    ``provider``: ``"TrustedDealer"`` (a dealer rank online, the secure default),
    ``"OfflineStore"`` (randomness made ahead of the job, read from ``store``, a directory
    holding this party's store; ``store_job`` the job id it must carry; no dealer rank), or
    ``"InsecureLocalDealer"`` (tests only: no security).
    ``comparison_rounds``: 3 (default) evaluates the last gate of ``lt``/``gt``/``le``/
    ``ge``/``sign`` in arithmetic (30 dealer words per element to party N-1); 4 evaluates it
    in binary and injects the bit with one more 1-bit opening (8 words): less traffic, one
    more round, the better choice over a network when bandwidth, not latency, dominates.
    ``scatter_open_elements``: with 3 or more parties, an opening of at least this many ring
    elements runs as a reduce-scatter then an all-gather of the opened parts (2 rounds,
    ``2 (N-1)/N`` of the data sent per party instead of ``N-1`` times it: a third less with
    3 parties); smaller openings, and every opening with 2 parties, stay 1 round. ``None``
    keeps every opening at 1 round. The default (2^17 elements, 1 MiB) is where the bytes
    saved outweigh a round on a LAN.
    """

    precision: int = 16
    timeout_s: float = 30.0
    provider: str = "TrustedDealer"
    truncation: str = "auto"
    debug_range_check: bool = False
    min_rounds: bool = False
    comparison_rounds: ComparisonRounds = 3
    scatter_open_elements: int | None = 1 << 17
    store: str | None = None
    store_job: str | None = None
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
        if (self.provider == "OfflineStore") != (self.store is not None):
            raise ValueError("provider 'OfflineStore' and store=<directory> go together")
        if self.comparison_rounds not in (3, 4) or isinstance(self.comparison_rounds, bool):
            raise ValueError(f"comparison_rounds must be 3 or 4, got {self.comparison_rounds!r}")
        threshold = self.scatter_open_elements
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1
        ):
            raise ValueError(
                f"scatter_open_elements must be a positive int or None, got {threshold!r}"
            )
