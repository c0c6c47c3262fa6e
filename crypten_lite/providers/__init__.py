"""L3: correlated randomness (Beaver triples, truncation pairs, random bits, masks)."""

from __future__ import annotations

from crypten_lite.providers.base import Correlation, Provider
from crypten_lite.providers.dealer import TrustedDealer, run_dealer
from crypten_lite.providers.local import InsecureLocalDealer

__all__ = ["Correlation", "InsecureLocalDealer", "Provider", "TrustedDealer", "run_dealer"]
