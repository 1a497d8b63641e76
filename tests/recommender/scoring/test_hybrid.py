"""Normalisation, weight validation, combination and the shared score_users."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.errors import InvalidRequestError
from recommender.scoring import (
    HybridConfig,
    ScoringModel,
    combine,
    compute_signals,
    normalise,
    score_users,
    signal_breakdown,
    validate_weights,
)
from recommender.scoring.hybrid import MAX_WEIGHT


def test_minmax_and_rank_normalisation():
    x = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    np.testing.assert_allclose(normalise(x, "minmax"), [[0.0, 1.0, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(normalise(x, "rank"), [[0.0, 1.0, 0.5], [0, 0, 0]])
    with pytest.raises(InvalidRequestError, match="unknown normalisation"):
        normalise(x, "zscore")


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"cf": 1, "bogus": 1}, "unknown signal 'bogus'"),
        ({"cf": -1}, r"rerank_weights.cf: must be a number between 0 and 1000 .*got -1"),
        ({"cf": math.inf}, "rerank_weights.cf: must be a number between 0 and 1000"),
        ({"cf": math.nan}, "rerank_weights.cf: must be a number between 0 and 1000"),
        # finite but huge: overflowed float32 once scaled and emptied the answer
        ({"cf": 1, "quality": 1e33}, r"rerank_weights.quality: .* got 1e\+33"),
        ({"cf": 1000.001}, "rerank_weights.cf: must be a number between 0 and 1000"),
        ({"cf": 0, "content": 0}, "at least one weight"),
        ({"cf": "high"}, "expected a number"),
        ({}, "non-empty"),
    ],
)
def test_validate_weights_rejects(weights, message):
    with pytest.raises(InvalidRequestError, match=message):
        validate_weights(weights)


def test_validate_weights_accepts_the_bounds():
    assert validate_weights({"cf": MAX_WEIGHT, "quality": 0}) == {"cf": 1000.0, "quality": 0.0}


def test_combine_at_max_weights_stays_finite_after_rounding():
    """Every signal at MAX_WEIGHT: the sum and its 1e-6 rounding (as profiles do) stay finite."""
    signals = {s: np.array([[0.0, 1.0, 0.5]]) for s in ("cf", "content", "item_similarity")}
    signals |= {"popularity": np.array([1.0, 0.0, 0.25]), "quality": np.array([1.0, 1.0, 0.0])}
    total = combine(signals, {name: MAX_WEIGHT for name in signals})
    rounded = np.round(total, 6)
    assert total.dtype == np.float32 and np.isfinite(rounded).all()
    np.testing.assert_allclose(rounded, [[2000.0, 4000.0, 1750.0]])


def test_combine_weights_mean_what_they_say():
    cf = np.array([[100.0, 0.0, 50.0]])  # raw range differs wildly from popularity's
    pop = np.array([0.0, 1.0, 0.2])
    only_cf = combine({"cf": cf, "popularity": pop}, {"cf": 1.0, "popularity": 0.0})
    np.testing.assert_allclose(only_cf, [[1.0, 0.0, 0.5]])
    mixed = combine({"cf": cf, "popularity": pop}, {"cf": 0.5, "popularity": 0.5})
    np.testing.assert_allclose(mixed, [[0.5, 0.5, 0.35]], rtol=1e-6)


def _model() -> ScoringModel:
    items = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.2, 0.1]], dtype=np.float32)
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    sim = sp.csr_matrix(np.array([[0, 0.9, 0, 0], [0.9, 0, 0.1, 0], [0, 0.1, 0, 0], [0] * 4]))
    emb = np.eye(4, dtype=np.float32)
    return ScoringModel.build(
        items, users, 0.1, sim, emb, np.array([0.1, 0.2, 1.0, 0.0]), np.array([0.5, 1.0, 0.0, 0.2])
    )


def test_score_users_routes_each_segment():
    model = _model()
    trainable = score_users(
        model, V.SEGMENT_TRAINABLE, [np.array([0])], {"cf": 1.0}, user_rows=np.array([1])
    )
    assert int(np.argmax(trainable[0])) in (1, 2)  # user 1 likes factor 2
    unknown = score_users(
        model, V.SEGMENT_UNKNOWN, [np.array([], dtype=int)] * 2, {"popularity": 1}
    )
    assert unknown.shape == (2, 4)
    np.testing.assert_allclose(unknown[0], [0.1, 0.2, 1.0, 0.0])
    cold = score_users(model, V.SEGMENT_COLD, [np.array([0])], {"item_similarity": 1.0})
    assert int(np.argmax(cold[0])) == 1


def test_single_and_batch_scores_are_identical():
    model = _model()
    hist = [np.array([0]), np.array([1, 2])]
    weights = HybridConfig().for_segment(V.SEGMENT_COLD)
    batch = score_users(model, V.SEGMENT_COLD, hist, weights)
    for i, h in enumerate(hist):
        np.testing.assert_allclose(score_users(model, V.SEGMENT_COLD, [h], weights)[0], batch[i])


def test_signal_breakdown_is_normalised():
    parts = signal_breakdown(_model(), V.SEGMENT_COLD, np.array([0]))
    assert set(parts) == set(V.SIGNALS)
    for values in parts.values():
        assert values.min() >= 0 and values.max() <= 1


def test_hybrid_config_round_trip_and_validation():
    cfg = HybridConfig(weights={"cold": {"cf": 0.7, "popularity": 0.3}}, normalisation="rank")
    assert HybridConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.for_segment(V.SEGMENT_UNKNOWN) == {"popularity": 0.8, "quality": 0.2}
    with pytest.raises(InvalidRequestError):
        HybridConfig(weights={"vip": {"cf": 1.0}})


def test_hybrid_config_recency_decay_round_trip_and_default():
    cfg = HybridConfig(recency_decay=0.25)
    assert cfg.to_dict()["recency_decay"] == 0.25
    assert HybridConfig.from_dict(cfg.to_dict()) == cfg
    older = {"weights": {"cold": {"cf": 1.0}}, "normalisation": "minmax"}  # saved before decay
    assert HybridConfig.from_dict(older).recency_decay == 1.0
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(InvalidRequestError, match="recency_decay"):
            HybridConfig(recency_decay=bad)


def test_score_users_recency_decay_weighs_the_newest_item_most():
    model = _model()
    history = [np.array([2, 0])]  # oldest -> newest: item 0 is the newest
    flat = score_users(model, V.SEGMENT_COLD, history, {"item_similarity": 1.0})
    same = score_users(model, V.SEGMENT_COLD, history, {"item_similarity": 1.0}, recency_decay=1.0)
    np.testing.assert_array_equal(flat, same)
    # raw item-similarity: flat = row2 + row0 = [0, 1.0, 0, 0]; decay 0.5: 0.5 row2 + row0
    raw = compute_signals(model, V.SEGMENT_COLD, history, ["item_similarity"])
    np.testing.assert_allclose(raw["item_similarity"], [[0, 1.0, 0, 0]], rtol=1e-6)
    raw = compute_signals(model, V.SEGMENT_COLD, history, ["item_similarity"], None, 0.5)
    np.testing.assert_allclose(raw["item_similarity"], [[0, 0.95, 0, 0]], rtol=1e-6)
    content = score_users(model, V.SEGMENT_COLD, history, {"content": 1.0}, recency_decay=0.5)
    # content profile 0.5 * e2 + e0 (unit embeddings): item 0 scores highest, then item 2
    assert list(np.argsort(-content[0])[:2]) == [0, 2]
    flat_content = score_users(model, V.SEGMENT_COLD, history, {"content": 1.0})
    np.testing.assert_allclose(flat_content[0][[0, 2]], [1.0, 1.0])
    # fold-in with recency confidences differs from the unweighted fold-in for 2+ items
    cf_flat = score_users(model, V.SEGMENT_COLD, history, {"cf": 1.0})
    cf_decay = score_users(model, V.SEGMENT_COLD, history, {"cf": 1.0}, recency_decay=0.5)
    assert not np.allclose(cf_flat, cf_decay)


def test_the_stale_gate_round_trips_and_is_checked():
    gated = HybridConfig(stale_after_hours=24.0, stale_popularity_half_life_days=14.0)
    assert gated.stale_seconds == 86400.0
    data = gated.to_dict()
    assert data["stale_after_hours"] == 24.0 and data["stale_popularity_half_life_days"] == 14.0
    assert HybridConfig.from_dict(data) == gated
    all_time = HybridConfig(stale_after_hours=12.0)  # the gate with all-time popularity
    assert HybridConfig.from_dict(all_time.to_dict()) == all_time
    old = {k: v for k, v in gated.to_dict().items() if not k.startswith("stale")}
    assert HybridConfig.from_dict(old).stale_seconds is None  # models stored before the gate
    with pytest.raises(InvalidRequestError, match="stale_after_hours must be > 0"):
        HybridConfig(stale_after_hours=0.0)
    with pytest.raises(InvalidRequestError, match="stale_popularity_half_life_days must be > 0"):
        HybridConfig(stale_after_hours=24.0, stale_popularity_half_life_days=-1.0)
