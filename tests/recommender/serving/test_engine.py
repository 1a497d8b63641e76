"""Engine on the synthetic bundle: routing, exact rankings, filters, exclusion, single == batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError, UnknownProductError
from recommender.scoring import HybridConfig, normalise, score_users
from recommender.serving import Filters
from tests.recommender.serving.conftest import COLD, N_ITEMS, TRAINABLE, make_engine


def ids(result) -> list[str]:
    return [item["product_id"] for item in result.items]


def reference(scores: np.ndarray, excluded: list[int], k: int) -> list[str]:
    """Best ``k`` by (score desc, index asc) without ``excluded``."""
    order = [i for i in np.lexsort((np.arange(len(scores)), -scores)) if i not in excluded]
    return [f"p{i}" for i in order[:k]]


def test_routing_and_labels(engine):
    cases = {
        "t0": (V.SEGMENT_TRAINABLE, "cf", False, None),
        "c0": (V.SEGMENT_COLD, "content", True, V.FALLBACK_COLD_HYBRID),
        "stranger": (V.SEGMENT_UNKNOWN, "popularity", True, V.FALLBACK_POPULARITY),
    }
    for user, (segment, strategy, fallback, method) in cases.items():
        result = engine.recommend(user, topk=3)
        assert (result.segment, result.strategy, result.is_fallback, result.fallback_method) == (
            segment,
            strategy,
            fallback,
            method,
        )


def test_int_and_string_ids_are_the_same_user(engine):
    assert engine.segment_of(12345) == V.SEGMENT_UNKNOWN
    assert ids(engine.recommend(7, topk=4)) == ids(engine.recommend("7", topk=4))


def test_trainable_ranking_is_cf_order_without_seen(engine):
    model = engine.bundle.model
    expected = reference(model.user_factors[0] @ model.item_factors.T, TRAINABLE["t0"], 5)
    assert ids(engine.recommend("t0", topk=5, rerank=False)) == expected


def test_cold_ranking_uses_fold_in_with_tuned_cold_weights(engine):
    bundle = engine.bundle
    weights = bundle.hybrid.for_segment(V.SEGMENT_COLD)
    assert weights[V.SIGNAL_CF] > 0 and weights[V.SIGNAL_ITEM_SIMILARITY] > 0
    scores = score_users(bundle.model, V.SEGMENT_COLD, [np.array([5])], weights)[0]
    assert ids(engine.recommend("c1", topk=6, rerank=False)) == reference(
        np.round(scores, 6), COLD["c1"], 6
    )


def test_unknown_ranking_is_popularity_and_quality(engine):
    model = engine.bundle.model
    scores = 0.8 * normalise(model.popularity) + 0.2 * normalise(model.quality)
    got = ids(engine.recommend("nobody", topk=5, rerank=False))
    assert got == reference(np.round(scores.astype(np.float32), 6), [], 5)
    assert got[0] == "p0"  # the item most users interacted with


@pytest.mark.parametrize("user", ["t1", "t5", "c2", "nobody"])
@pytest.mark.parametrize("rerank", [False, True])
def test_no_duplicates_no_seen_and_topk_filled(engine, user, rerank):
    history = {f"p{i}" for i in {**TRAINABLE, **COLD}.get(user, [])}
    for topk in (1, 5, N_ITEMS - len(history)):
        got = ids(engine.recommend(user, topk=topk, rerank=rerank))
        assert len(got) == topk
        assert len(set(got)) == topk
        assert not history & set(got)
        assert [i["rank"] for i in engine.recommend(user, topk=topk).items] == list(
            range(1, topk + 1)
        )


def test_exclude_seen_false_can_return_history(engine):
    got = ids(engine.recommend("t1", topk=N_ITEMS, exclude_seen=False))
    assert sorted(got, key=lambda p: int(p[1:])) == [f"p{i}" for i in range(N_ITEMS)]
    assert len(ids(engine.recommend("t1", topk=N_ITEMS))) == N_ITEMS - len(TRAINABLE["t1"])


@pytest.mark.parametrize(
    "filters, allowed",
    [
        ({"brand": ["a"]}, {i for i in range(N_ITEMS) if i % 3 == 0}),
        ({"brand": ["A", "c"]}, {i for i in range(N_ITEMS) if i % 3 != 1}),
        ({"category": ["Serum"]}, {i for i in range(N_ITEMS) if i % 2 == 0}),
        ({"skin_type": ["dry"]}, set(range(12, N_ITEMS))),
        ({"price_min": 150_000, "price_max": 200_000}, set(range(5, 11))),
        ({"exclude_product_ids": ["p3", "p4", "unknown"]}, set(range(N_ITEMS)) - {3, 4}),
        ({"brand": ["B"], "category": ["toner"], "skin_type": ["oily"]}, {1, 7}),
    ],
)
@pytest.mark.parametrize("user", ["t0", "c0", "nobody"])
def test_filters_on_every_path(engine, filters, allowed, user):
    seen = set({**TRAINABLE, **COLD}.get(user, []))
    got = ids(engine.recommend(user, topk=N_ITEMS, filters=filters))
    assert {int(p[1:]) for p in got} == allowed - seen  # all eligible, nothing else


def test_unknown_filter_value_matches_nothing(engine):
    assert ids(engine.recommend("t0", topk=5, filters={"brand": ["Nope"]})) == []


def test_invalid_filters_rejected():
    with pytest.raises(InvalidRequestError, match="price_min"):
        Filters(price_min=10.0, price_max=5.0)
    with pytest.raises(InvalidRequestError):
        Filters(price_min=-1.0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"rerank": False},
        {"filters": {"category": ["toner"]}},
        {"filters": {"brand": ["B"], "category": ["toner"], "skin_type": ["oily"]}},  # < topk
        {"weights": {"popularity": 1.0, "content": 0.5}},
        {"exclude_seen": False, "topk": 7},
    ],
)
def test_single_and_batch_rank_identically(options):
    users = ["t0", "c1", "nobody", "t3", "c2", "t0", 42]
    batch_engine, single_engine = make_engine(), make_engine()
    batch = batch_engine.recommend_batch(users, **{"topk": 5, **options})
    for user, result in zip(users, batch, strict=True):
        single = single_engine.recommend(user, **{"topk": 5, **options})
        assert result.items == single.items
        assert result.segment == single.segment
        assert (result.ranked.indices, result.ranked.scores) == (
            single.ranked.indices,
            single.ranked.scores,
        )


@pytest.mark.parametrize(
    "weights",
    [
        {"popularity": 1.0},
        {"cf": 1.0},
        {"item_similarity": 1.0},
        {"content": 1.0},
        {"cf": 0.2, "popularity": 0.5, "quality": 0.3},
    ],
)
def test_request_weights_define_the_cold_ranking(engine, weights):
    bundle = engine.bundle
    scores = score_users(bundle.model, V.SEGMENT_COLD, [np.array([0])], weights)[0]
    got = ids(engine.recommend("c0", topk=6, rerank=False, weights=weights))
    assert got == reference(np.round(scores, 6), COLD["c0"], 6)


def test_weights_change_the_result(engine):
    pop = ids(engine.recommend("c0", topk=5, rerank=False, weights={"popularity": 1}))
    cf = ids(engine.recommend("c0", topk=5, rerank=False, weights={"cf": 1}))
    assert pop != cf


def test_unknown_user_ignores_signals_it_cannot_have(engine):
    default = ids(engine.recommend("nobody", topk=5))
    assert ids(engine.recommend("nobody", topk=5, weights={"cf": 1.0})) == default
    quality = ids(engine.recommend("nobody", topk=5, rerank=False, weights={"quality": 1.0}))
    q = engine.bundle.model.quality
    assert quality == reference(np.round(normalise(q), 6), [], 5)


@pytest.mark.parametrize(
    "weights",
    [{"bogus": 1.0}, {"cf": -1.0}, {"cf": float("nan")}, {"cf": float("inf")}, {"cf": 0.0}, {}],
)
def test_invalid_weights_rejected(engine, weights):
    with pytest.raises(InvalidRequestError):
        engine.recommend("t0", weights=weights)


@pytest.mark.parametrize("user", ["t0", "c0", "visitor"])
def test_huge_finite_weight_is_rejected_not_an_empty_answer(engine, user):
    """1e33 overflowed float32 once rounded and returned [] with 200; now a clear error."""
    with pytest.raises(
        InvalidRequestError, match=r"rerank_weights.popularity: .*between 0 and 1000"
    ):
        engine.recommend(user, weights={"cf": 1.0, "popularity": 1e33})


@pytest.mark.parametrize("user", ["t0", "c0", "visitor"])
def test_max_weights_still_rank_every_segment(engine, user):
    weights = dict.fromkeys(V.SIGNALS, 1000.0)
    result = engine.recommend(user, topk=5, weights=weights, rerank=False)
    assert len(result.items) == 5
    scores = [item["score"] for item in result.items]
    assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("topk", [0, 101, -3])
def test_topk_bounds(engine, topk):
    with pytest.raises(InvalidRequestError, match="topk"):
        engine.recommend("t0", topk=topk)


def test_explain_breakdown_adds_up(engine):
    result = engine.recommend("c0", topk=4, explain=True, rerank=False)
    weights = engine.bundle.hybrid.for_segment(V.SEGMENT_COLD)
    for item in result.items:
        explain = item["explain"]
        total = sum(part["contribution"] for part in explain["signals"].values())
        assert total == pytest.approx(explain["relevance"], abs=1e-4)
        assert explain["relevance"] == pytest.approx(item["score"], abs=1e-6)
        assert {k: v["weight"] for k, v in explain["signals"].items() if v["weight"]} == weights
    assert "explain" not in engine.recommend("c0", topk=4).items[0]


def test_explain_for_trainable_and_unknown(engine):
    cf = engine.recommend("t0", topk=2, explain=True).items[0]["explain"]["signals"]
    assert cf[V.SIGNAL_CF]["weight"] == 1.0 and cf[V.SIGNAL_CF]["value"] > 0
    unknown = engine.recommend("x", topk=2, explain=True).items[0]["explain"]["signals"]
    assert set(unknown) == {V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY}


def test_rerank_diversity_from_config_changes_order():
    plain = make_engine(ServingSettings(rerank={"diversity": 0.0}))
    diverse = make_engine(ServingSettings(rerank={"diversity": 0.9}))
    a, b = plain.recommend("nobody", topk=8), diverse.recommend("nobody", topk=8)
    assert ids(a)[0] == ids(b)[0]
    assert ids(a) != ids(b)
    assert ids(a) == ids(plain.recommend("nobody", topk=8, rerank=False))


def test_rerank_enabled_false_in_config_is_the_default():
    off = make_engine(ServingSettings(rerank={"enabled": False, "diversity": 0.9}))
    on = make_engine(ServingSettings(rerank={"enabled": True, "diversity": 0.9}))
    assert ids(off.recommend("nobody", topk=8)) == ids(on.recommend("nobody", topk=8, rerank=False))


def test_max_topk_from_config():
    engine = make_engine(ServingSettings(requests={"max_topk": 5, "default_topk": 3}))
    assert len(engine.recommend("t0").items) == 3
    assert len(engine.recommend("t0", topk=5).items) == 5
    with pytest.raises(InvalidRequestError, match="between 1 and 5"):
        engine.recommend("t0", topk=6)


def test_similar_items_cf_and_content(engine):
    bundle = engine.bundle
    unit = bundle.item_unit_factors
    expected = reference(np.round(unit @ unit[4], 6), [4], 3)
    result = engine.similar_items("p4", topk=3)
    assert result.method == "cf" and ids(result) == expected
    emb = bundle.model.embeddings
    content = engine.similar_items("p4", topk=3, method="content")
    assert content.method == "content"
    assert ids(content) == reference(np.round(emb @ emb[4], 6), [4], 3)


def test_similar_items_auto_uses_content_for_products_nobody_bought(engine):
    never = [i for i in range(N_ITEMS) if not engine.bundle.has_interactions[i]]
    assert never, "the synthetic data has products without interactions"
    assert engine.similar_items(f"p{never[0]}", topk=2).method == "content"


def test_similar_items_errors(engine):
    with pytest.raises(UnknownProductError, match="nope"):
        engine.similar_items("nope")
    with pytest.raises(InvalidRequestError):
        engine.similar_items("p1", topk=51)
    with pytest.raises(InvalidRequestError):
        engine.similar_items("p1", method="magic")


def test_serving_applies_the_tuned_recency_decay():
    """The engine scores with the model's recency decay, exactly as evaluation did."""
    weights = {V.SIGNAL_CONTENT: 1.0}
    hybrid = HybridConfig(weights={V.SEGMENT_TRAINABLE: weights}, recency_decay=0.25)
    engine = make_engine(hybrid=hybrid)
    hist = engine.bundle.histories
    row = hist.index["t5"]
    history = [hist.items(row)]  # oldest -> newest
    assert history[0].tolist() == TRAINABLE["t5"]
    rows = np.array([hist.cf_rows[row]])
    decayed, flat = (
        score_users(engine.bundle.model, V.SEGMENT_TRAINABLE, history, weights, "minmax", rows, d)[
            0
        ]
        for d in (0.25, 1.0)
    )
    got = ids(engine.recommend("t5", topk=N_ITEMS - 4, rerank=False))
    assert got == reference(np.round(decayed, 6), TRAINABLE["t5"], N_ITEMS - 4)
    assert got != reference(np.round(flat, 6), TRAINABLE["t5"], N_ITEMS - 4)


def test_batch_limits_belong_to_the_engine():
    engine = make_engine(ServingSettings(requests={"max_batch_size": 3, "max_batch_items": 12}))
    assert len(engine.recommend_batch(["t0", "t1", "x"], topk=4)) == 3
    with pytest.raises(InvalidRequestError, match=r"user_ids has 4 ids; at most 3 per batch"):
        engine.recommend_batch(["t0", "t1", "t2", "t3"], topk=1)
    with pytest.raises(InvalidRequestError) as too_many:
        engine.recommend_batch(["t0", "t1", "t2"], topk=5)
    assert str(too_many.value) == (
        "user_ids × topk = 3 × 5 = 15 recommendations; at most 12 per batch "
        "(requests.max_batch_items). Lower topk to 4 or send at most 2 users per batch."
    )
    with pytest.raises(InvalidRequestError, match="user_ids is empty"):
        engine.recommend_batch([])


def test_chunks_rank_exactly_as_one_batch_and_check_at_once():
    engine = make_engine()
    users = list(TRAINABLE) + list(COLD) + ["nobody", "x2"]
    options = engine.options(
        topk=6, filters={"category": ["serum"]}, weights={"cf": 1, "quality": 1}
    )
    whole = engine.recommend_batch(users, options)
    chunks = list(engine.recommend_chunks(users, options, chunk_users=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 3]
    assert [r for c in chunks for r in c] == whole
    assert [engine.recommend(u, options) for u in users] == whole
    small = make_engine(ServingSettings(requests={"max_batch_size": 2}))
    with pytest.raises(InvalidRequestError):  # raised by the call, before any chunk is ranked
        small.recommend_chunks(users, small.options(), chunk_users=1)


def test_a_batch_is_ranked_in_chunks_of_batch_chunk_users(monkeypatch):
    engine = make_engine(ServingSettings(batch={"chunk_users": 4}))
    users = list(TRAINABLE) + list(COLD) + ["nobody", "x2"]
    sizes: list[int] = []
    rank = engine._rank

    def counting(chunk: list[str], options, *memo):  # type: ignore[no-untyped-def]
        sizes.append(len(chunk))
        return rank(chunk, options, *memo)

    monkeypatch.setattr(engine, "_rank", counting)
    batch = engine.recommend_batch(users, topk=5)
    assert sizes == [4, 4, 4]
    assert batch == make_engine().recommend_batch(users, topk=5)
    assert ServingSettings().batch.chunk_users == 200


def test_one_users_candidates_are_their_row_of_a_batch():
    """``_candidates`` of one user (float32 threshold, stable argsort) against the batch keys
    (float64 ``index·1e-11 − score``, argpartition): the same items and scores in every slot with
    an eligible item, with wide ties, filters, seen items and rows with fewer than ``width``."""
    engine = make_engine()
    hist = engine.bundle.histories
    row = hist.index["c1"]
    n = engine.bundle.n_items
    rng = np.random.default_rng(4)
    for trial in range(300):
        levels = int(rng.integers(1, 6))
        scores = (np.round(rng.random((2, n)) * levels) / levels).astype(np.float32)
        scores[1] = scores[0]
        mask = None if trial % 3 == 0 else rng.random(n) > rng.random()
        width = int(rng.integers(1, n + 4))
        width = min(width, n)
        rows = np.array([row, row])
        exclude = bool(trial % 2)
        want_items, want_scores = engine._candidates(scores, rows, mask, exclude, width)
        got_items, got_scores = engine._candidates(scores[:1], rows[:1], mask, exclude, width)
        assert got_scores.tolist()[0] == want_scores.tolist()[0], trial
        valid = np.isfinite(want_scores[0])
        assert got_items[0][valid].tolist() == want_items[0][valid].tolist(), trial
