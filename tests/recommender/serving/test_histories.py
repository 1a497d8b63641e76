"""UserHistories: every interaction is seen, only positives are taste (scored history and fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def _engine(hist: UserHistories, catalogue: Catalogue) -> Engine:
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
    return Engine(bundle, ServingCaches.from_settings(ServingSettings().cache), ServingSettings())


def test_a_disliked_product_is_excluded_but_does_not_shape_the_ranking() -> None:
    catalogue, hist = histories()
    engine = _engine(hist, catalogue)
    bundle = engine.bundle
    result = engine.recommend("n0", topk=N_ITEMS - 3, rerank=False)
    returned = [item["product_id"] for item in result.items]
    assert not {"p3", "p7", "p9"} & set(returned)
    weights = bundle.hybrid.for_segment(V.SEGMENT_COLD)
    expected = score_users(bundle.model, V.SEGMENT_COLD, [np.array([3, 9])] * 2, weights)[0]
    expected = np.round(expected, 6)
    order = [i for i in np.lexsort((np.arange(N_ITEMS), -expected)) if i not in (3, 7, 9)]
    assert returned == [f"p{i}" for i in order]


def test_a_user_who_only_disliked_gets_the_unknown_answer_minus_what_they_saw() -> None:
    catalogue, hist = histories()
    engine = _engine(hist, catalogue)
    for order in (("new-visitor", "n1"), ("n1", "new-visitor")):  # the results cache is per user
        engine.caches.results.clear()
        answers = {user: engine.recommend(user, topk=N_ITEMS, rerank=False) for user in order}
        unknown = [item["product_id"] for item in answers["new-visitor"].items]
        disliked = answers["n1"]
        assert disliked.segment == V.SEGMENT_UNKNOWN
        assert (disliked.strategy, disliked.is_fallback) == (V.STRATEGY_POPULARITY, True)
        assert disliked.fallback_method == V.FALLBACK_POPULARITY
        assert [item["product_id"] for item in disliked.items] == [p for p in unknown if p != "p5"]
        scores = {item["product_id"]: item["score"] for item in answers["new-visitor"].items}
        assert [item["score"] for item in disliked.items] == [
            scores[item["product_id"]] for item in disliked.items
        ]
        assert len(set(scores.values())) > 1  # popularity/quality, not a flat 0.0
    assert engine.segment_of("n1") == V.SEGMENT_UNKNOWN
    batch = engine.recommend_batch(["n1", "new-visitor", "n0"], topk=N_ITEMS, rerank=False)
    single = engine.recommend("n1", topk=N_ITEMS, rerank=False)
    assert batch[0].items == single.items and batch[0].segment == V.SEGMENT_UNKNOWN
    alone = engine.recommend_batch(["n1"], topk=N_ITEMS, rerank=False)[0]
    assert alone.items == single.items
    assert hist.has_liked.tolist()[hist.index["n1"]] is False
    assert hist.segment(hist.index["n1"]) == V.SEGMENT_UNKNOWN
    assert hist.segment(hist.index["n0"]) == V.SEGMENT_COLD


def test_shared_user_index_finds_every_id_by_binary_search(tmp_path) -> None:
    """The id index workers memory-map: sorted UTF-8 ids + rows answer like the dict they replace
    (a Vietnamese id, a prefix of another id and a never-seen id included)."""
    from recommender.serving.histories import UserIds, UserIndex, encoded_ids

    ids = ["u10", "u1", "Nguyễn", "999999", "u100", "a"]
    encoded = encoded_ids(ids)
    np.save(tmp_path / "ids.npy", encoded)
    mapped = np.load(tmp_path / "ids.npy", mmap_mode="r")
    index, users = UserIndex.of(mapped), UserIds(mapped)
    assert {u: index[u] for u in ids} == {u: r for r, u in enumerate(ids)}
    assert [index.get(u, -1) for u in ("u", "u1000", "", "nguyễn")] == [-1, -1, -1, -1]
    assert "u100" in index and "u1000" not in index and 5 not in index
    assert len(index) == 6 and sorted(index) == sorted(ids)
    assert list(users) == ids and users[2] == "Nguyễn" and users[1:3] == ["u1", "Nguyễn"]
    with pytest.raises(KeyError):
        index["missing"]
    # "Nguyễn!!" is wider than every id: cast to the ids' width it would read "Nguyễn"
    asked = ["a", "u", "Nguyễn", "u1000", "999999", "", "u10", "zzzzzzzzzzzz", "Nguyễn!!"]
    assert index.get("Nguyễn!!", -1) == -1 and "Nguyễn!!" not in index
    assert index.rows_of(asked).tolist() == [index.get(u, -1) for u in asked]
    assert index.rows_of([]).tolist() == []
    # the memo of the last lookup answers a repeat, and never another id's row
    for user in ("u1", "u1", "u10", "missing", "missing", "u1", "a", "a"):
        assert index.get(user, -1) == (ids.index(user) if user in ids else -1)
