"""A request scores one user as a batch of one through fast paths of its own (issue 12): each
must give bit for bit what the batch arithmetic gives that user's row."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.scoring.hybrid import combine, normalise
from recommender.scoring.signals import (
    _history_sums,
    content_scores,
    history_entries,
    item_similarity_scores,
    recency_weights,
)

N_ITEMS = 40
HISTORIES = [
    np.array([7]),  # one item: item-kNN adds its CSR row directly
    np.array([3, 11, 3, 29]),  # a repeated item (evaluation may pass one)
    np.array([5, 1, 38, 12, 20, 9]),
    np.array([], dtype=np.int64),
    np.arange(39, 4, -1),  # long: 35 rows added in order (float64 sums, the norm's sum)
]


def batch_of(history: np.ndarray) -> list[np.ndarray]:
    """The history as the second user of a batch (other users around it take the batch path)."""
    return [np.array([2, 4]), history, np.array([30])]


@pytest.fixture(scope="module")
def arrays() -> dict[str, object]:
    rng = np.random.default_rng(12)
    dense = rng.random((N_ITEMS, N_ITEMS)).astype(np.float32)
    dense[dense < 0.7] = 0.0
    np.fill_diagonal(dense, 0.0)
    embeddings = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = (embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)).astype(np.float32)
    factors = rng.normal(size=(N_ITEMS, 5)).astype(np.float32)
    return {
        "similarity": sp.csr_matrix(dense),
        "embeddings": embeddings,
        "cosine": cosine,
        "factors": factors,
    }


@pytest.mark.parametrize("history", HISTORIES, ids=["one", "repeated", "six", "empty", "long"])
@pytest.mark.parametrize("decay", [None, 0.6], ids=["unweighted", "recency"])
def test_one_user_signals_equal_their_row_of_a_batch(arrays, history, decay):
    alone = [history]
    batch = batch_of(history)
    w_alone = None if decay is None else recency_weights(alone, decay)
    w_batch = None if decay is None else recency_weights(batch, decay)
    one_rows, one_items, one_w = history_entries(alone, w_alone)
    rows, items, w = history_entries(batch, w_batch)
    own = rows == 1
    assert one_rows.tolist() == [0] * int(own.sum())
    assert one_items.tolist() == items[own].tolist()
    assert one_w.tolist() == w[own].tolist()
    pairs = [
        (
            item_similarity_scores(alone, arrays["similarity"], w_alone),
            item_similarity_scores(batch, arrays["similarity"], w_batch),
        ),
        (
            content_scores(alone, arrays["embeddings"], w_alone, arrays["cosine"]),
            content_scores(batch, arrays["embeddings"], w_batch, arrays["cosine"]),
        ),
        (
            _history_sums(alone, arrays["factors"], w_alone),
            _history_sums(batch, arrays["factors"], w_batch),
        ),
    ]
    for one, many in pairs:
        assert one.shape == (1, many.shape[1]) and one.dtype == many.dtype
        np.testing.assert_array_equal(one[0], many[1])


def test_one_item_history_scores_its_similarity_row(arrays):
    similarity = arrays["similarity"]
    got = item_similarity_scores([np.array([7])], similarity)
    np.testing.assert_array_equal(got[0], similarity[7].toarray()[0])


@pytest.mark.parametrize("method", ["minmax", "rank"])
def test_normalise_one_row_equals_its_row_of_a_batch(method):
    rng = np.random.default_rng(3)
    batch = np.round(rng.random((3, 50)), 3).astype(np.float32)
    batch[2] = 0.25  # no spread: all zeros
    for row in range(3):
        one = normalise(batch[row : row + 1], method)
        np.testing.assert_array_equal(one[0], normalise(batch, method)[row])
        np.testing.assert_array_equal(normalise(batch[row], method), one[0])  # a vector
    assert not normalise(batch[2:], method).any()


def test_combine_sums_in_place_without_touching_its_inputs():
    cf = np.array([[0.0, 2.0, 4.0]], dtype=np.float32)
    static = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    before = cf.copy(), static.copy()
    got = combine(
        {"cf": cf, "popularity": static}, {"cf": 0.5, "popularity": 2.0}, "minmax", {"popularity"}
    )
    np.testing.assert_array_equal(
        got, np.float32(0.5) * np.array([[0.0, 0.5, 1.0]], np.float32) + np.float32(2.0) * static
    )
    np.testing.assert_array_equal(cf, before[0])
    np.testing.assert_array_equal(static, before[1])


def test_one_item_history_adds_a_repeated_column_twice():
    """A CSR row that stores a column twice (non-canonical) is summed, as the batch path does."""
    similarity = sp.csr_matrix(
        (
            np.array([0.5, 0.25, 0.125], dtype=np.float32),
            np.array([3, 3, 9]),
            np.array([0, 0, 3, 3]),
        ),
        shape=(3, 10),
    )
    alone = item_similarity_scores([np.array([1])], similarity)
    batch = item_similarity_scores([np.array([0]), np.array([1])], similarity)
    np.testing.assert_array_equal(alone[0], batch[1])
    assert alone[0, 3] == np.float32(0.75) and alone[0, 9] == np.float32(0.125)
