"""ALS/BPR fitting: factor orientation, dtypes, determinism, the user-items matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.training import ALSParams, BPRParams
from recommender.data.matrix import user_item_matrix
from recommender.scoring.factors import check_factor_shapes
from recommender.training.als import confidence_matrix, fit_als
from recommender.training.bpr import fit_bpr
from tests.recommender.training.synthetic import synthetic_data

N_USERS, N_ITEMS = 90, 30  # deliberately non-square so a swapped matrix cannot pass


def _blocks() -> sp.csr_matrix:
    """Users 0-44 like items 0-14, users 45-89 like items 15-29 (each user 6 random items)."""
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(N_USERS):
        block = 0 if u < N_USERS // 2 else 15
        for i in rng.choice(15, 6, replace=False):
            rows.append(u)
            cols.append(block + i)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))


def _block_accuracy(u: np.ndarray, v: np.ndarray) -> float:
    scores = u @ v.T
    first = scores[:, :15].mean(axis=1) > scores[:, 15:].mean(axis=1)
    return float(np.mean(first == (np.arange(N_USERS) < N_USERS // 2)))


def test_als_factor_orientation_rows_are_users_and_items() -> None:
    model = fit_als(_blocks(), ALSParams(factors=4, regularization=0.1, iterations=10))
    assert model.user_factors.shape == (N_USERS, 4)
    assert model.item_factors.shape == (N_ITEMS, 4)
    assert model.user_factors.dtype == np.float32 and model.item_factors.dtype == np.float32
    assert _block_accuracy(model.user_factors, model.item_factors) == 1.0


@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_bpr_orientation_bias_column_and_determinism(sampling: str) -> None:
    params = BPRParams(factors=4, iterations=60, learning_rate=0.05, negative_sampling=sampling)
    model = fit_bpr(_blocks(), params)
    assert model.user_factors.shape == (N_USERS, 5)
    assert model.item_factors.shape == (N_ITEMS, 5)
    np.testing.assert_array_equal(model.user_factors[:, -1], 1.0)
    assert _block_accuracy(model.user_factors, model.item_factors) >= 0.95
    again = fit_bpr(_blocks(), params)
    np.testing.assert_array_equal(model.item_factors, again.item_factors)


def test_als_is_deterministic_for_a_seed() -> None:
    a = fit_als(_blocks(), ALSParams(factors=4, iterations=5, random_state=3))
    b = fit_als(_blocks(), ALSParams(factors=4, iterations=5, random_state=3))
    np.testing.assert_array_equal(a.user_factors, b.user_factors)


def test_check_factor_shapes_rejects_swapped_factors() -> None:
    u, v = np.zeros((N_USERS, 4), np.float32), np.zeros((N_ITEMS, 4), np.float32)
    check_factor_shapes(u, v, N_USERS, N_ITEMS, 4)
    with pytest.raises(AssertionError, match="rows must be the trainable users"):
        check_factor_shapes(v, u, N_USERS, N_ITEMS, 4)
    with pytest.raises(AssertionError, match="float32"):
        check_factor_shapes(u.astype(np.float64), v, N_USERS, N_ITEMS, 4)


def test_confidence_is_one_plus_alpha_weight() -> None:
    m = sp.csr_matrix(np.array([[0, 2.0], [1.5, 0]], dtype=np.float32))
    assert confidence_matrix(m, 10.0).toarray().tolist() == [[0, 21.0], [16.0, 0]]


def test_user_item_matrix_follows_mappings_and_splits() -> None:
    data = synthetic_data(users=120, items=25, seed=1)
    matrix = user_item_matrix(data, (V.SPLIT_TRAIN,))
    assert matrix.shape == (len(data.trainable_user_ids), len(data.item_ids))
    frame = data.interactions
    train_pos = frame[(frame[V.SPLIT] == V.SPLIT_TRAIN) & frame[V.IS_POSITIVE]]
    expected = train_pos[train_pos[V.USER_ID].isin(data.trainable_user_ids)]
    assert matrix.nnz == len(expected)
    row = expected.iloc[0]
    r = data.trainable_index[row[V.USER_ID]]
    c = data.item_index[row[V.PRODUCT_ID]]
    assert matrix[r, c] == pytest.approx(row[V.WEIGHT])
    held_out = frame[frame[V.SPLIT] != V.SPLIT_TRAIN].iloc[0]
    r = data.trainable_index[held_out[V.USER_ID]]
    assert matrix[r, data.item_index[held_out[V.PRODUCT_ID]]] == 0
