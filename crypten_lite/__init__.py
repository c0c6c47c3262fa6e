"""crypten_lite: secure multi-party computation for machine learning.

The package namespace holds the safe public API only; importing it has no side effects.
"""

from __future__ import annotations

from crypten_lite import errors, ring
from crypten_lite.config_report import show_config

__all__ = ["__version__", "errors", "ring", "show_config"]

__version__ = "0.1.0"
