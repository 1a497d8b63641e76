"""Popularity as of a moment (PopularityHistory): hand-computed values, no look-ahead, decay."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.scoring import PopularityHistory, ScoringModel, compute_signals, score_users
from recommender.scoring.popularity import popularity_scores

DAY = 86400


def history(half_life: float | None) -> PopularityHistory:
    # item 0 at day 0 and day 10, item 1 at day 5, item 2 never (given out of time order)
    return PopularityHistory.from_events(
        np.array([0, 1, 0]), np.array([10, 5, 0]) * DAY, n_items=3, half_life_days=half_life
    )


def test_counts_only_interactions_strictly_before_each_moment() -> None:
    scores = history(None).at(np.array([10 * DAY, 10 * DAY + 1, 0]))
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 0.0])  # day-10 event not yet counted
    np.testing.assert_allclose(scores[1], [1.0, np.log(2) / np.log(3), 0.0])
    np.testing.assert_allclose(scores[2], [0.0, 0.0, 0.0])  # nothing before the first event
    assert scores.dtype == np.float32


def test_half_life_decays_older_interactions() -> None:
    # at day 10 with a 5-day half-life: item 0 counts 2**-2, item 1 counts 2**-1
    scores = history(5.0).at(np.array([10 * DAY]))[0]
    np.testing.assert_allclose(scores, [np.log1p(0.25) / np.log1p(0.5), 1.0, 0.0], rtol=1e-6)


def test_latest_is_popularity_after_the_newest_interaction() -> None:
    np.testing.assert_allclose(history(5.0).latest(), history(5.0).at(np.array([10 * DAY + 1]))[0])
    # without decay it is the all-time popularity of the interaction matrix
    users = sp.csr_matrix((np.ones(3), ([0, 1, 2], [0, 1, 0])), shape=(3, 3))
    np.testing.assert_allclose(history(None).latest(), popularity_scores(users), rtol=1e-6)


@pytest.mark.parametrize("half_life", [None, 7.0, 0.01])
def test_matches_a_direct_sum_for_unsorted_repeated_moments(half_life) -> None:
    """Against Σ 2^(-(t - tᵢ)/h) over earlier events, also when the requests span far more than
    1,000 half-lives (0.01 days over ten years), which a single reference time would overflow."""
    rng = np.random.default_rng(3)
    seconds = rng.integers(0, 3650 * DAY, 400)
    items = rng.integers(0, 6, 400)
    times = np.concatenate([rng.integers(0, 3700 * DAY, 30), seconds[:5] + 1, seconds[:3]])
    got = PopularityHistory.from_events(items, seconds, 6, half_life).at(times)
    expected = np.zeros((times.size, 6))
    for row, t in enumerate(times):
        before = seconds < t
        age = (t - seconds[before]) / DAY
        weights = np.ones(age.size) if half_life is None else np.exp2(-age / half_life)
        expected[row] = np.bincount(items[before], weights=weights, minlength=6)
    expected = np.log1p(expected)
    top = expected.max(axis=1, keepdims=True)
    expected = np.divide(expected, top, out=np.zeros_like(expected), where=top > 0)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        PopularityHistory.from_events(np.array([0]), np.array([0]), 1, 0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        PopularityHistory.from_events(np.array([0, 1]), np.array([0]), 2, None)


def test_scoring_uses_request_times_only_when_the_model_has_a_history() -> None:
    timed = history(5.0)
    model = ScoringModel.build(
        item_factors=np.eye(3),
        user_factors=np.zeros((0, 3)),
        fold_in_regularization=1.0,
        item_similarity=sp.csr_matrix((3, 3)),
        embeddings=None,
        popularity=timed.latest(),
        quality=np.zeros(3),
        popularity_history=timed,
    )
    times = np.array([6 * DAY, 10 * DAY + 1])
    raw = compute_signals(model, V.SEGMENT_UNKNOWN, [np.zeros(0)] * 2, [V.SIGNAL_POPULARITY])
    np.testing.assert_array_equal(raw[V.SIGNAL_POPULARITY], timed.latest())  # serving: "now"
    at = compute_signals(
        model, V.SEGMENT_UNKNOWN, [np.zeros(0)] * 2, [V.SIGNAL_POPULARITY], request_times=times
    )[V.SIGNAL_POPULARITY]
    np.testing.assert_allclose(at, timed.at(times))
    assert at[0].argmax() == 1 and at[1].argmax() == 0  # day 6: item 1 leads; later item 0
    scores = score_users(
        model,
        V.SEGMENT_UNKNOWN,
        [np.zeros(0)] * 2,
        {V.SIGNAL_POPULARITY: 1.0},
        "rank",
        request_times=times,
    )
    assert scores[0].argmax() == 1 and scores[1].argmax() == 0
