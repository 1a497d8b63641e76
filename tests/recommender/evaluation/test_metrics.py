"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.evaluation import metrics as M

# three users, K = 4; targets: user0 -> item 7 at rank 3 (1-based), user1 -> missing,
# user2 -> two relevant items (2 at rank 1, 9 at rank 4)
TOP = np.array([[1, 4, 7, 3], [5, 6, 8, 0], [2, 1, 3, 9]])
TARGETS = [np.array([7]), np.array([11]), np.array([2, 9])]


def test_hits_matrix_marks_relevant_positions() -> None:
    hits = M.hits_matrix(TOP, TARGETS)
    assert hits.tolist() == [
        [False, False, True, False],
        [False, False, False, False],
        [True, False, False, True],
    ]


def test_hit_rate_at_k() -> None:
    hits = M.hits_matrix(TOP, TARGETS)
    assert M.hit_rate(hits, 2).tolist() == [0.0, 0.0, 1.0]
    assert M.hit_rate(hits, 4).tolist() == [1.0, 0.0, 1.0]


def test_recall_counts_share_of_relevant_items() -> None:
    hits = M.hits_matrix(TOP, TARGETS)
    assert M.recall(hits, 4, TARGETS).tolist() == [1.0, 0.0, 1.0]
    assert M.recall(hits, 3, TARGETS).tolist() == [1.0, 0.0, 0.5]


def test_ndcg_hand_computed() -> None:
    hits = M.hits_matrix(TOP, TARGETS)
    got = M.ndcg(hits, 4, TARGETS)
    # user0: 1/log2(4) = 0.5; user2: (1 + 1/log2(5)) / (1 + 1/log2(3))
    expected_u2 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert got == pytest.approx([0.5, 0.0, expected_u2])
    assert M.ndcg(hits, 2, TARGETS) == pytest.approx([0.0, 0.0, 1 / (1 + 1 / math.log2(3))])


def test_mrr_first_relevant_rank() -> None:
    hits = M.hits_matrix(TOP, TARGETS)
    assert M.mrr(hits, 4) == pytest.approx([1 / 3, 0.0, 1.0])
    assert M.mrr(hits, 2) == pytest.approx([0.0, 0.0, 1.0])


def test_coverage_counts_distinct_items() -> None:
    # distinct items in TOP: 0,1,2,3,4,5,6,7,8,9 -> 10 of 20
    assert M.coverage(TOP, 20) == 0.5
    assert M.coverage(TOP[:1], 8) == 0.5


def test_intra_list_diversity_hand_computed() -> None:
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    # pairs: (0,1) cos 0 -> 1; (0,2) cos 1/sqrt2; (1,2) cos 1/sqrt2
    expected = 1 - (0 + 2 / math.sqrt(2)) / 3
    got = M.intra_list_diversity(np.array([[0, 1, 2], [0, 0, 0]]), emb)
    assert got == pytest.approx([expected, 0.0])


def test_bootstrap_interval_brackets_the_mean_and_is_seeded() -> None:
    values = np.r_[np.ones(30), np.zeros(70)]
    low, high = M.bootstrap_interval(values, 500, seed=1)
    assert low < 0.3 < high
    assert (low, high) == M.bootstrap_interval(values, 500, seed=1)
    assert 0.18 < low and high < 0.42
    assert M.bootstrap_interval(values, 0, seed=1) == (0.3, 0.3)


def test_bootstrap_intervals_share_one_draw_and_match_the_single_metric_interval() -> None:
    rng = np.random.default_rng(5)
    values = rng.random((3, 257))
    together = M.bootstrap_intervals(values, 300, 9)
    assert together == [M.bootstrap_interval(row, 300, 9) for row in values]
    assert M.bootstrap_intervals(np.zeros((2, 0)), 300, 9) == [(0.0, 0.0), (0.0, 0.0)]
    assert M.bootstrap_intervals(np.array([[0.5], [1.0]]), 300, 9) == [(0.5, 0.5), (1.0, 1.0)]


def test_intra_list_diversity_equals_the_pairwise_mean_cosine_distance() -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(12, 5))
    emb[3] = 0.0  # an item without an embedding counts as cosine 0 with every other
    top_k = rng.permutation(12)[None, :4].repeat(3, axis=0)
    top_k[1] = [3, 0, 1, 2]
    top_k[2] = [4, 5, 6, 7]
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-300)
    expected = [
        1.0
        - np.mean(
            [unit[a] @ unit[b] for i, a in enumerate(row) for j, b in enumerate(row) if i != j]
        )
        for row in top_k
    ]
    np.testing.assert_allclose(M.intra_list_diversity(top_k, emb), expected, rtol=1e-12)
