"""The stale gate's half-life is chosen on validation, stored with the model and scored on test."""

from __future__ import annotations

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams, PopularityParams
from recommender.data.processed import ProcessedData
from recommender.evaluation.protocol import build_evaluation_set
from recommender.evaluation.rankers import hybrid_ranker, stale_users
from recommender.evaluation.side_signals import scoring_model, stage_signals, stale_model
from recommender.scoring import HybridConfig, score_users
from recommender.training.pipeline import run_training
from recommender.training.stale_gate import tune_stale_gate
from tests.fixtures.models import POPULARITY_ONLY, fast_settings


def gate_settings(hours: float, half_lives: list[float | None]):
    settings = fast_settings()
    update = {"stale_after_hours": hours, "stale_half_lives": half_lives}
    return settings.model_copy(update={"hybrid": settings.hybrid.model_copy(update=update)})


def test_the_evaluation_scores_users_past_the_gate_on_the_gate_model(
    trending: ProcessedData,
) -> None:
    side = stage_signals(trending, V.STAGE_TEST, ItemKNNParams(), None, PopularityParams())
    model = scoring_model(None, side)
    slow = stale_model(model, trending, V.STAGE_TEST, 1.0)
    config = HybridConfig(
        weights=POPULARITY_ONLY, stale_after_hours=24.0, stale_popularity_half_life_days=1.0
    )
    users = build_evaluation_set(trending, V.STAGE_TEST)
    users = users.subset(users.segment_indices(V.SEGMENT_TRAINABLE))
    past = stale_users(users, V.SEGMENT_TRAINABLE, config)
    assert 0 < past.sum() < len(users)  # both sides of the gate are present
    got = hybrid_ranker(model, config, slow)(users, V.SEGMENT_TRAINABLE)
    for scored_on, side_of_gate in ((model, ~past), (slow, past)):
        part = users.subset(np.flatnonzero(side_of_gate))
        want = score_users(
            scored_on,
            V.SEGMENT_TRAINABLE,
            part.histories,
            POPULARITY_ONLY[V.SEGMENT_TRAINABLE],
            user_rows=part.cf_rows,
            request_times=part.request_times,
        )
        np.testing.assert_array_equal(got[side_of_gate], want)
    assert not np.array_equal(got[past], hybrid_ranker(model, config)(users, "trainable")[past])
    # unknown users have no previous positive: never past the gate
    assert not stale_users(users, V.SEGMENT_UNKNOWN, config).any()


def test_the_build_chooses_the_gate_on_validation_and_stores_it(trending: ProcessedData) -> None:
    settings = gate_settings(24.0, [1.0, 1000.0])
    model = run_training(trending, settings, (V.MODEL_ALS,), embeddings=False).models["als"]
    gate = model.validation["stale_gate"]
    # the trend moves every 3 days: for users back after more than a day, a 1-day half-life
    # ranks their next item far better than (nearly) all-time counts, and the gate takes it
    assert gate == {
        "after_hours": 24.0,
        "gated": True,
        "users": 31,  # cold users only: the trainable weights give popularity no weight
        "ungated_ndcg@10": 0.290117,
        "by_half_life": {"1.0": 0.448707, "1000.0": 0.288679},
        "half_life_days": 1.0,
        "gated_ndcg@10": 0.448707,
    }
    assert model.hybrid.stale_after_hours == 24.0
    assert model.hybrid.stale_popularity_half_life_days == 1.0
    # the weights are the live validation's, untouched by the gate
    assert model.hybrid.weights == {
        "trainable": {"item_similarity": 1.0},
        "cold": {"popularity": 1.0},
        "unknown": {"popularity": 1.0},
    }


def test_the_gate_is_off_with_zero_hours_or_no_half_lives(trending: ProcessedData) -> None:
    for settings in (gate_settings(0.0, [1.0]), gate_settings(24.0, [])):
        model = run_training(trending, settings, (V.MODEL_ALS,), embeddings=False).models["als"]
        assert model.hybrid.stale_after_hours is None
        assert model.validation["stale_gate"]["gated"] is False


def test_without_a_popularity_weight_the_gate_is_not_searched() -> None:
    """The demo shop's case: CF and item-kNN carry users with history, so no half-life can
    change their ranking and the search (minutes on 50,000 users) is skipped."""
    config = HybridConfig(
        weights={
            V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 0.95, V.SIGNAL_CONTENT: 0.05},
            V.SEGMENT_COLD: {V.SIGNAL_CF: 0.75, V.SIGNAL_ITEM_SIMILARITY: 0.25},
            V.SEGMENT_UNKNOWN: {V.SIGNAL_POPULARITY: 1.0},
        }
    )
    settings = gate_settings(24.0, [7.0, 14.0]).hybrid
    chosen, report = tune_stale_gate([], config, settings, 0, np.arange(3))
    assert chosen is config
    assert report == {
        "after_hours": 24.0,
        "gated": False,
        "skipped": "no popularity weight in the trainable or cold weights",
    }
