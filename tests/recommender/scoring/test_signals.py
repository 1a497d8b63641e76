"""Signals and fold-in against hand-computed values and implicit's own ALS user step."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.scoring import (
    cf_scores,
    content_scores,
    fit_item_knn,
    fold_in,
    item_similarity_scores,
    popularity_scores,
    quality_scores,
    recency_weights,
)

V = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)


def test_cf_scores_are_dot_products():
    u = np.array([[2.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(cf_scores(u, V), [[2.0, 3.0, 5.0]])


def test_fold_in_is_ridge_regression_without_confidences():
    # u = (VᵀV + λI)⁻¹ V_Iᵀ 1 with I = {0}
    lam = 0.5
    expected = np.linalg.solve(V.T @ V + lam * np.eye(2), V[[0]].T @ np.ones(1))
    got = fold_in([np.array([0])], V, lam)
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)


def test_fold_in_with_the_precomputed_inverse_equals_the_solve():
    from recommender.scoring.signals import fold_in_inverse, item_gram

    rng = np.random.default_rng(3)
    factors = rng.normal(size=(40, 16)).astype(np.float32)
    histories = [np.array([1, 5, 7]), np.array([], dtype=int), np.array([2])]
    inverse = fold_in_inverse(item_gram(factors), 0.7)
    solved = fold_in(histories, factors, 0.7)
    np.testing.assert_allclose(fold_in(histories, factors, 0.7, inverse=inverse), solved, atol=1e-6)
    one = fold_in(histories[2:], factors, 0.7, inverse=inverse)  # one user: as in a batch
    np.testing.assert_array_equal(one[0], fold_in(histories, factors, 0.7, inverse=inverse)[2])
    assert np.all(fold_in(histories, factors, 0.7, inverse=inverse)[1] == 0)


def test_fold_in_empty_history_is_zero():
    assert np.all(fold_in([np.array([], dtype=int)], V, 1.0) == 0)


def test_fold_in_matches_implicit_als_user_step():
    implicit = pytest.importorskip("implicit")
    rng = np.random.default_rng(0)
    items = rng.random((30, 4)).astype(np.float32)
    model = implicit.cpu.als.AlternatingLeastSquares(factors=4, regularization=0.3, alpha=1.0)
    model.item_factors = items
    model.user_factors = np.zeros((1, 4), dtype=np.float32)
    history = sp.csr_matrix(([3.0, 3.0], ([0, 0], [3, 7])), shape=(1, 30), dtype=np.float32)
    expected = model.recalculate_user(0, history)
    # implicit: C = alpha * value
    got = fold_in([np.array([3, 7])], items, 0.3, confidences=[np.array([3.0, 3.0])])
    np.testing.assert_allclose(got[0], np.ravel(expected), rtol=1e-3, atol=1e-4)


def test_item_similarity_sums_history_rows():
    s = sp.csr_matrix(np.array([[0, 0.5, 0.2], [0.5, 0, 0.1], [0.2, 0.1, 0]], dtype=np.float32))
    got = item_similarity_scores([np.array([0, 1]), np.array([], dtype=int)], s)
    np.testing.assert_allclose(got, [[0.5, 0.5, 0.3], [0, 0, 0]], rtol=1e-6)


def test_content_scores_cosine_to_mean_profile():
    e = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    got = content_scores([np.array([0, 1])], e)
    profile = np.array([1.0, 1.0]) / np.sqrt(2)
    np.testing.assert_allclose(got[0], e @ profile, rtol=1e-5)


def test_item_knn_cosine_with_shrinkage_and_top_k():
    # users x items: item0 & item1 co-occur twice, item0 & item2 once
    ui = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
    sim = fit_item_knn(ui, neighbours=1, shrinkage=0.0).toarray()
    assert sim[0, 1] == pytest.approx(2 / np.sqrt(2 * 2))
    assert sim[0, 2] == 0.0  # dropped: only the best neighbour is kept
    assert np.all(np.diag(sim) == 0)
    shrunk = fit_item_knn(ui, neighbours=2, shrinkage=2.0).toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (2 + 2))


def test_popularity_log_scaled_to_one():
    ui = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(popularity_scores(ui), [1.0, np.log(2) / np.log(4), 0.0], rtol=1e-6)


def test_quality_smoothing_prefers_many_good_ratings():
    q = quality_scores(
        np.array([5.0, 4.8, 4.0, np.nan]), np.array([1, 1000, 1000, 0]), prior_count=20
    )
    assert q[1] > q[0] > q[2]  # one 5★ review does not beat a thousand 4.8★ ones
    assert q[3] == pytest.approx((4.4 - 1) / 4, abs=1e-3)  # no rating -> the catalogue mean
    assert 0.0 <= q.min() and q.max() <= 1.0


def test_recency_weights_are_decay_to_the_age_newest_last():
    got = recency_weights([np.array([7, 3, 5]), np.array([2]), np.array([], dtype=int)], 0.5)
    np.testing.assert_allclose(got[0], [0.25, 0.5, 1.0])
    np.testing.assert_allclose(got[1], [1.0])
    assert got[2].size == 0
    with pytest.raises(ValueError, match="recency decay"):
        recency_weights([np.array([1])], 0.0)
    with pytest.raises(ValueError, match="recency decay"):
        recency_weights([np.array([1])], 1.5)


def test_weighted_item_similarity_scores_hand_computed():
    sim = sp.csr_matrix(np.array([[0, 0.5, 0.2], [0.4, 0, 0.3], [0, 0, 0]], dtype=np.float32))
    history = [np.array([0, 1])]  # item 1 is the newest
    # unweighted: row0 + row1 = [0.4, 0.5, 0.5]; decay 0.5: 0.5 * row0 + row1 = [0.4, 0.25, 0.4]
    np.testing.assert_allclose(item_similarity_scores(history, sim), [[0.4, 0.5, 0.5]], rtol=1e-6)
    weighted = item_similarity_scores(history, sim, recency_weights(history, 0.5))
    np.testing.assert_allclose(weighted, [[0.4, 0.25, 0.4]], rtol=1e-6)


def test_weighted_content_scores_use_the_weighted_mean_profile():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    history = [np.array([0, 1])]
    # profile 0.25 * e0 + 1 * e1 = (0.25, 1) / |.|; cosine with each item
    profile = np.array([0.25, 1.0]) / np.hypot(0.25, 1.0)
    got = content_scores(history, emb, recency_weights(history, 0.25))
    np.testing.assert_allclose(got[0], emb @ profile, rtol=1e-5)
    # decay 1 (all weights 1) is the plain mean
    np.testing.assert_allclose(
        content_scores(history, emb, recency_weights(history, 1.0)),
        content_scores(history, emb),
        rtol=1e-6,
    )


def test_weighted_history_keeps_the_largest_weight_of_a_repeated_item():
    sim = sp.csr_matrix(np.eye(3, dtype=np.float32))
    history = [np.array([2, 0, 2]), np.array([], dtype=int)]
    weights = [np.array([0.25, 0.5, 1.0]), np.array([])]
    np.testing.assert_allclose(
        item_similarity_scores(history, sim, weights), [[0.5, 0.0, 1.0], [0.0, 0.0, 0.0]]
    )


def test_history_sums_and_item_similarity_match_a_sparse_history_matrix():
    """The flat gathers of the request path apply the sparse history matrix's rule (distinct
    items, a repeated item keeping its largest weight) and, for item-kNN, its exact float32
    arithmetic: bit-identical to ``history_matrix @ similarity``."""
    from recommender.scoring.signals import _history_sums

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(6, 4))
    dense = rng.random((6, 6)).astype(np.float32)
    dense[dense < 0.4] = 0
    sim = sp.csr_matrix(dense)
    histories = [np.array([1, 3, 1]), np.array([], dtype=int), np.array([5, 0])]
    weights = [np.array([0.25, 0.5, 1.0]), np.array([]), np.array([0.5, 1.0])]
    for w in (None, weights):
        indicator = np.zeros((3, 6), dtype=np.float32)
        for row, items in enumerate(histories):
            for k, item in enumerate(items):
                value = 1.0 if w is None else w[row][k]
                indicator[row, item] = max(indicator[row, item], value)
        expected = indicator.astype(np.float64) @ matrix
        np.testing.assert_allclose(_history_sums(histories, matrix, w), expected, rtol=1e-12)
        np.testing.assert_array_equal(
            item_similarity_scores(histories, sim, w),
            (sp.csr_matrix(indicator) @ sim).toarray(),
        )
    # item 1 appears with weights 0.25 and 1.0: only the larger counts, once
    np.testing.assert_allclose(
        _history_sums(histories[:1], matrix, weights[:1])[0], matrix[1] + 0.5 * matrix[3]
    )


def test_a_refold_is_the_als_user_step_with_the_newest_item_boosted():
    """A trainable user's refold (ScoringModel.refold_model): ALS's λ and confidences
    ``1 + alpha · r``, the newest item's recency weight ``r`` times the boost."""
    import scipy.sparse as sparse

    from recommender import vocabulary as voc
    from recommender.scoring import Refold, ScoringModel, compute_signals

    rng = np.random.default_rng(5)
    items = rng.normal(size=(12, 3)).astype(np.float32)
    refold = Refold(regularization=0.4, alpha=5.0, newest_boost=2.0)
    model = ScoringModel.build(
        item_factors=items,
        user_factors=np.zeros((0, 3), dtype=np.float32),
        fold_in_regularization=10.0,
        item_similarity=sparse.csr_matrix((12, 12), dtype=np.float32),
        embeddings=None,
        popularity=np.ones(12, dtype=np.float32),
        quality=np.ones(12, dtype=np.float32),
        refold=refold,
    )
    history = np.array([4, 9, 2])
    r = np.array([0.25, 0.5, 1.0 * 2.0])  # decay 0.5, the newest (2) boosted x2
    c = 1.0 + 5.0 * r
    v = items[history].astype(np.float64)
    a = items.astype(np.float64).T @ items + 0.4 * np.eye(3) + (v.T * (c - 1.0)) @ v
    expected = items.astype(np.float64) @ np.linalg.solve(a, v.T @ c)
    got = compute_signals(model.refold_model, voc.SEGMENT_COLD, [history], ["cf"], None, 0.5)
    np.testing.assert_allclose(got["cf"][0], expected, rtol=1e-4, atol=1e-5)
    assert model.refold_model.fold_in_regularization == 0.4
    # a cold user keeps the cold fold-in (λ 10, the recency weights as confidences)
    cold = compute_signals(model, voc.SEGMENT_COLD, [history], ["cf"], None, 0.5)["cf"][0]
    w = np.array([0.25, 0.5, 1.0])
    a_cold = items.astype(np.float64).T @ items + 10.0 * np.eye(3) + (v.T * (w - 1.0)) @ v
    np.testing.assert_allclose(
        cold, items.astype(np.float64) @ np.linalg.solve(a_cold, v.T @ w), rtol=1e-4, atol=1e-5
    )
    # no refold configured: the refold is the cold fold-in
    plain = ScoringModel.build(
        items, np.zeros((0, 3)), 10.0, sparse.csr_matrix((12, 12)), None, np.ones(12), np.ones(12)
    )
    assert plain.refold_model is plain
    assert Refold.from_dict(refold.to_dict()) == refold and Refold.from_dict(None) is None


def test_another_fold_in_lambda_recomputes_the_precomputed_inverse():
    """A unit-confidence fold-in (no recency decay) uses the model's precomputed inverse, so
    changing λ must recompute it: the hybrid tuner's fold-in grid had scored every λ with the
    inverse of the model's own."""
    from scipy import sparse

    from recommender import vocabulary as voc
    from recommender.scoring import ScoringModel, compute_signals, with_fold_in_regularization

    rng = np.random.default_rng(11)
    items = rng.normal(size=(12, 3)).astype(np.float32)
    parts = (sparse.csr_matrix((12, 12), dtype=np.float32), None, np.ones(12), np.ones(12))
    base = ScoringModel.build(items, np.zeros((0, 3)), 10.0, *parts)
    moved = with_fold_in_regularization(base, 0.2)
    history = [np.array([4, 9, 2])]
    v = items[history[0]].astype(np.float64)
    expected = items.astype(np.float64) @ np.linalg.solve(
        items.astype(np.float64).T @ items + 0.2 * np.eye(3), v.sum(axis=0)
    )
    got = compute_signals(moved, voc.SEGMENT_COLD, history, ["cf"], None, 1.0)["cf"][0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    fresh = ScoringModel.build(items, np.zeros((0, 3)), 0.2, *parts)
    np.testing.assert_array_equal(moved.fold_in_inverse, fresh.fold_in_inverse)
    assert moved.fold_in_regularization == 0.2 and base.fold_in_regularization == 10.0
