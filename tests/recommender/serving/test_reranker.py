"""MMR and weight resolution."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.errors import InvalidRequestError
from recommender.scoring import HybridConfig
from recommender.serving.reranker import (
    candidate_similarity,
    check_weights,
    mmr_order,
    mmr_order_cosine,
    segment_weights,
)

# items 0 and 1 are the same direction; 2 is orthogonal to both
EMB = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)


def sims(candidates) -> np.ndarray:
    return candidate_similarity(np.asarray(candidates), EMB, None)


def test_candidate_similarity_precomputed_equals_on_the_fly():
    cands = np.array([[0, 2, 3], [3, 1, 0]])
    assert np.allclose(candidate_similarity(cands, EMB, EMB @ EMB.T), sims(cands))
    expected = [[1, 0, 0.6], [0, 1, 0.8], [0.6, 0.8, 1]]
    assert np.allclose(sims([[0, 2, 3]])[0], expected)


def test_mmr_zero_diversity_keeps_relevance_order():
    rel = np.array([[0.9, 0.8, 0.5]], dtype=np.float32)
    order = mmr_order(rel, sims([[0, 1, 2]]), 3, 0.0)
    assert order.tolist() == [[0, 1, 2]]


def test_mmr_skips_a_duplicate_direction():
    rel = np.array([[0.9, 0.8, 0.5]], dtype=np.float32)
    order = mmr_order(rel, sims([[0, 1, 2]]), 3, 0.5)
    # after 0: candidate 1 scores .5*.75 - .5*1 < 0, candidate 2 scores .5*0 - .5*0 = 0
    assert order.tolist() == [[0, 2, 1]]


def test_mmr_rows_are_independent_and_invalid_marked():
    rel = np.array([[0.9, 0.8, 0.5], [0.7, -np.inf, -np.inf]], dtype=np.float32)
    cands = np.array([[0, 1, 2], [3, 0, 1]])
    both = mmr_order(rel, sims(cands), 3, 0.5)
    assert both[0].tolist() == mmr_order(rel[:1], sims(cands[:1]), 3, 0.5)[0].tolist()
    assert both[1].tolist() == [0, -1, -1]


def test_mmr_without_embeddings_is_relevance_order():
    rel = np.array([[0.9, 0.8, -np.inf]], dtype=np.float32)
    assert mmr_order(rel, None, 3, 0.9).tolist() == [[0, 1, -1]]


def test_segment_weights():
    hybrid = HybridConfig()
    cold = hybrid.for_segment(V.SEGMENT_COLD)
    assert segment_weights(hybrid, V.SEGMENT_COLD, None) == (cold, True)
    assert segment_weights(hybrid, V.SEGMENT_COLD, {"popularity": 1.0}) == (
        {"popularity": 1.0},
        False,
    )
    assert segment_weights(hybrid, V.SEGMENT_COLD, dict(cold)) == (cold, True)
    unknown = hybrid.for_segment(V.SEGMENT_UNKNOWN)
    assert segment_weights(hybrid, V.SEGMENT_UNKNOWN, {"cf": 1.0}) == (unknown, True)
    assert segment_weights(hybrid, V.SEGMENT_UNKNOWN, {"cf": 1.0, "quality": 2.0}) == (
        {"quality": 2.0},
        False,
    )


def test_check_weights():
    assert check_weights(None) is None
    assert check_weights({"cf": 1, "popularity": 0}) == {"cf": 1.0, "popularity": 0.0}
    for bad in ({"cf": -1}, {"nope": 1}, {"cf": 0}, {"cf": float("nan")}, {"cf": "1"}, {}):
        with pytest.raises(InvalidRequestError):
            check_weights(bad)


def test_mmr_one_row_picks_as_its_row_of_a_batch():
    """The one-row MMR (``gain − penalty`` kept as one minimum) against the batch arithmetic, with
    ties, negative cosines and rows that run out."""
    rng = np.random.default_rng(5)
    embeddings = rng.normal(size=(60, 4)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings[7] = embeddings[3]  # a duplicate direction
    for trial in range(40):
        cands = np.stack([rng.choice(60, 30, replace=False) for _ in range(4)])
        rel = np.sort(np.round(rng.random((4, 30)), 2).astype(np.float32), axis=1)[:, ::-1].copy()
        rel[1, 20:] = -np.inf
        rel[2, 1:] = -np.inf
        rel[3] = 0.5  # all tied
        sim = candidate_similarity(cands, embeddings, None)
        for diversity in (0.1, 0.5, 0.9):
            both = mmr_order(rel, sim, 10, diversity)
            for row in range(4):
                alone = mmr_order(rel[row : row + 1], sim[row : row + 1], 10, diversity)
                assert alone[0].tolist() == both[row].tolist(), (trial, row, diversity)


def test_mmr_over_the_cosine_rows_picks_as_over_the_whole_block():
    """``mmr_order_cosine`` (the rows MMR reads, gathered step by step) against ``mmr_order`` over
    the ``(b, C, C)`` block gathered at once: the same picks, for batches and single rows, with
    ties, duplicates, negative cosines, rows that run out and padding candidates (item 0)."""
    rng = np.random.default_rng(11)
    embeddings = rng.normal(size=(80, 5)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings[9] = embeddings[2]
    cosine = (embeddings @ embeddings.T).astype(np.float32)
    for trial in range(30):
        b = int(rng.integers(1, 7))
        cands = np.stack([rng.choice(80, 25, replace=False) for _ in range(b)])
        rel = np.sort(np.round(rng.random((b, 25)), 2).astype(np.float32), axis=1)[:, ::-1].copy()
        rel[0, 18:] = -np.inf
        cands[0, 18:] = 0
        if b > 2:
            rel[2] = 0.25
            rel[1, 1:] = -np.inf
        for k, diversity in ((10, 0.1), (5, 0.6), (25, 0.9), (3, 0.0)):
            sims = candidate_similarity(cands, None, cosine)
            want = mmr_order(rel, sims, k, diversity)
            got = mmr_order_cosine(rel, cands, cosine, k, diversity)
            assert got.tolist() == want.tolist(), (trial, k, diversity)
