"""EASE served: trainable and cold users scored by ``x_u B`` (no fold-in), B saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import ModelLoadError
from recommender.registry import Registry
from recommender.scoring import HybridConfig
from recommender.scoring.ease import ease_scores
from recommender.serving import Catalogue, Engine, ServingCaches, UserHistories
from recommender.serving.bundle import build_bundle
from recommender.training.ease import ease_weights
from tests.recommender.serving.conftest import COLD, N_ITEMS, TRAINABLE, interactions, products

CF_ONLY = HybridConfig(
    weights={
        V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 1.0},
        V.SEGMENT_COLD: {V.SIGNAL_CF: 1.0},
        V.SEGMENT_UNKNOWN: {V.SIGNAL_POPULARITY: 1.0},
    }
)


def _ease_engine() -> tuple[Engine, np.ndarray]:
    catalogue = Catalogue.from_products(products())
    users = list(TRAINABLE) + list(COLD)
    histories = UserHistories.from_interactions(
        interactions(), users, catalogue.index, list(TRAINABLE)
    )
    weights = ease_weights(histories.user_items(N_ITEMS), regularization=1.0)
    bundle = build_bundle(
        catalogue,
        histories,
        np.zeros((N_ITEMS, 0), np.float32),
        np.zeros((len(TRAINABLE), 0), np.float32),
        None,
        {"model_id": "ease-1", "model_type": V.MODEL_EASE, "item_knn": {"shrinkage": 0.0}},
        CF_ONLY,
        item_item=weights,
    )
    settings = ServingSettings()
    return Engine(bundle, ServingCaches.from_settings(settings.cache), settings), weights


def _expected(weights: np.ndarray, history: list[int], topk: int) -> list[str]:
    scores = ease_scores([np.array(history)], weights)[0].astype(np.float64)
    scores[history] = -np.inf
    order = np.lexsort((np.arange(N_ITEMS), -np.round(scores, V.SCORE_DECIMALS)))
    return [f"p{i}" for i in order[:topk]]


def test_ease_scores_sum_b_rows_of_distinct_history_items_with_weights() -> None:
    b = np.arange(9, dtype=np.float32).reshape(3, 3)
    got = ease_scores(
        [np.array([0, 2, 0]), np.zeros(0, np.int64)], b, [np.array([1.0, 0.5, 2.0]), np.zeros(0)]
    )
    # item 0 twice keeps its largest weight (2): 2·[0, 1, 2] + 0.5·[6, 7, 8]
    assert got.tolist() == [[3.0, 5.5, 8.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("user", ["t1", "t3", "c0", "c3"])
def test_trainable_and_cold_users_get_x_u_b_without_fold_in(user: str) -> None:
    engine, weights = _ease_engine()
    history = {**TRAINABLE, **COLD}[user]
    answer = engine.recommend(user, topk=5, rerank=False)
    segment = V.SEGMENT_TRAINABLE if user in TRAINABLE else V.SEGMENT_COLD
    assert answer.segment == segment
    assert [item["product_id"] for item in answer.items] == _expected(weights, history, 5)
    raw = ease_scores([np.array(history)], weights)[0].astype(np.float64)
    scaled = (raw - raw.min()) / (raw.max() - raw.min())  # min-max over the whole catalogue
    expected = [round(float(scaled[int(item["product_id"][1:])]), 6) for item in answer.items]
    assert [item["score"] for item in answer.items] == pytest.approx(expected, abs=2e-6)


def test_cold_user_with_one_item_ranks_that_items_b_row() -> None:
    engine, weights = _ease_engine()
    row = weights[5].astype(np.float64)
    row[5] = -np.inf
    top = int(np.argmax(row))
    assert engine.recommend("c1", topk=1, rerank=False).items[0]["product_id"] == f"p{top}"


def test_registry_round_trip_keeps_b_and_refuses_an_ease_model_without_it(tmp_path) -> None:
    registry = Registry(tmp_path / "cf")
    weights = np.arange(16, dtype=np.float32).reshape(4, 4) / 7
    record = registry.register(
        model_type=V.MODEL_EASE,
        user_factors=np.zeros((3, 0), np.float32),
        item_factors=np.zeros((4, 0), np.float32),
        params={"model_type": V.MODEL_EASE, "regularization": 10.0},
        metadata={},
        data_version="dv",
        embedding_version=None,
        metrics={},
        item_item=weights,
    )
    assert V.EASE_FILE in record.checksums
    loaded = Registry(tmp_path / "cf").load(record.model_id)
    assert loaded.item_item is not None
    np.testing.assert_array_equal(loaded.item_item, weights)
    assert loaded.metadata["factors"] == 0
    broken = registry.register(
        model_type=V.MODEL_EASE,
        user_factors=np.zeros((3, 0), np.float32),
        item_factors=np.zeros((4, 0), np.float32),
        params={},
        metadata={},
        data_version="dv",
        embedding_version=None,
        metrics={},
    )
    with pytest.raises(ModelLoadError, match="an EASE model needs B.npy"):
        registry.load(broken.model_id)
