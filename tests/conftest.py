"""Fixtures shared by the whole suite."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    # Test data only: nothing secret in the library comes from numpy's generator.
    return np.random.default_rng(20261127)
