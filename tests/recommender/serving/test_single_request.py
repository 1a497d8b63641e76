"""One request's own path (``Engine._rank_one``: no explain, no context, no live events of the
user) ranks bit for bit as the general path (``Engine._rank_each``) on the demo shop: the same
ids in the same order with the same scores, for every segment, option and hybrid, under live
popularity and catalogue updates; and its compiled step (:mod:`.rank_kernel`) picks as the
numpy candidates, MMR and rounding it replaces, ties and exclusions included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.events import SqliteEventStore, validate_events, validate_product_update
from recommender.scoring import HybridConfig
from recommender.scoring.blend_kernel import add_term, round_row
from recommender.scoring.content_kernel import cosine_profile
from recommender.scoring.hybrid import combine, combine_row
from recommender.serving import Engine, LiveFeed, LiveState, ServingCaches
from recommender.serving.bundle import ModelBundle, load_bundle
from recommender.serving.engine import _chosen
from recommender.serving.rank_kernel import NO_COSINE, NO_MASK, rank_row
from recommender.serving.reranker import candidate_similarity, mmr_order
from tests.recommender.serving.test_fast_path_pinned import (
    OPTIONS,
    filters_for,
    settings_for,
    users_of,
    variant,
)

ONE_REQUEST = [o for o in OPTIONS if not o.get("explain")] + [
    {"diversity": 0.0},
    {"diversity": 0.9, "topk": 12},
    {"rerank": False, "exclude_seen": False, "topk": 3},
]


@pytest.fixture(scope="module")
def demo(embedded_dir: Path, registry_dir: Path) -> tuple[ModelBundle, Any]:
    settings = settings_for(embedded_dir, registry_dir)
    return load_bundle(settings), settings


def fresh(bundle: ModelBundle, settings: Any) -> Engine:
    return Engine(bundle, ServingCaches.from_settings(settings.cache), settings)


def check_one_request(one: Engine, each: Engine, users: list[str], option_sets: list) -> int:
    """``_rank_one`` of ``one`` against ``_rank_each`` of ``each`` (other caches), twice per
    user (the second from the profile cache)."""
    compared = 0
    for loose in option_sets:
        opts = one.options(**loose)
        for user in users:
            want = each._rank_each([user], opts)[0]
            for attempt in ("computed", "cached"):
                row = one.bundle.histories.index.get(user, -1)
                got = one._rank_one(user, row, opts, one._live_frame_model())
                context = f"{user} {loose} {attempt}"
                assert got.segment == want.segment, context
                assert got.ranked.indices == want.ranked.indices, context
                assert got.ranked.scores == want.ranked.scores, context  # every bit
                assert got.ranked.explains is None, context
                assert got.items == want.items, context  # the live records (price) too
                compared += 1
    return compared


def test_one_request_ranks_as_the_general_path(demo):
    bundle, settings = demo
    users = users_of(bundle)
    one = fresh(bundle, settings)
    assert {one.segment_of(u) for u in users} == set(V.SEGMENTS)
    options = ONE_REQUEST + [{"filters": f} for f in filters_for(bundle)]
    assert check_one_request(one, fresh(bundle, settings), users, options) > 500


@pytest.mark.parametrize(
    "hybrid",
    [
        HybridConfig(normalisation="rank", recency_decay=0.7),
        HybridConfig(normalisation="minmax", recency_decay=0.5),
        HybridConfig(
            weights={
                V.SEGMENT_TRAINABLE: {"cf": 0.6, "item_similarity": 0.2, "content": 0.2},
                V.SEGMENT_COLD: {"cf": 0.2, "item_similarity": 0.5, "popularity": 0.3},
                V.SEGMENT_UNKNOWN: {"popularity": 0.5, "quality": 0.5},
            },
        ),
    ],
    ids=["rank-decay", "minmax-decay", "minmax-blend"],
)
def test_one_request_ranks_as_the_general_path_under_other_hybrids(demo, hybrid):
    bundle, settings = demo
    other = variant(bundle, hybrid)
    users = users_of(other)
    check_one_request(fresh(other, settings), fresh(other, settings), users, ONE_REQUEST[:9])


def test_one_request_under_live_popularity_and_catalogue_updates(demo, tmp_path):
    """Users without live events of their own, while others' events move the popularity and
    a price update changes the catalogue: the live model, its profile keys and records."""
    check_under_live_updates(*demo, tmp_path)


def check_under_live_updates(bundle: ModelBundle, settings: Any, tmp_path: Path) -> None:
    """:func:`check_one_request` while others' events and a price update are live."""
    users = users_of(bundle)
    records = bundle.catalogue.records
    with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as store:
        engines = []
        for _ in range(2):
            engine = fresh(bundle, settings)
            live = LiveState(bundle, settings.events)
            feed = LiveFeed(store, settings.events)
            feed.attach(live)
            engine.live, engine.feed = live, feed
            engines.append(engine)
        events = [
            {"user_id": f"shopper-{k}", "product_id": records[k][V.PRODUCT_ID], "type": "purchase"}
            for k in range(0, 60, 3)
        ]
        store.append(validate_events(events, max_batch=100, clock_skew_seconds=300))
        gone, cheaper = records[1][V.PRODUCT_ID], records[4][V.PRODUCT_ID]
        store.append_products(
            [
                validate_product_update(gone, {"available": False}, replace=False),
                validate_product_update(cheaper, {"price": 1.0}, replace=False),
            ]
        )
        for engine in engines:
            engine.sync_live()
            assert engine._live_frame_model()[0] > 0  # live popularity: the live model
            assert engine.live is not None and engine.live.has_catalogue_changes
        one, each = engines
        check_one_request(one, each, users, ONE_REQUEST[:6] + [{"filters": filters_for(bundle)[0]}])


def numpy_rank_row(
    scores: np.ndarray,
    mask: np.ndarray | None,
    seen: np.ndarray,
    width: int,
    k: int,
    lam: float,
    cosine: np.ndarray | None,
) -> tuple[list[int], list[float]]:
    """The numpy path the kernel replaces: candidates in ``(−score, index)`` order, the engine's
    MMR over their cosine block, ``_chosen``'s rounding."""
    ranked = scores.copy()
    if mask is not None:
        ranked[~mask] = -np.inf
    ranked[seen] = -np.inf
    candidates = np.lexsort((np.arange(ranked.size), -ranked))[:width][None, :]
    cand_scores = ranked[candidates]
    sims = None if cosine is None or lam <= 0 else candidate_similarity(candidates, None, cosine)
    picks = mmr_order(cand_scores, sims, k, lam)
    items, rounded, counts = _chosen(picks, candidates, cand_scores)
    return items[0][: counts[0]], rounded[0][: counts[0]]


@pytest.mark.parametrize("lam", [0.0, 0.1, 0.6, 1.0])
def test_the_kernel_picks_as_the_numpy_path(lam):
    rng = np.random.default_rng(int(lam * 10))
    n = 300
    embeddings = rng.normal(size=(n, 6)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = (embeddings @ embeddings.T).astype(np.float32)
    cosine.setflags(write=False)
    for trial in range(60):
        # few distinct values: many ties, at the threshold too
        scores = np.round(rng.random(n).astype(np.float32) * 5, 0 if trial % 2 else 3)
        scores = np.round(scores.astype(np.float32) / 7, 6).astype(np.float32)
        mask = rng.random(n) < (0.02 if trial % 7 == 0 else 0.8) if trial % 3 else None
        seen = rng.choice(n, size=int(rng.integers(0, 20)), replace=False).astype(np.int32)
        width, k = [(30, 10), (1, 1), (5, 10), (n, 25), (400, 7)][trial % 5]
        want = numpy_rank_row(scores, mask, seen, min(width, n), k, lam, cosine)
        got_items, got_scores = rank_row(
            scores,
            NO_MASK if mask is None else mask,
            seen,
            min(width, n),
            k,
            np.float32(lam),
            cosine if lam > 0 else NO_COSINE,
            10.0**V.SCORE_DECIMALS,
        )
        assert got_items.tolist() == want[0], trial
        assert got_scores.tolist() == want[1], trial


def test_combine_row_is_the_batch_of_one_combine_bit_for_bit():
    rng = np.random.default_rng(4)
    static = {"popularity": rng.random(50).astype(np.float32)}
    signals = {
        "cf": rng.normal(size=(1, 50)).astype(np.float32),
        "content": np.zeros((1, 50), dtype=np.float32),  # no spread: adds nothing
        "item_similarity": (rng.random((1, 50)) * (rng.random(50) < 0.2)).astype(np.float32),
        "popularity": rng.random(50).astype(np.float32),  # static: the prenormalised one
        "quality": np.full((1, 50), np.nan, dtype=np.float32),  # NaN: no spread, as numpy's
    }
    weights = {"content": 0.3, "cf": 0.7, "item_similarity": 0.25, "popularity": 0.1}
    weights["quality"] = 0.5
    inputs = {name: values.copy() for name, values in signals.items()}
    want = combine({**signals, **static}, weights, prenormalised=static.keys())[0]
    got = combine_row(signals, weights, static)
    assert got.shape == (50,) and got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert all(np.array_equal(inputs[k], v, equal_nan=True) for k, v in signals.items())
    only_static = combine_row({"popularity": signals["popularity"]}, {"popularity": 1.0}, static)
    assert np.array_equal(only_static, static["popularity"])


def test_round_row_is_numpy_round_bit_for_bit():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=20_000) * 10.0 ** rng.integers(-8, 4, 20_000)).astype(np.float32)
    x[:5] = [0.5e-6, 1.5e-6, 2.5e-6, -0.5e-6, 123.4565]  # halves: rint rounds them to even
    want = np.round(x, V.SCORE_DECIMALS)
    got = x.copy()
    round_row(got, np.float32(10.0**V.SCORE_DECIMALS))
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_no_request_compiles_a_kernel(demo):
    """The engine loads every kernel variant a request uses when it is built (numba compiles
    one per argument type): a request never pays for a compile."""
    bundle, settings = demo
    engine = fresh(bundle, settings)
    kernels = (rank_row, add_term, round_row, cosine_profile)
    before = [len(kernel.signatures) for kernel in kernels]
    options = ONE_REQUEST + [{"filters": f} for f in filters_for(bundle)]
    for loose in options:
        opts = engine.options(**loose)
        for user in users_of(bundle):
            engine.recommend(user, opts)
    assert [len(kernel.signatures) for kernel in kernels] == before
