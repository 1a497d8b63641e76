"""Session ("basket") weighting of item-kNN: gap-cut sessions, hand-computed similarities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.scoring import fit_item_knn, session_items

HOUR = 3600


def test_session_items_cut_on_gaps_first_time_per_pair():
    # user 0: item 0 at 0 h, item 1 at 1 h, item 2 at 26 h (gap 25 h > 24 h), item 1 again at 27 h
    # user 1: item 2 at 10 h, item 0 at 0 h (rows out of time order on purpose)
    users = np.array([0, 0, 0, 0, 1, 1])
    items = np.array([0, 1, 2, 1, 2, 0])
    seconds = np.array([0, 1, 26, 27, 10, 0]) * HOUR
    sessions = session_items(users, items, seconds, 3, gap_seconds=24 * HOUR).toarray()
    np.testing.assert_array_equal(sessions, [[1, 1, 0], [0, 0, 1], [1, 0, 1]])


def test_session_items_chain_and_empty():
    # 0 h, 20 h, 40 h: each gap is 20 h, so one 24 h session although 0 h and 40 h are 40 h apart
    sessions = session_items(
        np.zeros(3), np.array([0, 1, 2]), np.array([0, 20, 40]) * HOUR, 4, gap_seconds=24 * HOUR
    )
    np.testing.assert_array_equal(sessions.toarray(), [[1, 1, 1, 0]])
    empty = session_items(np.zeros(0), np.zeros(0), np.zeros(0), 4, gap_seconds=HOUR)
    assert empty.shape == (0, 4)


def test_session_weighted_similarity_hand_computed():
    # users: u0 = {0, 1, 2}, u1 = {0, 2}; sessions: {0, 1}, {2} (u0) and {0, 2} (u1)
    ui = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 1]], dtype=np.float32))
    sessions = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=np.float32))
    sim = fit_item_knn(ui, neighbours=2, shrinkage=1.0, sessions=sessions, session_weight=2.0)
    got = sim.toarray()
    # sim(i, j) = (co(i, j) + 2 * session_co(i, j)) / (sqrt(n_i n_j) + 1); n = (2, 1, 2)
    assert got[0, 1] == pytest.approx((1 + 2 * 1) / (np.sqrt(2 * 1) + 1), rel=1e-6)
    assert got[0, 2] == pytest.approx((2 + 2 * 1) / (np.sqrt(2 * 2) + 1), rel=1e-6)
    assert got[1, 2] == pytest.approx((1 + 2 * 0) / (np.sqrt(1 * 2) + 1), rel=1e-6)
    np.testing.assert_allclose(got, got.T, rtol=1e-6)
    assert np.all(np.diag(got) == 0)
    # weight 0 (or no sessions) is the plain shrunk cosine
    plain = fit_item_knn(ui, neighbours=2, shrinkage=1.0).toarray()
    assert plain[0, 2] == pytest.approx(2 / 3, rel=1e-6)
    np.testing.assert_array_equal(
        fit_item_knn(ui, 2, 1.0, sessions=sessions, session_weight=0.0).toarray(), plain
    )


def test_session_arguments_are_checked():
    ui = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="session_weight"):
        fit_item_knn(ui, 2, 0.0, sessions=ui, session_weight=-1.0)
    with pytest.raises(ValueError, match="item columns"):
        wide = sp.csr_matrix((1, 4), dtype=np.float32)
        fit_item_knn(ui, 2, 0.0, sessions=wide, session_weight=1.0)
