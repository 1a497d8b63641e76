"""Grid search and hybrid tuning on validation."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.training import (
    ALSParams,
    HybridTuningSettings,
    ItemKNNParams,
    PopularityParams,
    TrainingSettings,
)
from recommender.data.matrix import user_item_matrix
from recommender.evaluation.evaluator import tie_order
from recommender.evaluation.protocol import build_evaluation_set, history_splits
from recommender.evaluation.side_signals import scoring_model, stage_signals
from recommender.scoring import score_users
from recommender.training.crossfit import cross_fitted_data
from recommender.training.hybrid_tuning import _Objective, segment_signals, tune_hybrid
from recommender.training.tuning import fit_model, grid_points, tune_popularity
from tests.recommender.training.synthetic import synthetic_data


@pytest.fixture(scope="module")
def stage():
    data = synthetic_data(users=500, items=50, seed=5)
    validation = build_evaluation_set(data, V.STAGE_VALIDATION)
    side = stage_signals(data, V.STAGE_VALIDATION, ItemKNNParams(), None)
    matrix = user_item_matrix(data, history_splits(V.STAGE_VALIDATION))
    factors = fit_model(V.MODEL_ALS, matrix, ALSParams(factors=6, regularization=5.0, alpha=5.0))
    return validation, scoring_model(factors, side)


def test_grid_points_cover_the_product_and_validate() -> None:
    points = grid_points(ALSParams(), {"factors": [4, 8], "regularization": [1.0, 10.0, 100.0]})
    assert len(points) == 6
    assert {(p.factors, p.regularization) for p in points} == {
        (f, r) for f in (4, 8) for r in (1.0, 10.0, 100.0)
    }
    assert all(p.iterations == ALSParams().iterations for p in points)
    with pytest.raises(ValueError, match="not ALSParams fields"):
        grid_points(ALSParams(), {"learning_rate": [0.1]})


@pytest.mark.parametrize("method", ["minmax", "rank"])
def test_tuning_objective_scores_equal_score_users(stage, method) -> None:
    """The cached weighted sum the tuner ranks by is exactly what serving's score_users returns."""
    validation, model = stage
    users = validation.subset(validation.segment_indices(V.SEGMENT_TRAINABLE)[:40])
    signals = segment_signals(model, V.SEGMENT_TRAINABLE)
    objective = _Objective(
        model, users, V.SEGMENT_TRAINABLE, signals, method, tie_order(users.n_items, 0)
    )
    weights = {V.SIGNAL_CF: 0.5, V.SIGNAL_ITEM_SIMILARITY: 0.3, V.SIGNAL_POPULARITY: 0.2}
    cached = sum(w * objective.normalised[s] for s, w in weights.items())
    served = score_users(
        model,
        V.SEGMENT_TRAINABLE,
        users.histories,
        weights,
        method,
        user_rows=users.cf_rows,
        request_times=users.request_times,
    )
    np.testing.assert_allclose(cached, served, rtol=1e-5, atol=1e-6)


def test_tuned_hybrid_is_never_below_its_best_single_signal(stage) -> None:
    validation, model = stage
    settings = HybridTuningSettings(steps=[0.1, 0.3], rounds=2, max_users=1000)
    tuned = tune_hybrid([(model, validation)], settings, seed=0)
    assert set(tuned.config.weights) == set(V.SEGMENTS)
    for result in tuned.validation.values():
        assert result["hybrid"] >= max(result["single"].values()) - 1e-12
    assert set(tuned.config.weights[V.SEGMENT_UNKNOWN]) <= {V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY}
    assert tuned.fold_in_regularization in {5.0, *settings.fold_in_regularization}
    assert tuned.config.normalisation in settings.normalisations


def test_cross_fitted_folds_hold_out_each_users_val_once() -> None:
    data = synthetic_data(users=300, items=30, seed=9)
    variants = cross_fitted_data(data, 2, seed=0)
    original = build_evaluation_set(data, V.STAGE_VALIDATION)
    seen_users: list[str] = []
    for variant in variants:
        ev = build_evaluation_set(variant, V.STAGE_VALIDATION)
        seen_users += ev.user_ids
        frame = variant.interactions
        assert (frame[V.SPLIT] == V.SPLIT_TEST).sum() == (
            data.interactions[V.SPLIT] == V.SPLIT_TEST
        ).sum()
        assert len(frame) == len(data.interactions)
        # the fold's own users keep train-only histories: their val item is never history
        for targets, history in zip(ev.targets, ev.histories, strict=True):
            assert not set(targets) & set(history)
    assert sorted(seen_users) == sorted(original.user_ids)
    (only,) = cross_fitted_data(data, 1, seed=0)
    assert only is data


def test_tuning_objective_with_recency_equals_score_users(stage) -> None:
    validation, model = stage
    users = validation.subset(validation.segment_indices(V.SEGMENT_TRAINABLE)[:40])
    assert max(len(h) for h in users.histories) > 1  # the decay changes something
    signals = segment_signals(model, V.SEGMENT_TRAINABLE)
    ties = tie_order(users.n_items, 0)
    objective = _Objective(model, users, V.SEGMENT_TRAINABLE, signals, "minmax", ties, 0.5)
    flat = _Objective(model, users, V.SEGMENT_TRAINABLE, signals, "minmax", ties)
    weights = {V.SIGNAL_CF: 0.5, V.SIGNAL_ITEM_SIMILARITY: 0.5}
    cached = sum(w * objective.normalised[s] for s, w in weights.items())
    served = score_users(
        model,
        V.SEGMENT_TRAINABLE,
        users.histories,
        weights,
        user_rows=users.cf_rows,
        recency_decay=0.5,
        request_times=users.request_times,
    )
    np.testing.assert_allclose(cached, served, rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        objective.normalised["item_similarity"], flat.normalised["item_similarity"]
    )


def test_tuned_recency_decay_is_one_of_the_candidates_and_stored(stage) -> None:
    validation, model = stage
    settings = HybridTuningSettings(
        steps=[0.3], rounds=1, max_users=400, normalisations=["minmax"], recency_decays=[0.5]
    )
    tuned = tune_hybrid([(model, validation)], settings, seed=0)
    assert tuned.config.recency_decay in {1.0, 0.5}
    assert all(r["recency_decay"] == tuned.config.recency_decay for r in tuned.validation.values())
    assert tuned.config.to_dict()["recency_decay"] == tuned.config.recency_decay


def test_popularity_half_life_is_chosen_on_validation() -> None:
    """A short half-life wins on validation when the item in fashion changes every 3 days, all-time
    counts win without fashion; with one grid point nothing is evaluated (configured value kept)."""
    data = synthetic_data(users=600, items=40, seed=4, trend=0.6)
    validation = build_evaluation_set(data, V.STAGE_VALIDATION)
    ties = tie_order(len(data.item_ids), 0)
    lines: list[str] = []
    settings = TrainingSettings(popularity_grid={"half_life_days": [None, 2.0]})
    chosen = tune_popularity(data, validation, settings, ties, lines.append)
    assert chosen == PopularityParams(half_life_days=2.0)
    assert len(lines) == 2 and all("validation ndcg@10" in line for line in lines)
    steady = synthetic_data(users=600, items=40, seed=4)  # no fashion: all-time counts win
    steady_validation = build_evaluation_set(steady, V.STAGE_VALIDATION)
    assert tune_popularity(steady, steady_validation, settings, ties) == PopularityParams()
    fixed = TrainingSettings(popularity=PopularityParams(half_life_days=9.0))
    assert tune_popularity(data, validation, fixed, ties, lines.append).half_life_days == 9.0
    assert len(lines) == 2
