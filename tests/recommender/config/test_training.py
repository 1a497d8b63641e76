"""evaluation.max_tuning_pairs: tuning trials on large catalogues score fewer validation users."""

from __future__ import annotations

from recommender.config.loader import load_training_settings
from recommender.config.training import EvaluationSettings


def test_trials_score_5000_users_at_50k_products_and_every_user_of_a_small_shop() -> None:
    settings = EvaluationSettings(max_users=20_000, max_tuning_pairs=250_000_000)
    assert settings.tuning_users(50_000) == 5_000
    assert settings.tuning_users(2_000) == 20_000  # the demo shop: unchanged
    assert settings.tuning_users(10_000) == 20_000


def test_zero_means_no_bound_on_either_side() -> None:
    assert EvaluationSettings(max_users=20_000, max_tuning_pairs=0).tuning_users(50_000) == 20_000
    assert EvaluationSettings(max_users=0, max_tuning_pairs=0).tuning_users(50_000) == 0
    assert EvaluationSettings(max_users=0, max_tuning_pairs=1_000).tuning_users(50_000) == 1


def test_the_shipped_config_bounds_trials_at_250m_pairs() -> None:
    assert load_training_settings().evaluation.max_tuning_pairs == 250_000_000
