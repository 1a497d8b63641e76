"""One request's own path under the ANN candidate stage (``Engine._rank_one`` →
``_rank_union_one``: one search, the user's candidate union ranked by itself) ranks bit for bit
as the general path (``Engine._rank_each``, whose ``(n,)`` row is ``-inf`` outside the union):
the same ids, order and scores for every segment and option, from a fresh profile and a cached
one (sparse or dense), with MMR over the precomputed cosine or over the embeddings, when filters
leave too few candidates (the exact fallback) and when an index cannot answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.scoring import VectorIndex
from recommender.serving import Engine, ServingCaches, caches, load_bundle
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import SparseProfile
from recommender.serving.rank_kernel import NO_MASK, _top, union_top
from recommender.serving.user_scorer import profile_key
from tests.recommender.serving.test_candidate_index import WITH_CONTENT, settings_for
from tests.recommender.serving.test_fast_path_pinned import filters_for, users_of
from tests.recommender.serving.test_single_request import (
    ONE_REQUEST,
    check_one_request,
    check_under_live_updates,
)

# sizes per source: unions of a few dozen of the test shop's 120 items (filters leave some
# short) and of most of them; profiles cached dense (as there) or sparse (as at 50K products)
SHOPS = [
    pytest.param(WITH_CONTENT, {"per_source": 40}, 1.0, id="content-40-sparse"),
    pytest.param(None, {"per_source": 12}, 1.0, id="tuned-12-sparse"),
    pytest.param(WITH_CONTENT, {}, caches.SPARSE_SHARE, id="content-default-dense"),
]


def ann_engines(bundle: ModelBundle, settings: Any) -> tuple[Engine, Engine]:
    def fresh() -> Engine:
        return Engine(bundle, ServingCaches.from_settings(settings.cache), settings)

    return fresh(), fresh()


def profiles(engine: Engine, users: list[str]) -> list[Any]:
    """The cached profiles of ``users`` (their keys without live events), None where absent."""
    cache = engine.scorer.cache
    return [cache.get(profile_key(u, None, 0, gated), False) for u in users for gated in (0, 1)]


@pytest.mark.parametrize(("weights", "candidates", "sparse_share"), SHOPS)
def test_one_request_ranks_as_the_general_path_under_ann(
    processed, registry_dir, monkeypatch, weights, candidates, sparse_share
):
    monkeypatch.setattr(caches, "SPARSE_SHARE", sparse_share)
    settings = settings_for(processed, registry_dir, weights, mode="ann", **candidates)
    bundle = load_bundle(settings)
    assert bundle.model.candidates is not None and bundle.item_cosine is not None
    users = users_of(bundle)
    one, each = ann_engines(bundle, settings)
    assert {one.segment_of(u) for u in users} == set(V.SEGMENTS)
    options = ONE_REQUEST + [{"filters": f} for f in filters_for(bundle)]
    options += [{"filters": {"brand": bundle.catalogue.records[-1][V.BRAND]}, "topk": 10}]
    assert check_one_request(one, each, users, options) > 500


@pytest.mark.parametrize(("weights", "candidates", "sparse_share"), SHOPS[:2])
def test_one_request_under_ann_without_a_precomputed_cosine(
    processed, registry_dir, monkeypatch, weights, candidates, sparse_share
):
    """A catalogue past ``MAX_PRECOMPUTED_COSINE`` (the 50K shop): MMR over the candidates'
    embedding similarities, the product ``_pick`` forms."""
    monkeypatch.setattr(caches, "SPARSE_SHARE", sparse_share)
    settings = settings_for(processed, registry_dir, weights, mode="ann", **candidates)
    bundle = dataclasses.replace(load_bundle(settings), item_cosine=None)
    users = users_of(bundle)
    one, each = ann_engines(bundle, settings)
    options = ONE_REQUEST + [{"filters": f} for f in filters_for(bundle)]
    assert check_one_request(one, each, users, options) > 500


def test_one_request_under_ann_with_live_popularity_and_catalogue_updates(
    processed, registry_dir, monkeypatch, tmp_path
):
    """The live model (live popularity) keeps the candidate stage: its unions, profile keys
    and live records."""
    monkeypatch.setattr(caches, "SPARSE_SHARE", 1.0)
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=40)
    settings = settings.model_copy(
        update={"events": settings.events.model_copy(update={"popularity_refresh_seconds": 0})}
    )
    bundle = load_bundle(settings)
    check_under_live_updates(bundle, settings, tmp_path)


@pytest.mark.parametrize("sparse_share", [1.0, caches.SPARSE_SHARE], ids=["sparse", "dense"])
def test_cached_union_profiles_are_the_dense_rows_packed(
    processed, registry_dir, monkeypatch, sparse_share
):
    """The profile ``_rank_one`` caches is :func:`pack_profile` of the dense row ``_rank_each``
    caches: the same type (sparse for small unions) and entries, bit for bit."""
    monkeypatch.setattr(caches, "SPARSE_SHARE", sparse_share)
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=40)
    bundle = load_bundle(settings)
    users = [u for u in users_of(bundle) if bundle.histories.index.get(u, -1) >= 0]
    one, each = ann_engines(bundle, settings)
    opts = one.options()
    for _ in range(2):  # (a profile is cached on its second visit under admission)
        for user in users:
            one._rank_one(user, bundle.histories.index[user], opts, one._live_frame_model())
            each._rank_each([user], opts)
    got, want = profiles(one, users), profiles(each, users)
    assert sum(p is not None for p in want) >= len(users) // 2
    sparse = [isinstance(p, SparseProfile) for p in want if p is not None]
    assert all(sparse) if sparse_share == 1.0 else not any(sparse)
    for a, b in zip(got, want, strict=True):
        assert type(a) is type(b)
        if a is None:
            continue
        if isinstance(a, SparseProfile):
            assert a.indices.dtype == b.indices.dtype
            assert a.indices.tolist() == b.indices.tolist()
            assert a.values.tobytes() == b.values.tobytes()
        else:
            assert a.tobytes() == b.tobytes()


def test_one_request_under_ann_past_the_stale_gate(processed, registry_dir, monkeypatch):
    """Users past the stale gate are scored on the stale model (its own candidate stage and
    profile keys), the others on the model: as ``_rank_each`` gates them."""
    monkeypatch.setattr(caches, "SPARSE_SHARE", 1.0)
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=40)
    bundle = load_bundle(settings)
    model = bundle.model
    stale = dataclasses.replace(model, popularity=np.ascontiguousarray(model.popularity[::-1]))
    hybrid = dataclasses.replace(bundle.hybrid, stale_after_hours=1.0)
    bundle = dataclasses.replace(bundle, hybrid=hybrid, stale_model=stale)
    newest = np.asarray(bundle.histories.newest_positive_seconds)
    now = float(np.median(newest[np.isfinite(newest)])) + 3600.0  # about half of them gated
    one, each = ann_engines(bundle, settings)
    for engine in (one, each):
        engine.scorer.clock = lambda: now
    users = users_of(bundle)
    rows = np.array([bundle.histories.index.get(u, -1) for u in users])
    gated = one.scorer.stale(rows, bundle.model)
    assert gated.any() and not gated[rows >= 0].all()
    assert check_one_request(one, each, users, ONE_REQUEST[:6]) > 100


def test_one_request_under_ann_when_the_index_cannot_answer(processed, registry_dir, monkeypatch):
    settings = settings_for(
        processed, registry_dir, WITH_CONTENT, mode="ann", content_neighbours=False
    )
    bundle = load_bundle(settings)
    users = users_of(bundle)
    one, each = ann_engines(bundle, settings)

    def broken(self: VectorIndex, queries: np.ndarray, count: int, threads: int = 1) -> list:
        raise RuntimeError("index file truncated")

    monkeypatch.setattr(VectorIndex, "search", broken)
    assert check_one_request(one, each, users, ONE_REQUEST[:4]) > 50


def test_union_top_is_the_dense_rows_top():
    """:func:`union_top` over a union equals the top of the dense row that is ``-inf`` outside
    it: ties (by item index), masks, seen items in and out of the union, short unions."""
    rng = np.random.default_rng(12)
    n = 400
    for trial in range(80):
        items = np.sort(rng.choice(n, size=int(rng.integers(1, 120)), replace=False))
        scores = np.round(rng.random(items.size).astype(np.float32) * 4, 0 if trial % 2 else 2)
        scores = scores.astype(np.float32)
        mask = rng.random(n) < 0.6 if trial % 3 else None
        seen = rng.choice(n, size=int(rng.integers(0, 40)), replace=False).astype(np.int32)
        width = [1, 5, 30, 200][trial % 4]
        dense = np.full(n, -np.inf, dtype=np.float32)
        dense[items] = scores
        if mask is not None:
            dense[~mask] = -np.inf
        dense[seen] = -np.inf
        want_items = np.empty(width, dtype=np.int64)
        want_values = np.empty(width, dtype=np.float32)
        count = _top(dense, width, want_items, want_values)
        got_items, got_values = union_top(
            items.astype(np.int32), scores, NO_MASK if mask is None else mask, seen, width
        )
        assert got_items.tolist() == want_items[:count].tolist(), trial
        assert got_values.tobytes() == want_values[:count].tobytes(), trial
