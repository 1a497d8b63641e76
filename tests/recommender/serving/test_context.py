"""context_items (the cart, the product on screen) and similar_items for a user (issue 13 item 4).

On the synthetic bundle: the context is the user's newest session items for every signal, an
anonymous visitor with context is ranked exactly as a cold user with that history, context items
are excluded like seen items, unknown ids are named, and answers without context are unchanged
(tests/recommender/serving/test_fast_path_pinned.py pins them on the demo shop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings, ServingSettings
from recommender.errors import InvalidRequestError
from recommender.scoring import HybridConfig, normalise, score_users
from recommender.serving import Filters
from tests.recommender.serving.conftest import COLD, N_ITEMS, TRAINABLE, make_engine
from tests.recommender.serving.test_new_products import post, put, worker


def ids(result) -> list[str]:
    return [item["product_id"] for item in result.items]


def scores(result) -> list[float]:
    return [item["score"] for item in result.items]


def reference(values: np.ndarray, excluded: list[int], k: int) -> list[str]:
    """Best ``k`` by (score desc, index asc) without ``excluded``."""
    order = [i for i in np.lexsort((np.arange(len(values)), -values)) if i not in excluded]
    return [f"p{i}" for i in order[:k]]


def test_an_anonymous_visitor_with_context_is_ranked_as_a_cold_user_with_that_history():
    engine = make_engine()
    assert COLD["c1"] == [5]
    visitor = engine.recommend("stranger", topk=8, rerank=False, context_items=["p5"])
    cold = engine.recommend("c1", topk=8, rerank=False)
    assert (visitor.segment, visitor.strategy) == (V.SEGMENT_COLD, "content")
    assert ids(visitor) == ids(cold) and scores(visitor) == scores(cold)
    assert "p5" not in ids(visitor)
    # the cold hybrid, not popularity
    assert ids(visitor) != ids(engine.recommend("stranger", topk=8, rerank=False))


def test_context_is_the_newest_history_of_every_signal_of_a_trainable_user():
    """t5's history is p2, p13, p14, p0; with p2 in the cart it is p13, p14, p0, p2 (p2 the
    newest, weight 1 under the recency decay). The stored CF row was fit on p2 already and
    stays; a context item beyond the stored positives (p20) is new evidence: the CF vector is
    then folded in from the whole history, as for live positives (events.trainable_fold_in)."""
    weights = {V.SIGNAL_CF: 1.0, V.SIGNAL_ITEM_SIMILARITY: 1.0, V.SIGNAL_CONTENT: 1.0}
    hybrid = HybridConfig(weights={V.SEGMENT_TRAINABLE: weights}, recency_decay=0.25)
    engine = make_engine(hybrid=hybrid)
    model = engine.bundle.model
    hist = engine.bundle.histories
    row = np.array([hist.cf_rows[hist.index["t5"]]])
    k = N_ITEMS - 5
    moved = [np.array([13, 14, 0, 2])]
    stored = score_users(model, V.SEGMENT_TRAINABLE, moved, weights, "minmax", row, 0.25)[0]
    got = engine.recommend("t5", topk=k, rerank=False, context_items=["p2"])
    assert ids(got) == reference(np.round(stored, 6), TRAINABLE["t5"], k)
    assert got.segment == V.SEGMENT_TRAINABLE
    assert ids(got) != ids(engine.recommend("t5", topk=k, rerank=False))
    added = [np.array([2, 13, 14, 0, 20])]
    folded = score_users(model, V.SEGMENT_COLD, added, weights, "minmax", None, 0.25)[0]
    got = engine.recommend("t5", topk=k, rerank=False, context_items=["p20"])
    assert ids(got) == reference(np.round(folded, 6), [*TRAINABLE["t5"], 20], k)
    for cart in (["p2"], ["p20"]):  # explained as scored: the stored row, the folded-in vector
        explained = engine.recommend("t5", topk=3, rerank=False, explain=True, context_items=cart)
        for item in explained.items:
            total = sum(part["contribution"] for part in item["explain"]["signals"].values())
            assert total == pytest.approx(item["explain"]["relevance"], abs=1e-4)
    # events.trainable_fold_in false: the stored CF row stays, the other signals see the context
    keep_row = make_engine(ServingSettings(events={"trainable_fold_in": False}), hybrid=hybrid)
    kept = score_users(model, V.SEGMENT_TRAINABLE, added, weights, "minmax", row, 0.25)[0]
    got = keep_row.recommend("t5", topk=k, rerank=False, context_items=["p20"])
    assert ids(got) == reference(np.round(kept, 6), [*TRAINABLE["t5"], 20], k)


def test_context_items_are_excluded_like_seen_items():
    engine = make_engine()
    cart = ["p7", "p19", "p3"]
    full = engine.recommend("stranger", topk=N_ITEMS, rerank=False, context_items=cart)
    assert not set(cart) & set(ids(full)) and len(full.items) == N_ITEMS - 3
    kept = engine.recommend(
        "stranger", topk=N_ITEMS, rerank=False, context_items=cart, exclude_seen=False
    )
    assert set(cart) <= set(ids(kept))
    known = engine.recommend("t0", topk=N_ITEMS, context_items=["p9"])
    assert not {"p9", "p0", "p1", "p2"} & set(ids(known))


def test_repeated_context_ids_count_once_at_their_newest_position():
    engine = make_engine()
    once = engine.options(context_items=["p1", "p4"])
    assert engine.options(context_items=["p4", "p1", "p4"]).context == ("p1", "p4")
    assert once.context == ("p1", "p4")
    assert engine.options(context_items=[4, " p1 "]).context == ("4", "p1")


def test_unknown_context_ids_and_too_many_are_clear_errors():
    engine = make_engine(ServingSettings(requests={"max_context_items": 3}))
    with pytest.raises(InvalidRequestError, match=r"context_items: product 'nope' is not in the"):
        engine.recommend("t0", context_items=["p1", "nope"])
    with pytest.raises(InvalidRequestError, match=r"context_items: product 'nope'"):
        engine.recommend_batch(["t0", "x"], context_items=["nope"])
    with pytest.raises(InvalidRequestError, match=r"has 4 products; at most 3 \(requests.max_"):
        engine.recommend("t0", context_items=["p1", "p2", "p3", "p4"])
    with pytest.raises(InvalidRequestError, match="a list of product ids"):
        engine.recommend("t0", context_items="p1")  # type: ignore[arg-type]


def test_cache_keys_carry_the_context_and_context_profiles_are_not_cached():
    engine = make_engine()
    caches = engine.caches
    plain = ids(engine.recommend("stranger", topk=5))
    cart_a = ids(engine.recommend("stranger", topk=5, context_items=["p5"]))
    cart_b = ids(engine.recommend("stranger", topk=5, context_items=["p20"]))
    assert len({tuple(plain), tuple(cart_a), tuple(cart_b)}) == 3
    assert ids(engine.recommend("someone-else", topk=5, context_items=["p5"])) == cart_a
    assert ids(engine.recommend("stranger", topk=5)) == plain
    trainable = ids(engine.recommend("t1", topk=5))
    profiles = len(caches.user_profiles)
    with_cart = ids(engine.recommend("t1", topk=5, context_items=["p20"]))
    assert with_cart != trainable and len(caches.user_profiles) == profiles
    assert ids(engine.recommend("t1", topk=5)) == trainable


def test_explain_names_the_context_and_scores_the_signals_with_it():
    engine = make_engine()
    result = engine.recommend("stranger", topk=4, explain=True, context_items=["p5"])
    cold = engine.recommend("c1", topk=4, explain=True)
    for got, want in zip(result.items, cold.items, strict=True):
        assert got["explain"]["context_items"] == ["p5"]
        assert got["explain"]["signals"] == want["explain"]["signals"]
        assert "context_items" not in want["explain"]


def test_a_product_put_since_the_build_is_a_known_context_item(tmp_path: Path):
    from recommender.events import SqliteEventStore

    with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as store:
        engine, _ = worker(store)
        put(store, "new-1", name="Twin of p5")
        content = {V.SIGNAL_CONTENT: 1.0}
        visitor = engine.recommend("stranger", topk=3, weights=content, context_items=["new-1"])
        # the twin of p5 in the cart: p5's content neighbours, p5 itself first
        assert ids(visitor)[0] == "p5" and visitor.segment == V.SEGMENT_COLD
        post(store, {"user_id": "stranger", "product_id": "p5", "type": "purchase"})
        after = engine.recommend("stranger", topk=3, weights=content, context_items=["new-1"])
        assert "p5" not in ids(after)  # a live purchase is seen: the key carries live versions
    limited = EventsSettings(popularity_refresh_seconds=0, max_new_products=1)
    with SqliteEventStore(tmp_path / "limited.sqlite3", synchronous="NORMAL") as store:
        engine, _ = worker(store, limited)
        put(store, "new-1", name="Twin of p5")
        put(store, "new-2", name="Twin of p5")  # known, not served: nothing to score yet
        plain = engine.recommend("stranger", topk=3)
        assert ids(engine.recommend("stranger", topk=3, context_items=["new-2"])) == ids(plain)


def test_similar_items_for_a_user_leave_out_seen_and_blend_in_their_hybrid_score():
    engine = make_engine()
    bundle = engine.bundle
    unit = bundle.item_unit_factors
    sims = np.round(unit @ unit[4], 6)
    plain = engine.similar_items("p4", topk=50)
    neighbours = [int(item["product_id"][1:]) for item in plain.items]
    assert neighbours == [int(p[1:]) for p in reference(sims, [4], N_ITEMS - 1)][: len(neighbours)]
    user = "t0"  # seen p0, p1, p2
    profile = engine.recommend(user, topk=1)  # fills the profile cache with the hybrid scores
    assert profile.items
    hybrid = engine.caches.user_profiles.get(user, False)
    assert hybrid is not None
    left = np.array([i for i in neighbours if i not in TRAINABLE[user]])
    blend = 0.5 * normalise(sims[left]).astype(np.float64) + 0.5 * normalise(
        hybrid[left].astype(np.float64)
    ).astype(np.float64)
    blend = np.round(blend, 6)
    order = np.lexsort((np.arange(left.size), -blend))
    got = engine.similar_items("p4", topk=6, user_id=user)
    assert ids(got) == [f"p{i}" for i in left[order][:6]]
    assert scores(got) == blend[order][:6].tolist()
    assert got.method == "cf"
    # weight 0: the similarity order without the seen items
    only_sim = make_engine(ServingSettings(rerank={"similar_user_weight": 0.0}))
    got = only_sim.similar_items("p4", topk=6, user_id=user)
    assert ids(got) == [f"p{i}" for i in left[:6]]


def test_similar_items_honour_filters_with_and_without_a_user():
    engine = make_engine()
    serums = engine.similar_items("p4", topk=10, filters={"category": ["serum"]})
    assert serums.items and {item[V.CATEGORY] for item in serums.items} == {"serum"}
    every = ids(engine.similar_items("p4", topk=50))
    assert ids(serums) == [p for p in every if int(p[1:]) % 2 == 0][:10]
    flt = Filters.from_mapping({"brand": ["A"], "exclude_product_ids": ["p3"]})
    for user in (None, "t1", "stranger"):
        got = engine.similar_items("p4", topk=10, user_id=user, filters=flt)
        assert got.items and all(item[V.BRAND] == "A" for item in got.items)
        assert "p3" not in ids(got)
    # an unknown user has seen nothing: every neighbour stays, re-ranked by popularity/quality
    stranger = engine.similar_items("p4", topk=50, user_id="stranger")
    assert sorted(ids(stranger)) == sorted(every)


def test_a_batch_with_context_ranks_each_user_as_a_single_call_does():
    """A batch with ``context_items`` takes the general path (the chunk scorer knows no
    context): every user's answer equals their single call with the same context."""
    engine = make_engine()
    users = ["t0", "c1", "stranger"]
    batch = engine.recommend_batch(users, topk=6, context_items=["p5", "p7"])
    for user, result in zip(users, batch, strict=True):
        single = engine.recommend(user, topk=6, context_items=["p5", "p7"])
        assert (ids(result), scores(result)) == (ids(single), scores(single))
        assert "p5" not in ids(result) and "p7" not in ids(result)


def test_an_als_model_refolds_a_trainable_user_with_its_own_user_step():
    """With the build's ``refold`` (ALS's λ, alpha and the chosen newest-item boost), a context
    item beyond the stored positives refolds t5's CF vector with the ALS user step, not the
    cold fold-in; a context of stored positives keeps the stored row."""
    weights = {V.SIGNAL_CF: 1.0, V.SIGNAL_ITEM_SIMILARITY: 0.5}
    hybrid = HybridConfig(weights={V.SEGMENT_TRAINABLE: weights}, recency_decay=0.5)
    refold = {"regularization": 0.3, "alpha": 4.0, "newest_boost": 2.0}
    engine = make_engine(hybrid=hybrid, metadata={"refold": refold})
    model = engine.bundle.model
    assert engine.bundle.info["refold"] == refold
    assert model.refold_model.fold_in_regularization == 0.3
    k = N_ITEMS - 5
    added = [np.array([2, 13, 14, 0, 20])]
    step = score_users(model.refold_model, V.SEGMENT_COLD, added, weights, "minmax", None, 0.5)
    cold = score_users(model, V.SEGMENT_COLD, added, weights, "minmax", None, 0.5)
    expected = reference(np.round(step[0], 6), [*TRAINABLE["t5"], 20], k)
    assert expected != reference(np.round(cold[0], 6), [*TRAINABLE["t5"], 20], k)
    got = engine.recommend("t5", topk=k, rerank=False, context_items=["p20"])
    assert ids(got) == expected
    explained = engine.recommend("t5", topk=3, rerank=False, explain=True, context_items=["p20"])
    for item in explained.items:
        total = sum(part["contribution"] for part in item["explain"]["signals"].values())
        assert total == pytest.approx(item["explain"]["relevance"], abs=1e-4)
    row = np.array([engine.bundle.histories.cf_rows[engine.bundle.histories.index["t5"]]])
    moved = [np.array([13, 14, 0, 2])]
    stored = score_users(model, V.SEGMENT_TRAINABLE, moved, weights, "minmax", row, 0.5)[0]
    got = engine.recommend("t5", topk=k, rerank=False, context_items=["p2"])
    assert ids(got) == reference(np.round(stored, 6), TRAINABLE["t5"], k)
