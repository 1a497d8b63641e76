"""Shared data of the training tests."""

from __future__ import annotations

import pytest

from recommender.data.processed import ProcessedData
from tests.recommender.training.synthetic import synthetic_data


@pytest.fixture(scope="module")
def trending() -> ProcessedData:
    """A small shop whose popularity trends (the stale gate and the live validation see it)."""
    return synthetic_data(users=300, items=40, seed=3, trend=0.3)
