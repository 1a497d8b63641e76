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


def _former_at(history: PopularityHistory, times: np.ndarray) -> np.ndarray:
    """The former ``at``: a (moments × n) float64 bincount + cumsum, then log1p and divide."""
    moments, inverse = np.unique(np.asarray(times, dtype=np.int64), return_inverse=True)
    counts = np.zeros((moments.size, history.n_items))
    half_life = None if history.half_life_days is None else history.half_life_days * DAY
    span = np.inf if half_life is None else 500.0 * half_life
    begin = 0
    while begin < moments.size:
        end = int(np.searchsorted(moments, moments[begin] + span, side="right"))
        chunk = moments[begin:end]
        last = int(np.searchsorted(history.seconds, chunk[-1], side="left"))
        seconds, items = history.seconds[:last], history.items[:last]
        bucket = np.searchsorted(chunk, seconds, side="right")
        weights = np.ones(seconds.size)
        if half_life is not None:
            weights = np.exp2((seconds - chunk[-1]) / half_life)
        flat = np.bincount(
            bucket * history.n_items + items,
            weights=weights,
            minlength=chunk.size * history.n_items,
        )
        block = np.cumsum(flat.reshape(chunk.size, history.n_items), axis=0)
        if half_life is not None:
            block *= np.exp2((chunk[-1] - chunk) / half_life)[:, None]
        counts[begin:end] = block
        begin = end
    scores = np.log1p(counts)
    top = scores.max(axis=1, keepdims=True)
    scaled = np.divide(scores, top, out=np.zeros_like(scores), where=top > 0)
    return scaled[inverse.reshape(-1)].astype(np.float32)


@pytest.mark.parametrize("half_life", [None, 7.0, 0.5, 0.01])
@pytest.mark.parametrize("sorted_times", [False, True])
def test_running_counts_equal_the_former_matrix_bit_for_bit(half_life, sorted_times) -> None:
    """The per-moment running count makes the same additions in the same order as the former
    bincount + cumsum over a (moments × n) matrix: every float32 value is equal, so every
    ranking (ties included) is the former one. Repeated, unsorted and far-apart moments."""
    rng = np.random.default_rng(11)
    seconds = rng.integers(0, 900 * DAY, 5_000)
    items = rng.zipf(1.4, 5_000) % 300
    times = np.concatenate([rng.integers(0, 950 * DAY, 200), seconds[:40], seconds[:40] + 1])
    times = np.sort(np.unique(times)) if sorted_times else times
    history = PopularityHistory.from_events(items, seconds, 300, half_life)
    got = history.at(times)
    assert got.dtype == np.float32 and got.shape == (times.size, 300)
    np.testing.assert_array_equal(got, _former_at(history, times))


def test_empty_history_scores_zero() -> None:
    empty = PopularityHistory.from_events(np.zeros(0), np.zeros(0), 4, None)
    np.testing.assert_array_equal(empty.latest(), np.zeros(4, dtype=np.float32))


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
