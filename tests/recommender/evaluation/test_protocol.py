"""The evaluation protocol: split/leakage guards, segments, exclusion and tie-breaking."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams
from recommender.evaluation.protocol import build_evaluation_set, sample_users, top_k_items
from recommender.evaluation.side_signals import stage_signals
from tests.recommender.training.synthetic import synthetic_data


@pytest.fixture(scope="module")
def data():
    return synthetic_data(users=300, items=40, seed=3)


def _items(data, splits: tuple[str, ...], positive_only: bool) -> dict[str, set[int]]:
    frame = data.interactions
    rows = frame[frame[V.SPLIT].isin(splits)]
    if positive_only:
        rows = rows[rows[V.IS_POSITIVE]]
    out: dict[str, set[int]] = {}
    for user, pid in zip(rows[V.USER_ID], rows[V.PRODUCT_ID], strict=True):
        out.setdefault(user, set()).add(data.item_index[pid])
    return out


@pytest.mark.parametrize(
    ("stage", "history", "target"),
    [
        (V.STAGE_VALIDATION, (V.SPLIT_TRAIN,), V.SPLIT_VAL),
        (V.STAGE_TEST, (V.SPLIT_TRAIN, V.SPLIT_VAL), V.SPLIT_TEST),
    ],
)
def test_histories_use_only_earlier_splits(data, stage, history, target) -> None:
    ev = build_evaluation_set(data, stage)
    assert len(ev) > 50
    targets, positives = _items(data, (target,), True), _items(data, history, True)
    seen = _items(data, history, False)
    for k, user in enumerate(ev.user_ids):
        assert set(ev.targets[k].tolist()) == targets[user]
        assert set(ev.histories[k].tolist()) == positives.get(user, set())
        assert set(ev.seen[k].tolist()) == seen.get(user, set())
        assert not set(ev.targets[k].tolist()) & set(ev.seen[k].tolist())
        assert len(ev.weights[k]) == len(ev.histories[k])


def test_segments(data) -> None:
    ev = build_evaluation_set(data, V.STAGE_TEST)
    lengths = np.array([len(h) for h in ev.histories])
    trainable = ev.segment_indices(V.SEGMENT_TRAINABLE)
    cold = ev.segment_indices(V.SEGMENT_COLD)
    assert (ev.cf_rows[trainable] >= 0).all() and (lengths[trainable] >= 1).all()
    assert set(cold.tolist()) == set(np.flatnonzero(lengths == 1).tolist())
    assert ev.segment_indices(V.SEGMENT_UNKNOWN).tolist() == list(range(len(ev)))
    cf_index = data.trainable_index
    assert all(ev.cf_rows[k] == cf_index[u] for k, u in enumerate(ev.user_ids))


def test_validation_signals_ignore_val_and_test_rows(data) -> None:
    """Popularity/item-kNN of the validation stage are fit on train only (no leakage)."""
    frame = data.interactions.copy()
    only_later = frame.groupby(V.PRODUCT_ID)[V.SPLIT].agg(lambda s: set(s) <= {"val", "test"})
    side_val = stage_signals(data, V.STAGE_VALIDATION, ItemKNNParams(), None)
    train_pos = frame[(frame[V.SPLIT] == V.SPLIT_TRAIN) & frame[V.IS_POSITIVE]]
    counts = train_pos.groupby(V.PRODUCT_ID)[V.USER_ID].nunique()
    expected = np.log1p([counts.get(p, 0) for p in data.item_ids])
    np.testing.assert_allclose(side_val.popularity, expected / expected.max(), rtol=1e-6)
    for pid in only_later[only_later].index:
        assert side_val.popularity[data.item_index[pid]] == 0


def test_top_k_excludes_seen_and_orders_by_score() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7, 0.3], [1.0, 0.0, 0.2, 0.4, 0.8]])
    ties = np.arange(5)
    top = top_k_items(scores, 3, [np.array([1]), np.array([0, 4])], ties)
    assert top.tolist() == [[3, 2, 4], [3, 2, 1]]


def test_top_k_breaks_ties_by_fixed_permutation_not_index() -> None:
    scores = np.zeros((1, 6))
    ties = np.array([4, 2, 0, 5, 1, 3])
    assert top_k_items(scores, 3, None, ties).tolist() == [[4, 2, 0]]
    assert top_k_items(scores, 6, None, ties).tolist() == [ties.tolist()]


def _top_k_before(
    scores: np.ndarray, k: int, exclude: list[np.ndarray] | None, ties: np.ndarray
) -> np.ndarray:
    """top_k_items as it was before the segmented fast path (the reference it must equal)."""
    b, n = scores.shape
    k = min(k, n)
    work = np.array(scores, dtype=np.float64, copy=True)[:, ties]
    if exclude is not None:
        rank_of = np.empty(n, dtype=np.int64)
        rank_of[ties] = np.arange(n)
        rows = np.repeat(np.arange(b), [len(e) for e in exclude])
        cols = np.concatenate(
            [np.asarray(e, dtype=np.int64) for e in exclude] or [np.zeros(0, int)]
        )
        work[rows, rank_of[cols]] = -np.inf
    part = np.argpartition(-work, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (b, 1))
    vals = np.take_along_axis(work, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return ties[np.take_along_axis(part, order, axis=1)]


@pytest.mark.parametrize("n_items", [7, 300, 2_000, 4_096, 9_001])
def test_top_k_equals_the_former_ranking_row_for_row(n_items: int) -> None:
    """Same ids in the same order as the former whole-matrix argpartition, for small catalogues
    and the segmented path (>= 4,096 items), float32 and float64, with heavy ties (few score
    levels, mostly-zero rows like item-kNN's), exclusions and k up to the catalogue size."""
    rng = np.random.default_rng(n_items)
    for trial in range(24):
        b = int(rng.integers(1, 40))
        k = int(rng.choice([1, 5, 10, 20, n_items, n_items + 3]))
        levels = int(rng.choice([1, 2, 5, 1_000, 1_000_000]))
        scores = rng.integers(0, levels, size=(b, n_items)).astype(np.float64)
        if trial % 3 == 0:
            scores *= rng.random((b, n_items)) < 0.001  # a few non-zero items per row
        elif trial % 3 == 1:
            scores = scores * rng.random((b, n_items))
        dtype = np.float32 if trial % 2 else np.float64
        scores = scores.astype(dtype)
        ties = rng.permutation(n_items)
        exclude = None
        if trial % 4:
            sizes = rng.integers(0, min(n_items, 80) + 1, size=b)
            exclude = [rng.choice(n_items, size=int(s), replace=False) for s in sizes]
        expected = _top_k_before(scores, k, exclude, ties)
        assert top_k_items(scores, k, exclude, ties).tolist() == expected.tolist()


def test_top_k_ranks_nan_below_every_number() -> None:
    """A NaN score (a ranker's 0/0) never enters the top k while numbers remain."""
    n = 5_000
    scores = np.tile(np.linspace(0.0, 1.0, n), (2, 1))
    scores[0, n - 1] = np.nan
    scores[1, :] = np.nan
    scores[1, [10, 11, 12]] = [3.0, 2.0, 1.0]
    top = top_k_items(scores, 2, [np.array([n - 2]), np.array([11])], np.arange(n))
    assert top.tolist() == [[n - 3, n - 4], [10, 12]]


def test_request_time_is_the_target_time_and_popularity_looks_no_later(data) -> None:
    """Each user is scored "as of" its held-out interaction: popularity counts every positive of
    the stage strictly before that moment (other users' held-out ones included, as a service
    counts them), never the user's own target or anything later."""
    ev = build_evaluation_set(data, V.STAGE_TEST)
    frame = data.interactions
    test_rows = frame[(frame[V.SPLIT] == V.SPLIT_TEST) & frame[V.IS_POSITIVE]]
    when = dict(zip(test_rows[V.USER_ID], test_rows[V.TIMESTAMP], strict=True))
    expected = [int(when[u].timestamp()) for u in ev.user_ids]
    assert ev.request_times.tolist() == expected
    subset = ev.subset(np.array([2, 0]))
    assert subset.request_times.tolist() == [expected[2], expected[0]]

    side = stage_signals(data, V.STAGE_TEST, ItemKNNParams(), None)
    history = frame[frame[V.IS_POSITIVE]]  # train, val and test
    scores = side.popularity_history.at(ev.request_times[:20])
    earlier_targets = (test_rows[V.TIMESTAMP] < max(when[u] for u in ev.user_ids[:20])).sum()
    assert earlier_targets > 0  # the check below counts some other user's held-out positive
    for k in range(20):
        earlier = history[history[V.TIMESTAMP] < when[ev.user_ids[k]]]
        counts = earlier[V.PRODUCT_ID].value_counts()
        raw = np.log1p([counts.get(p, 0) for p in data.item_ids])
        np.testing.assert_allclose(scores[k], raw / raw.max(), rtol=1e-6)


def test_sample_users_keeps_small_sets_and_samples_large_ones_in_order(data) -> None:
    full = build_evaluation_set(data, V.STAGE_TEST)
    assert sample_users(full, 0, seed=1) is full
    assert sample_users(full, len(full), seed=1) is full
    sample = sample_users(full, 50, seed=1)
    positions = np.sort(np.random.default_rng(1).choice(len(full), size=50, replace=False))
    assert sample.user_ids == [full.user_ids[p] for p in positions]
    np.testing.assert_array_equal(sample.cf_rows, full.cf_rows[positions])
    for got, want in zip(sample.targets, [full.targets[p] for p in positions], strict=True):
        np.testing.assert_array_equal(got, want)
    assert sample_users(full, 50, seed=1).user_ids == sample.user_ids


def test_training_scores_at_most_max_users_per_stage(data, monkeypatch) -> None:
    """evaluation.max_users bounds validation and test (1M-user shops): the test table's users."""
    from recommender.config import load_training_settings
    from recommender.training.pipeline import run_training

    settings = load_training_settings()
    settings = settings.model_copy(
        update={
            "evaluation": settings.evaluation.model_copy(update={"max_users": 40}),
            "hybrid": settings.hybrid.model_copy(update={"folds": 1, "live_fraction": 0.0}),
        }
    )
    result = run_training(data, settings, [V.MODEL_ALS], embeddings=False)
    assert len(build_evaluation_set(data, V.STAGE_TEST)) > 40
    assert result.report["segments"][V.SEGMENT_UNKNOWN]["users"] == 40


def test_tuning_trials_score_fewer_users_on_a_large_catalogue(data) -> None:
    """evaluation.max_tuning_pairs bounds the validation users the trials rank (users × items);
    the test table keeps max_users."""
    from recommender.config import load_training_settings
    from recommender.training.pipeline import run_training

    settings = load_training_settings()
    pairs = 30 * len(data.item_ids)
    settings = settings.model_copy(
        update={
            "evaluation": settings.evaluation.model_copy(
                update={"max_users": 40, "max_tuning_pairs": pairs}
            ),
            "hybrid": settings.hybrid.model_copy(update={"folds": 1, "live_fraction": 0.0}),
        }
    )
    said: list[str] = []
    result = run_training(data, settings, [V.MODEL_ALS], said.append, embeddings=False)
    assert any(line.startswith("validation users 30, test users 40") for line in said)
    assert result.report["segments"][V.SEGMENT_UNKNOWN]["users"] == 40
