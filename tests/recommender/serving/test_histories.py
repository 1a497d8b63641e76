"""UserHistories: every interaction is seen, only positives are taste (scored history and fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.scoring import HybridConfig, score_users
from recommender.serving import Catalogue, Engine, ServingCaches, UserHistories
from recommender.serving.bundle import build_bundle

from .conftest import N_ITEMS, interactions, products

DAY0 = pd.Timestamp("2024-01-01")


def with_negatives() -> pd.DataFrame:
    """The conftest shop plus ``n0``: p3 (liked), p7 (1★), p9 (liked), and ``n1``: p5 (1★)."""
    frame = interactions()
    frame[V.IS_POSITIVE] = True
    extra = pd.DataFrame(
        {
            V.USER_ID: ["n0"] * 3 + ["n1"],
            V.PRODUCT_ID: ["p3", "p7", "p9", "p5"],
            V.RATING: [5, 1, 4, 1],
            V.TIMESTAMP: [DAY0 + pd.Timedelta(days=d) for d in (0, 1, 2, 0)],
            V.IS_POSITIVE: [True, False, True, False],
        }
    )
    return pd.concat([frame, extra], ignore_index=True)


def histories() -> tuple[Catalogue, UserHistories]:
    catalogue = Catalogue.from_products(products())
    frame = with_negatives()
    users = list(dict.fromkeys(frame[V.USER_ID]))
    return catalogue, UserHistories.from_interactions(frame, users, catalogue.index, [])


def test_seen_has_every_interaction_liked_only_positives_in_time_order() -> None:
    _, hist = histories()
    row = hist.index["n0"]
    assert hist.items(row).tolist() == [3, 7, 9]
    assert hist.liked(row).tolist() == [3, 9]
    positions, items = hist.seen_coordinates([row])
    assert items.tolist() == [3, 7, 9] and positions.tolist() == [0, 0, 0]
    matrix = hist.user_items(N_ITEMS)
    assert matrix[row].indices.tolist() == [3, 9]  # item-kNN / popularity are fit on positives
    assert matrix.sum() == len(hist.indices) - 2
    sessions = hist.sessions(N_ITEMS, 7 * 86400.0)
    assert sessions is not None and sessions.sum() == len(hist.indices) - 2


def test_without_the_positive_column_everything_is_positive() -> None:
    catalogue = Catalogue.from_products(products())
    frame = with_negatives().drop(columns=[V.IS_POSITIVE])
    users = list(dict.fromkeys(frame[V.USER_ID]))
    hist = UserHistories.from_interactions(frame, users, catalogue.index, [])
    assert hist.positive is None
    assert hist.liked(hist.index["n0"]).tolist() == [3, 7, 9]


def test_a_disliked_product_is_excluded_but_does_not_shape_the_ranking() -> None:
    catalogue, hist = histories()
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    bundle = build_bundle(
        catalogue,
        hist,
        rng.normal(size=(N_ITEMS, 4)).astype(np.float32),
        np.zeros((0, 4), dtype=np.float32),
        embeddings,
        {"model_id": "neg", "model_type": "als", "item_knn": {"neighbours": 10, "shrinkage": 0}},
        HybridConfig(),
    )
    engine = Engine(bundle, ServingCaches.from_settings(ServingSettings().cache), ServingSettings())
    result = engine.recommend("n0", topk=N_ITEMS - 3, rerank=False)
    returned = [item["product_id"] for item in result.items]
    assert not {"p3", "p7", "p9"} & set(returned)
    weights = bundle.hybrid.for_segment(V.SEGMENT_COLD)
    expected = score_users(bundle.model, V.SEGMENT_COLD, [np.array([3, 9])] * 2, weights)[0]
    expected = np.round(expected, 6)
    order = [i for i in np.lexsort((np.arange(N_ITEMS), -expected)) if i not in (3, 7, 9)]
    assert returned == [f"p{i}" for i in order]

    # a known user who only disliked something: cold, nothing to fold in, still a full list
    only_disliked = engine.recommend("n1", topk=5, rerank=False)
    assert only_disliked.segment == V.SEGMENT_COLD and len(only_disliked.items) == 5
    assert "p5" not in [item["product_id"] for item in only_disliked.items]
