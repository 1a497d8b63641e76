"""The build-level time budget: a study's timeout is capped at its share of what is left."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recommender.config import load_training_settings
from recommender.config.training import HybridTuningSettings, TrainingSettings
from recommender.training.budget import STUDY_SHARES, BuildBudget


def settings(budget: float | None, timeout: float = 600.0) -> TrainingSettings:
    base = TrainingSettings()
    tuning = base.tuning.model_copy(
        update={"build_budget_seconds": budget, "timeout_seconds": timeout}
    )
    return base.model_copy(update={"tuning": tuning})


def test_no_budget_leaves_every_study_as_configured() -> None:
    s = settings(None)
    assert BuildBudget(None).for_study(s, "cf") is s


def test_a_study_gets_its_share_of_what_is_left() -> None:
    s = settings(1800.0)
    # 1,000 of 1,800 s already spent: 800 left, item-kNN may use 10% of it
    budget = BuildBudget(1800.0, started=time.perf_counter() - 1000.0)
    capped = budget.for_study(s, "item_knn").tuning.timeout_seconds
    assert capped == pytest.approx(STUDY_SHARES["item_knn"] * 800.0, abs=1.0)
    assert capped < 81.0
    assert s.tuning.timeout_seconds == 600.0  # the input is not modified


def test_an_exhausted_budget_still_lets_a_study_score_one_trial() -> None:
    budget = BuildBudget(60.0, started=time.perf_counter() - 3600.0)
    assert budget.left() == 0.0
    assert budget.for_study(settings(60.0), "cf").tuning.timeout_seconds == 1.0


def test_a_fresh_budget_never_raises_the_configured_timeout() -> None:
    s = settings(1800.0, timeout=30.0)
    assert BuildBudget(1800.0).for_study(s, "cf") is s


def test_hybrid_users_shrink_only_for_large_catalogues() -> None:
    hybrid = HybridTuningSettings(max_users=2000, max_tuning_pairs=20_000_000)
    assert hybrid.tuning_users(2000) == 2000  # the demo shop: unchanged
    assert hybrid.tuning_users(10_000) == 2000
    assert hybrid.tuning_users(50_000) == 400
    assert HybridTuningSettings(max_users=2000, max_tuning_pairs=0).tuning_users(50_000) == 2000


def test_shipped_config_sets_the_budget_and_the_hybrid_bound() -> None:
    shipped = load_training_settings()
    assert shipped.tuning.build_budget_seconds == 1800.0
    assert shipped.hybrid.tuning_users(50_000) == 400


def test_live_validation_users_are_bounded_only_for_large_catalogues() -> None:
    from recommender.training.live_validation import _bounded

    hybrid = HybridTuningSettings()
    assert hybrid.live_users(2000) == 50_000  # the demo shop's 50,000 users: all of them
    assert hybrid.live_users(50_000) == 2000
    positions = np.arange(0, 30_000, 3)
    assert _bounded(positions, 0, 1) is positions
    assert _bounded(positions, 20_000, 1) is positions
    sample = _bounded(positions, 2000, 1)
    assert sample.size == 2000 and np.all(np.diff(sample) > 0) and np.isin(sample, positions).all()
    np.testing.assert_array_equal(sample, _bounded(positions, 2000, 1))  # seeded
