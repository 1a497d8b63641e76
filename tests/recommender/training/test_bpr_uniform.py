"""Numba BPR with uniform negatives: one SGD step by hand, determinism, quality vs the old one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.training import BPRParams
from recommender.data import load_processed
from recommender.data.matrix import binarise, user_item_matrix
from recommender.evaluation.evaluator import mean_metric, tie_order
from recommender.evaluation.protocol import EvaluationSet, build_evaluation_set, history_splits
from recommender.scoring.factors import FactorModel
from recommender.training.bpr import fit_bpr
from recommender.training.bpr_reference import fit_uniform_minibatch
from recommender.training.bpr_uniform import fit_uniform, sgd_epochs
from recommender.training.tuning import cf_ranker


def test_one_sgd_step_matches_the_bpr_update_by_hand() -> None:
    # one user who has item 0 of 2 items: the negative can only be item 1 (item 0 is redrawn and
    # this seed's stream draws item 1 within the 5 redraws)
    indptr, indices, users = np.array([0, 1]), np.array([0]), np.array([0])
    p = np.array([[0.1, 0.2]])
    q = np.array([[0.3, -0.1], [-0.2, 0.4]])
    bias = np.array([0.05, 0.0])
    lr, reg = 0.1, 0.01
    x = 0.1 * 0.5 + 0.2 * -0.5 + 0.05  # p·(q0 − q1) + b0 − b1 = 0
    z = 1.0 / (1.0 + np.exp(x))  # σ(−x) = 0.5 exactly at x = 0
    assert x == pytest.approx(0.0) and z == pytest.approx(0.5)
    expected_p = p[0] + lr * (z * (q[0] - q[1]) - reg * p[0])  # [0.1249, 0.1748]
    expected_q0 = q[0] + lr * (z * p[0] - reg * q[0])  # [0.3047, -0.0899]
    expected_q1 = q[1] + lr * (-z * p[0] - reg * q[1])  # [-0.2048, 0.3896]
    sgd_epochs(indptr, indices, users, p, q, bias, lr, reg, 1, np.uint64(12345))
    np.testing.assert_allclose(p[0], [0.1249, 0.1748], atol=1e-12)
    np.testing.assert_allclose(p[0], expected_p, atol=1e-12)
    np.testing.assert_allclose(q[0], [0.3047, -0.0899], atol=1e-12)
    np.testing.assert_allclose(q[0], expected_q0, atol=1e-12)
    np.testing.assert_allclose(q[1], [-0.2048, 0.3896], atol=1e-12)
    np.testing.assert_allclose(q[1], expected_q1, atol=1e-12)
    np.testing.assert_allclose(bias, [0.05 + lr * (0.5 - reg * 0.05), lr * -0.5], atol=1e-12)
    # the step's direction: the positive now scores above the negative
    assert p[0] @ (q[0] - q[1]) + bias[0] - bias[1] > 0.0


def _matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((60, 25)) < 0.2).astype(np.float32)
    return sp.csr_matrix(dense)


def test_two_fits_with_one_seed_are_equal_and_another_seed_differs() -> None:
    params = dict(factors=4, learning_rate=0.05, regularization=0.01, iterations=30)
    a = fit_uniform(_matrix(), random_state=3, **params)
    b = fit_uniform(_matrix(), random_state=3, **params)
    c = fit_uniform(_matrix(), random_state=4, **params)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert a[0].shape == (60, 5) and a[1].shape == (25, 5)
    np.testing.assert_array_equal(a[0][:, -1], 1.0)


def test_no_interactions_leaves_the_initial_factors() -> None:
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    users, items = fit_uniform(empty, 2, 0.05, 0.01, 5, 0)
    assert users.shape == (3, 3) and items.shape == (4, 3)
    np.testing.assert_array_equal(items[:, -1], 0.0)


def test_validation_ndcg_on_the_demo_shop_is_not_below_the_old_minibatch_bpr(
    embedded_dir,
) -> None:
    data = load_processed(embedded_dir)
    train = user_item_matrix(data, history_splits(V.STAGE_VALIDATION))
    validation = build_evaluation_set(data, V.STAGE_VALIDATION)
    ties = tie_order(len(data.item_ids), 42)
    # one seed is noisy on 360 trainable users (±0.01): the mean over six seeds is compared
    new_scores, old_scores = [], []
    for seed in range(1, 7):
        params = BPRParams(factors=16, learning_rate=0.05, iterations=100, random_state=seed)
        new = fit_bpr(train, params)
        old_u, old_v = fit_uniform_minibatch(binarise(train), params)
        old = FactorModel(V.MODEL_BPR, old_u, old_v, params, 1.0, 0.0)
        new_scores.append(_score(new, validation, ties))
        old_scores.append(_score(old, validation, ties))
    assert [round(x, 4) for x in new_scores] == [0.1122, 0.1037, 0.1098, 0.1277, 0.129, 0.1086]
    assert [round(x, 4) for x in old_scores] == [0.1228, 0.1168, 0.111, 0.1216, 0.132, 0.104]
    assert round(float(np.mean(new_scores)), 4) == 0.1152  # old: 0.1147
    assert np.mean(new_scores) >= np.mean(old_scores) - 0.005


def _score(model: FactorModel, validation: EvaluationSet, ties: np.ndarray) -> float:
    return mean_metric(cf_ranker(model), validation, V.SEGMENT_TRAINABLE, "ndcg@10", ties)
