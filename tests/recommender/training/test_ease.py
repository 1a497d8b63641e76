"""EASE: the closed form against a direct constrained regression, and its place in training."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.training import EASEParams
from recommender.data import load_processed
from recommender.training.ease import ease_weights, fit_ease
from recommender.training.pipeline import run_training
from tests.fixtures.models import fast_settings

X = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=np.float32)


def test_closed_form_equals_the_regression_of_each_item_on_the_others() -> None:
    weights = ease_weights(sp.csr_matrix(X), regularization=1.0)
    # by hand, item 0 on items 1, 2: (X₋₀ᵀX₋₀ + I)⁻¹ X₋₀ᵀ x₀ = [[4, 2], [2, 3]]⁻¹ [2, 1] = [0.5, 0]
    assert weights[:, 0].tolist() == pytest.approx([0.0, 0.5, 0.0], abs=1e-6)
    x = X.astype(np.float64)
    for j in range(3):
        others = [k for k in range(3) if k != j]
        a = x[:, others].T @ x[:, others] + np.eye(2)
        column = np.linalg.solve(a, x[:, others].T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], column, atol=1e-6)
        assert weights[j, j] == 0.0
    # and the published formula B = I − P / diag(P), P = (XᵀX + λI)⁻¹, zero diagonal
    p = np.linalg.inv(x.T @ x + np.eye(3))
    expected = np.eye(3) - p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    assert weights.dtype == np.float32


def test_fit_ease_is_a_factorless_model_carrying_b() -> None:
    model = fit_ease(sp.csr_matrix(X), EASEParams(regularization=1.0))
    assert model.model_type == V.MODEL_EASE
    assert model.user_factors.shape == (3, 0) and model.item_factors.shape == (3, 0)
    assert model.item_item is not None and model.item_item.shape == (3, 3)
    # an item nobody took has an all-zero column and row
    padded = sp.csr_matrix(np.hstack([X, np.zeros((3, 1), np.float32)]))
    b = fit_ease(padded, EASEParams(regularization=1.0)).item_item
    assert b is not None and not b[3].any() and not b[:, 3].any()


@pytest.fixture(scope="module")
def demo_run(embedded_dir):
    settings = fast_settings()
    settings = settings.model_copy(
        update={
            "ease": settings.ease.model_copy(update={"grid": {"regularization": [10.0, 300.0]}})
        }
    )
    return run_training(load_processed(embedded_dir), settings)


def test_ease_competes_on_validation_and_is_reported_on_test(demo_run) -> None:
    assert set(demo_run.models) == {V.MODEL_ALS, V.MODEL_BPR, V.MODEL_EASE}
    ease = demo_run.models[V.MODEL_EASE]
    grid = ease.validation["grid"]
    assert [point["params"] for point in grid] == [
        {"regularization": 10.0},
        {"regularization": 300.0},
    ]
    best = max(grid, key=lambda point: point["score"])
    assert ease.factors.params.regularization == best["params"]["regularization"]
    assert ease.validation["cf_ndcg@10"] == pytest.approx(best["score"])
    # EASE competes for promotion by the rule of training/promotion.py on paired values
    promotion = demo_run.report["promotion"]
    assert set(promotion["candidates"]) == {V.MODEL_ALS, V.MODEL_BPR, V.MODEL_EASE}
    assert promotion["default"] == V.MODEL_ALS  # first of the fixture's promotion.order
    assert demo_run.best == promotion["chosen"]
    rows = demo_run.report["segments"][V.SEGMENT_TRAINABLE]["rows"]
    assert {"ease", "hybrid:ease"} <= set(rows)
    assert demo_run.report["segments"][V.SEGMENT_COLD]["rows"]["ease"]["users"] > 0
    assert demo_run.models[V.MODEL_EASE].served.item_item is not None


def test_ease_is_skipped_above_the_catalogue_limit(embedded_dir, caplog) -> None:
    settings = fast_settings()
    settings = settings.model_copy(
        update={"ease": settings.ease.model_copy(update={"max_items": 10})}
    )
    messages: list[str] = []
    with caplog.at_level(logging.INFO, logger="recommender.training.pipeline"):
        run = run_training(
            load_processed(embedded_dir), settings, (V.MODEL_ALS, V.MODEL_EASE), messages.append
        )
    assert set(run.models) == {V.MODEL_ALS}
    expected = "skipping ease: 120 items > ease.max_items 10"
    assert any(m.startswith(expected) for m in messages)
    assert any(r.getMessage().startswith(expected) for r in caplog.records)
