"""The ANN candidate stage on the demo test shop: rankings that match exact scoring, indexes that
are shared read-only maps, and every failure (missing, corrupt, unanswering index; filters that
leave too few candidates) served exactly instead of failing a request."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.scoring import IndexParams, VectorIndex, score_users, with_candidates
from recommender.scoring.candidates import build_search
from recommender.serving import Engine, ServingCaches, caches, load_bundle
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import SparseProfile
from recommender.serving.candidate_index import ANN_DIR, NEIGHBOURS_FILE
from tests.recommender.serving.conftest import arrays_dir_of
from tests.recommender.serving.reference_candidates import former_candidate_scores

# weights that use every history signal (the test shop's tuned ones leave content out)
WITH_CONTENT = {
    V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 0.6, V.SIGNAL_CONTENT: 0.2, V.SIGNAL_ITEM_SIMILARITY: 0.2},
    V.SEGMENT_COLD: {
        V.SIGNAL_CONTENT: 0.4,
        V.SIGNAL_ITEM_SIMILARITY: 0.3,
        V.SIGNAL_POPULARITY: 0.3,
    },
}


def settings_for(
    processed: Path, registry: Path, weights: dict | None = None, **candidates: Any
) -> ServingSettings:
    # the test shop has 120 products: the shipped CF top-150 would take all of them, so CF
    # searches per_source unless a test says otherwise
    candidates = {"per_signal": {"content": 100}, **candidates}
    return ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(processed), "registry_dir": str(registry)},
            "candidates": candidates,
            "rerank": {"weights": weights},
        }
    )


def ann_dir(processed: Path, registry: Path) -> Path:
    return arrays_dir_of(processed, registry) / ANN_DIR


def known_users(bundle: ModelBundle, count: int) -> list[str]:
    """Up to ``count`` trainable and ``count`` cold users."""
    hist = bundle.histories
    out: dict[str, list[str]] = {V.SEGMENT_TRAINABLE: [], V.SEGMENT_COLD: []}
    for row in range(hist.n_users):
        segment = hist.segment(row)
        if segment in out and len(out[segment]) < count:
            out[segment].append(hist.user_ids[row])
    return out[V.SEGMENT_TRAINABLE] + out[V.SEGMENT_COLD]


def answers(bundle: ModelBundle, settings: ServingSettings, users: list[str], **options: Any):
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    return [engine.recommend(u, **options).as_dict() for u in users]


def ids(answer: dict[str, Any]) -> list[str]:
    return [r[V.PRODUCT_ID] for r in answer["recommendations"]]


def assert_same_answers(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Equal answers, scores to 6 decimals: a batch's CF rows come from one matrix product and a
    single request's from a two-row one, and OpenBLAS may pick another kernel for each (the last
    float32 bit, so the 6th decimal's rounding, can move; the ranking may not)."""

    def without_scores(answer: dict[str, Any]) -> dict[str, Any]:
        items = [{k: v for k, v in r.items() if k != "score"} for r in answer["recommendations"]]
        return {**answer, "recommendations": items}

    assert [without_scores(a) for a in got] == [without_scores(a) for a in want]
    for a, b in zip(got, want, strict=True):
        scores = [[r["score"] for r in x["recommendations"]] for x in (a, b)]
        np.testing.assert_allclose(*scores, rtol=0, atol=1.5e-6, err_msg=a["user_id"])


@pytest.mark.parametrize("weights", [None, WITH_CONTENT], ids=["tuned", "with-content"])
def test_forced_ann_ranks_like_exact_scoring(processed, registry_dir, weights):
    exact_settings = settings_for(processed, registry_dir, weights, mode="exact")
    ann_settings = settings_for(processed, registry_dir, weights, mode="ann")
    exact, ann = load_bundle(exact_settings), load_bundle(ann_settings)
    assert exact.model.candidates is None and exact.info["candidates"] == "exact"
    assert ann.model.candidates is not None and ann.info["candidates"] == "ann"
    users = known_users(exact, 150)
    assert len(users) > 100
    left = answers(exact, exact_settings, users)
    right = answers(ann, ann_settings, users)
    recall = np.mean(
        [
            len(set(ids(a)) & set(ids(b))) / max(1, len(ids(a)))
            for a, b in zip(left, right, strict=True)
        ]
    )
    assert recall >= 0.98
    assert all(len(ids(b)) == len(ids(a)) for a, b in zip(left, right, strict=True))
    # a batch ranks every user exactly as the single calls do, through the same candidates
    engine = Engine(ann, ServingCaches.from_settings(ann_settings.cache), ann_settings)
    assert_same_answers([r.as_dict() for r in engine.recommend_batch(users)], right)


BATCH_OPTIONS: list[dict[str, Any]] = [
    {"topk": 7},
    {"exclude_seen": False},
    {"rerank": False, "topk": 25},
    {"weights": {"cf": 1.0, "popularity": 0.5}},
    {"weights": {"content": 1.0, "item_similarity": 0.5}, "topk": 15},
    {"filters": "price"},
]


@pytest.mark.parametrize("options", BATCH_OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_a_batch_ranks_ann_users_as_single_calls(processed, registry_dir, options):
    """The batch ranks each user's candidate union itself (no (b, n) rows): the same answers as
    single calls under every option, unknown users and users the filters leave short included."""
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=40)
    bundle = load_bundle(settings)
    users = [*known_users(bundle, 60), "nobody-1", "nobody-2"]
    hist = bundle.histories
    users += [hist.user_ids[r] for r in range(hist.n_users) if hist.segment(r) == "unknown"][:3]
    if options.get("filters") == "price":
        prices = sorted(float(r[V.PRICE]) for r in bundle.catalogue.records if r[V.PRICE])
        options = {"filters": {"price_max": prices[len(prices) * 2 // 3]}}
    single = answers(bundle, settings, users, **options)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    assert_same_answers([r.as_dict() for r in engine.recommend_batch(users, **options)], single)


def test_batch_search_threads_change_no_answer(processed, registry_dir):
    """``batch.search_threads``: a chunk's CF and content queries searched on two threads find
    what each single call's search finds."""
    settings = ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(processed), "registry_dir": str(registry_dir)},
            "candidates": {
                "mode": "ann",
                "per_source": 40,
                "cf_min_factors": 1,  # the demo's factors indexed too
                "content_neighbours": False,  # content searched per request
            },
            "rerank": {"weights": WITH_CONTENT},
            "batch": {"search_threads": 2},
        }
    )
    bundle = load_bundle(settings)
    assert bundle.model.candidates is not None and bundle.model.candidates.cf is not None
    users = known_users(bundle, 60)
    single = answers(bundle, settings, users)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    assert_same_answers([r.as_dict() for r in engine.recommend_batch(users)], single)


def test_auto_keeps_a_small_catalogue_exact(processed, registry_dir):
    default = load_bundle(settings_for(processed, registry_dir))
    assert default.n_items < ServingSettings().candidates.auto_min_items
    assert default.model.candidates is None
    assert not ann_dir(processed, registry_dir).exists()  # nothing built for an exact model


def test_non_candidates_are_not_ranked(processed, registry_dir):
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    bundle = load_bundle(settings)
    hist = bundle.histories
    row = next(r for r in range(hist.n_users) if hist.segment(r) == V.SEGMENT_COLD)
    history = hist.liked(row)
    weights = bundle.hybrid.for_segment(V.SEGMENT_COLD)
    scores = score_users(
        bundle.model, V.SEGMENT_COLD, [history], weights, bundle.hybrid.normalisation
    )[0]
    finite = np.isfinite(scores)
    assert 10 <= finite.sum() < bundle.n_items  # the union, not the catalogue
    assert finite[bundle.model.popularity_order[:10]].all()  # the popular source
    sim = bundle.model.item_similarity
    neighbours = np.unique(
        np.concatenate([sim.indices[sim.indptr[i] : sim.indptr[i + 1]] for i in history])
    )
    if neighbours.size <= 10:
        assert finite[neighbours].all()  # the item-kNN source
    assert (scores[~finite] == -np.inf).all()
    # the blend is normalised over the candidates: the best candidate is not at 0
    assert scores[finite].max() > 0
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    ranked = engine.recommend(hist.user_ids[row], topk=5).ranked.indices
    assert all(finite[i] for i in ranked)


def test_filters_leaving_too_few_candidates_fall_back_to_exact(processed, registry_dir):
    exact_settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="exact")
    ann_settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    exact, ann = load_bundle(exact_settings), load_bundle(ann_settings)
    users = known_users(exact, 20)
    brand = exact.catalogue.records[-1][V.BRAND]
    filters = {"brand": brand}
    left = answers(exact, exact_settings, users, topk=10, filters=filters)
    right = answers(ann, ann_settings, users, topk=10, filters=filters)
    assert left == right  # few of 10-per-source candidates are of one brand: all exact
    engine = Engine(ann, ServingCaches.from_settings(ann_settings.cache), ann_settings)
    batch = [r.as_dict() for r in engine.recommend_batch(users, topk=10, filters=filters)]
    assert_same_answers(batch, left)


def test_index_files_are_shared_read_only_maps(processed, registry_dir):
    bundle = load_bundle(settings_for(processed, registry_dir, mode="ann"))
    assert bundle.model.candidates is not None
    path = ann_dir(processed, registry_dir) / "content.usearch"
    assert path.is_file()
    maps = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()]
    ours = [m for m in maps if len(m) >= 6 and m[5] == str(path.resolve())]
    assert ours, "the content index is not memory-mapped"
    assert all("w" not in m[1] for m in ours)  # read-only
    assert all(m[1][3] == "s" for m in ours)  # shared with every process mapping it


def test_missing_or_corrupt_index_is_rebuilt_and_answers_do_not_change(
    processed, registry_dir, caplog
):
    settings = settings_for(processed, registry_dir, mode="ann")
    first = load_bundle(settings)
    users = known_users(first, 30)
    before = answers(first, settings, users)
    directory = ann_dir(processed, registry_dir)
    path = directory / "content.usearch"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(255 - b for b in raw[middle : middle + 64])
    path.unlink()  # a new file (the first bundle keeps its map of the old one)
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        second = load_bundle(settings)
    assert "unusable" in caplog.text
    assert second.model.candidates is not None
    # threads=1: the rebuilt file is the one built before, byte for byte
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert answers(second, settings, users) == before
    shutil.rmtree(directory)
    third = load_bundle(settings)  # missing: built lazily by the first worker
    assert third.model.candidates is not None and directory.is_dir()
    assert answers(third, settings, users) == before


def test_an_index_that_cannot_answer_is_served_exactly(processed, registry_dir, monkeypatch):
    exact_settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="exact")
    # content searched per request (the neighbour table would need no search)
    ann_settings = settings_for(
        processed, registry_dir, WITH_CONTENT, mode="ann", content_neighbours=False
    )
    exact, ann = load_bundle(exact_settings), load_bundle(ann_settings)
    assert ann.hybrid.for_segment(V.SEGMENT_COLD).get(V.SIGNAL_CONTENT, 0) > 0  # searched
    hist = exact.histories
    users = [u for u in known_users(exact, 10) if hist.segment(hist.index[u]) == V.SEGMENT_COLD]
    assert users

    def broken(self: VectorIndex, queries: np.ndarray, count: int, threads: int = 1) -> list:
        raise RuntimeError("index file truncated")

    monkeypatch.setattr(VectorIndex, "search", broken)
    assert answers(ann, ann_settings, users) == answers(exact, exact_settings, users)


def test_unbuildable_index_leaves_the_model_exact(processed, registry_dir, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> VectorIndex:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(VectorIndex, "build", classmethod(lambda cls, *a, **k: broken()))
    bundle = load_bundle(settings_for(processed, registry_dir, mode="ann"))
    assert bundle.model.candidates is None and bundle.info["candidates"] == "exact"


def test_index_build_is_deterministic_and_searches_inner_product(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = IndexParams(connectivity=8, expansion_add=64, expansion_search=64, dtype="f32")
    for name in ("a", "b"):
        VectorIndex.build(vectors, params, threads=1).save(tmp_path / f"{name}.usearch")
    assert (tmp_path / "a.usearch").read_bytes() == (tmp_path / "b.usearch").read_bytes()
    index = VectorIndex.open(tmp_path / "a.usearch", params)
    queries = vectors[:20]
    found = index.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95
    assert [int(f[0]) for f in found] == list(range(20))  # each vector is its own nearest
    assert index.search(queries[:1], 5)[0].dtype == np.int64


def test_similar_items_for_a_user_blend_exact_relevance(processed, registry_dir):
    exact_settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="exact")
    ann_settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    exact, ann = load_bundle(exact_settings), load_bundle(ann_settings)
    user = known_users(exact, 1)[-1]
    product = exact.catalogue.item_ids[int(exact.popular_order[0])]
    out = []
    for bundle, settings in ((exact, exact_settings), (ann, ann_settings)):
        engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
        out.append(engine.similar_items(product, topk=10, user_id=user))
    assert out[0] == out[1]  # every neighbour has a relevance (no -inf, no NaN)


def users_of(bundle: ModelBundle, segment: str, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Histories and rows of up to ``count`` users of ``segment``."""
    hist = bundle.histories
    rows = np.array([r for r in range(hist.n_users) if hist.segment(r) == segment][:count])
    return [hist.liked(int(r)) for r in rows], rows


@pytest.mark.parametrize("cf_min_factors", [32, 1], ids=["cf-exact", "cf-indexed"])
@pytest.mark.parametrize(("decay", "method"), [(1.0, "minmax"), (0.7, "minmax"), (1.0, "rank")])
def test_union_scores_equal_the_former_dense_union_bit_for_bit(
    processed, registry_dir, cf_min_factors, decay, method
):
    """The sparse item-kNN sums and per-source sizes score every union as the first
    implementation did (dense rows), single users and a batch (whose min-max blend is one
    padded block), CF exact or indexed."""
    settings = settings_for(
        processed,
        registry_dir,
        WITH_CONTENT,
        mode="ann",
        per_source=10,
        per_signal={},  # the former code searched content with per_source
        content_neighbours=False,  # ... per request (the table: the test below)
        cf_min_factors=cf_min_factors,
    )
    bundle = load_bundle(settings)
    model = bundle.model
    assert model.candidates is not None
    assert (model.candidates.cf is not None) == (cf_min_factors == 1)
    for segment in (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD):
        histories, rows = users_of(bundle, segment, 40)
        trainable = segment == V.SEGMENT_TRAINABLE
        cf_rows = bundle.histories.cf_rows[rows] if trainable else None
        weights = WITH_CONTENT[segment]
        groups = [[i] for i in range(8)] + [list(range(len(histories)))]
        for group in groups:
            part = [histories[i] for i in group]
            part_rows = None if cf_rows is None else cf_rows[group]
            args = (model, segment, part, weights, method, part_rows)
            ours = score_users(*args, recency_decay=decay)
            former = former_candidate_scores(*args, recency_decay=decay)
            assert np.array_equal(ours, former)
            assert np.isfinite(ours).sum(axis=1).max() < model.n_items  # a union


def test_per_signal_sizes_change_only_that_source(processed, registry_dir):
    base = load_bundle(
        settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    )
    wide = load_bundle(
        settings_for(
            processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10,
            per_signal={"content": 100, "popularity": 40},
        )
    )  # fmt: skip
    histories, _ = users_of(base, V.SEGMENT_COLD, 5)
    weights = WITH_CONTENT[V.SEGMENT_COLD]
    for history in histories:
        narrow = np.isfinite(score_users(base.model, V.SEGMENT_COLD, [history], weights)[0])
        more = np.isfinite(score_users(wide.model, V.SEGMENT_COLD, [history], weights)[0])
        popular = base.model.popularity_order
        assert more[popular[:40]].all() and not narrow[popular[10:40]].all()
        assert (more | narrow).sum() == more.sum()  # the union only grew
    with pytest.raises(ValueError, match="per_signal"):
        settings_for(processed, registry_dir, mode="ann", per_signal={"content": 5})


@pytest.mark.parametrize("cf_min_factors", [32, 1], ids=["cf-exact", "cf-indexed"])
def test_explain_adds_up_to_the_relevance_it_was_ranked_by(processed, registry_dir, cf_min_factors):
    """Under the candidate stage the breakdown is normalised over the user's union, as served:
    the contributions add up to the relevance (over the catalogue they do not)."""
    settings = settings_for(
        processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10,
        cf_min_factors=cf_min_factors,
    )  # fmt: skip
    bundle = load_bundle(settings)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    checked = 0
    for user in known_users(bundle, 10):
        for entry in engine.recommend(user, topk=5, explain=True).as_dict()["recommendations"]:
            explain = entry["explain"]
            parts = explain["signals"]
            total = sum(p["contribution"] for p in parts.values())
            assert total == pytest.approx(explain["relevance"], abs=1e-5)
            assert all(0.0 <= p["value"] <= 1.0 for p in parts.values())
            checked += 1
    assert checked >= 50


def test_cf_index_is_searched_when_the_model_has_enough_factors(
    processed, registry_dir, monkeypatch
):
    """The test model has 8 factors: with ``cf_min_factors`` 8 the CF factors are indexed too
    (``cf.usearch`` beside the content index) and the answers still match exact scoring."""
    weights = {**WITH_CONTENT, V.SEGMENT_COLD: {**WITH_CONTENT[V.SEGMENT_COLD], V.SIGNAL_CF: 0.4}}
    exact_settings = settings_for(processed, registry_dir, weights, mode="exact")
    ann_settings = settings_for(processed, registry_dir, weights, mode="ann", cf_min_factors=8)
    exact, ann = load_bundle(exact_settings), load_bundle(ann_settings)
    search = ann.model.candidates
    assert search is not None and search.cf is not None and search.content is not None
    assert search.cf.ndim == ann.model.item_factors.shape[1] == 8
    assert (ann_dir(processed, registry_dir) / "cf.usearch").is_file()
    calls: list[int] = []
    original = VectorIndex.search

    def counted(self: VectorIndex, queries: np.ndarray, count: int, threads: int = 1) -> list:
        if self is search.cf:
            calls.append(len(queries))
        return original(self, queries, count, threads)

    monkeypatch.setattr(VectorIndex, "search", counted)
    users = known_users(exact, 60)
    right = answers(ann, ann_settings, users)
    monkeypatch.undo()
    assert calls == [1] * len(users)  # one CF search per known user
    left = answers(exact, exact_settings, users)
    recall = np.mean(
        [
            len(set(ids(a)) & set(ids(b))) / max(1, len(ids(a)))
            for a, b in zip(left, right, strict=True)
        ]
    )
    assert recall >= 0.98


def test_content_neighbours_are_a_shared_table_of_what_the_index_finds(processed, registry_dir):
    """Each item's content top-k is searched once and memory-mapped: a one-item history's
    content candidates are its item's row, which is the search of that item's embedding."""
    settings = settings_for(
        processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10, per_signal={"content": 20}
    )
    bundle = load_bundle(settings)
    search = bundle.model.candidates
    assert search is not None and search.content is not None
    table = search.content_neighbours
    assert table is not None and table.shape == (bundle.n_items, 20) and table.dtype == np.int32
    path = ann_dir(processed, registry_dir) / NEIGHBOURS_FILE
    maps = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()]
    ours = [m for m in maps if len(m) >= 6 and m[5] == str(path.resolve())]
    assert ours and all("w" not in m[1] for m in ours)  # a read-only map of the stored file
    embeddings = bundle.model.embeddings
    assert embeddings is not None
    for item in (0, 7, bundle.n_items - 1):
        assert list(table[item]) == list(search.content.search(embeddings[item], 20)[0])
    hist = bundle.histories
    weights = WITH_CONTENT[V.SEGMENT_COLD]
    rows = [r for r in range(hist.n_users) if hist.segment(r) == V.SEGMENT_COLD]
    single = [r for r in rows if len(hist.liked(r)) == 1][:10]
    assert single
    for row in single:
        (item,) = hist.liked(row)
        scores = score_users(bundle.model, V.SEGMENT_COLD, [hist.liked(row)], weights)[0]
        assert np.isfinite(scores[table[item]]).all()
    # a corrupt table is searched again: the same rows, the same answers
    users = known_users(bundle, 20)
    before = answers(bundle, settings, users)
    raw = bytearray(path.read_bytes())
    raw[-64:] = bytes(255 - b for b in raw[-64:])
    path.unlink()
    path.write_bytes(bytes(raw))
    again = load_bundle(settings)
    assert again.model.candidates is not None
    assert np.array_equal(again.model.candidates.content_neighbours, table)
    assert answers(again, settings, users) == before


def test_without_the_table_content_candidates_are_searched(processed, registry_dir, monkeypatch):
    settings = settings_for(
        processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10, content_neighbours=False
    )
    bundle = load_bundle(settings)
    search = bundle.model.candidates
    assert search is not None and search.content_neighbours is None
    assert not (ann_dir(processed, registry_dir) / NEIGHBOURS_FILE).exists()
    calls: list[int] = []
    original = VectorIndex.search

    def counted(self: VectorIndex, queries: np.ndarray, count: int, threads: int = 1) -> list:
        calls.append(count)
        return original(self, queries, count, threads)

    monkeypatch.setattr(VectorIndex, "search", counted)
    hist = bundle.histories
    row = next(r for r in range(hist.n_users) if hist.segment(r) == V.SEGMENT_COLD)
    score_users(bundle.model, V.SEGMENT_COLD, [hist.liked(row)], WITH_CONTENT[V.SEGMENT_COLD])
    assert calls == [search.size(V.SIGNAL_CONTENT)] == [100]  # the shipped content size


def test_evaluation_builds_the_same_candidate_stage_in_memory(processed, registry_dir):
    """Evaluated = served: ``build_search`` (the test table) gives the content neighbour table
    the serving files hold, and the same union scores."""
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    served = load_bundle(settings)
    model = served.model.exact_model
    built: dict[str, Any] = {}
    search = build_search(model, settings.candidates, built)
    assert search is not None and search.content_neighbours is not None
    assert served.model.candidates is not None
    assert np.array_equal(search.content_neighbours, served.model.candidates.content_neighbours)
    assert build_search(model, settings.candidates, built).content_neighbours is (  # type: ignore[union-attr]
        search.content_neighbours
    )  # reused for the next model of a build
    histories, _ = users_of(served, V.SEGMENT_COLD, 20)
    weights = WITH_CONTENT[V.SEGMENT_COLD]
    evaluated = score_users(with_candidates(model, search), V.SEGMENT_COLD, histories, weights)
    assert np.array_equal(evaluated, score_users(served.model, V.SEGMENT_COLD, histories, weights))


def test_a_candidate_stage_profile_is_cached_sparse_and_answers_alike(
    processed, registry_dir, monkeypatch
):
    # the test shop's unions are most of its 120 products: pack every profile with a -inf
    monkeypatch.setattr(caches, "SPARSE_SHARE", 1.0)
    settings = settings_for(processed, registry_dir, WITH_CONTENT, mode="ann", per_source=10)
    bundle = load_bundle(settings)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    users = known_users(bundle, 5)
    first = [engine.recommend(u).as_dict() for u in users]
    profiles = engine.caches.user_profiles
    cached = [profiles.get(u, count=False) for u in users]
    assert all(isinstance(c, SparseProfile) for c in cached)  # -inf outside the union
    engine.caches.results.clear()  # the answers again, now from the stored profiles
    hits = profiles.hits
    assert [engine.recommend(u).as_dict() for u in users] == first
    assert profiles.hits == hits + len(users)
