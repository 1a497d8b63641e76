"""The batch path's array steps equal the engine's per-user definitions exactly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import recommender.serving.batch_scoring as batch_scoring
from recommender.config.serving import ServingSettings
from recommender.serving.batch_scoring import (
    Answers,
    answer_keys,
    liked_histories,
    route_codes,
    seen_coordinates,
    top_candidates,
    union_candidates,
)
from tests.recommender.serving.conftest import COLD, TRAINABLE, make_engine

CODES = {"unknown": 0, "cold": 1, "trainable": 2}


def engine_top(scores: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The engine's own selection (``Engine._candidates``): argpartition of float64 keys."""
    n = scores.shape[1]
    keys = np.subtract(np.arange(n) * 1e-11, scores, dtype=np.float64)
    keys[~np.isfinite(scores)] = np.inf
    candidates = np.argpartition(keys, width - 1, axis=1)[:, :width] if width < n else None
    if candidates is None:
        candidates = np.tile(np.arange(n), (len(scores), 1))
    rows = np.arange(len(scores))[:, None]
    order = np.argsort(keys[rows, candidates], axis=1, kind="stable")
    candidates = candidates[rows, order]
    finite = np.isfinite(keys[rows, candidates])
    return candidates, np.where(finite, scores[rows, candidates], -np.inf)


@pytest.mark.parametrize("width", [1, 5, 30, 60])
def test_top_candidates_are_the_engines_items_in_its_order(width):
    rng = np.random.default_rng(7)
    n = 60
    # rounded scores with many ties (0.25 steps), rows with items excluded and one row with
    # fewer eligible items than width
    scores = (np.round(rng.random((40, n)) * 4) / 4).astype(np.float32)
    scores[rng.random((40, n)) < 0.3] = -np.inf
    scores[3, 4:] = -np.inf
    scores[5] = -np.inf
    items, values = top_candidates(scores.copy(), width, np.arange(n) * 1e-11)
    want_items, want_values = engine_top(scores, width)
    np.testing.assert_array_equal(values, want_values.astype(np.float32))
    valid = np.isfinite(want_values)
    np.testing.assert_array_equal(items[valid], want_items[valid])
    assert (items[~valid] == 0).all()


@pytest.mark.parametrize("width", [1, 7, 30])
def test_top_candidates_keep_the_lowest_indices_of_a_wide_tie(width):
    """Rows where hundreds of items tie at the threshold (a user without any signal scores every
    item alike): the lowest-index tied items after the better ones, as the engine's keys order."""
    rng = np.random.default_rng(3)
    n = 500
    scores = np.zeros((6, n), dtype=np.float32)  # row 0: every item tied
    scores[1, rng.choice(n, 3, replace=False)] = 0.5  # three above a 497-item tie
    scores[2] = (np.round(rng.random(n) * 2) / 2).astype(np.float32)  # three levels, wide ties
    scores[3, :200] = -np.inf  # the tie starts past excluded items
    scores[4] = -np.inf
    scores[4, [450, 7, 300]] = 0.0  # fewer eligible than width, all tied
    scores[5] = rng.random(n).astype(np.float32)  # no ties
    items, values = top_candidates(scores.copy(), width, np.arange(n) * 1e-11)
    want_items, want_values = engine_top(scores, width)
    np.testing.assert_array_equal(values, want_values.astype(np.float32))
    valid = np.isfinite(want_values)
    np.testing.assert_array_equal(items[valid], want_items[valid])
    assert items[0].tolist() == list(range(width))


@pytest.mark.parametrize("width", [1, 8, 30, 90])
def test_union_candidates_rank_like_the_dense_rows(width):
    """Rows that are -inf outside a candidate union (the candidate stage): ranked from the unions
    with the mask and seen items applied, the same items and scores as the dense rows give
    (ties at the threshold, rows with fewer eligible items than width, an empty union)."""
    rng = np.random.default_rng(11)
    n, b = 300, 25
    unions = []
    dense = np.full((b, n), -np.inf, dtype=np.float32)
    for row in range(b):
        size = 0 if row == 4 else (5 if row == 6 else int(rng.integers(20, 120)))
        items = np.sort(rng.choice(n, size, replace=False))
        values = (np.round(rng.random(size) * 8) / 8).astype(np.float32)  # many ties
        unions.append((items, values.copy()))
        dense[row, items] = values
    mask = rng.random(n) > 0.2
    seen_rows = rng.integers(0, b, 400)
    seen_items = rng.integers(0, n, 400)  # some inside a union, most outside
    parts = []  # flat (items, bounds, scores) parts, as candidate_unions gives them
    for group in (unions[:10], unions[10:]):
        sizes = [len(items) for items, _ in group]
        bounds = np.concatenate(([0], np.cumsum(sizes)))
        flat = [np.concatenate([u[k] for u in group]) for k in (0, 1)]
        parts.append((flat[0], bounds, flat[1]))
    items, values = union_candidates(parts, n, width, mask, (seen_rows, seen_items))
    dense[:, ~mask] = -np.inf
    dense[seen_rows, seen_items] = -np.inf
    want_items, want_values = top_candidates(dense, width, np.arange(n) * 1e-11)
    np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(items, want_items)
    assert all(np.isfinite(p[2]).all() for p in parts)  # the unions were not written


def test_routing_and_histories_match_the_per_user_definitions():
    engine = make_engine()
    hist = engine.bundle.histories
    users = ["nobody", *TRAINABLE, *COLD, "x2"]
    rows, codes = route_codes(hist, users)
    assert rows.tolist() == [hist.index.get(u, -1) for u in users]
    assert codes.tolist() == [CODES[hist.segment(r)] for r in rows.tolist()]
    known = rows[rows >= 0]
    got = liked_histories(hist, known)
    assert [h.tolist() for h in got] == [hist.liked(int(r)).tolist() for r in known]
    positions, items = seen_coordinates(hist, rows)
    want = hist.seen_coordinates(rows.tolist())
    assert positions.tolist() == want[0].tolist() and items.tolist() == want[1].tolist()


def test_answer_keys_tell_histories_apart_and_join_the_never_seen():
    engine = make_engine()
    hist = engine.bundle.histories
    users = [*TRAINABLE, *COLD, "t0", "nobody", "x2"]
    rows, codes = route_codes(hist, users)
    keys = answer_keys(hist, rows, codes, gated=False)
    known = len(TRAINABLE) + len(COLD)
    assert len(set(keys[:known])) == known  # every stored user's history is their own
    assert keys[known] == keys[0]  # t0 again
    assert keys[known + 1] is None and keys[known + 2] is None  # never seen: one answer


def test_a_batch_ranks_each_distinct_history_once_across_its_chunks(monkeypatch):
    """Repeated users and unknown ids, over chunks of 2: each distinct answer is ranked once
    (the memo carries over between chunks), every user gets their own id and the answer a
    single call gives."""
    settings = ServingSettings.model_validate({"batch": {"chunk_users": 2}})
    users = ["t0", "c1", "t0", "nobody", "c1", "x2", "t3", "t0"]
    ranked: list[str] = []
    real = batch_scoring._rank_rows

    def counting(engine, part, *args):
        ranked.extend(part)
        return real(engine, part, *args)

    monkeypatch.setattr(batch_scoring, "_rank_rows", counting)
    batch = make_engine(settings).recommend_batch(users, topk=5)
    assert sorted(ranked) == sorted(["t0", "c1", "nobody", "t3"])
    single_engine = make_engine()
    for user, result in zip(users, batch, strict=True):
        single = single_engine.recommend(user, topk=5)
        assert result.user_id == user
        assert (result.segment, result.ranked.indices, result.ranked.scores) == (
            single.segment,
            single.ranked.indices,
            single.ranked.scores,
        )


def test_a_batchs_answers_hold_only_while_live_popularity_and_catalogue_do():
    versions = {"popularity": 0}
    live = SimpleNamespace(catalogue_version=0)
    engine = SimpleNamespace(
        bundle=SimpleNamespace(stale_model=None),
        live=live,
        _live_frame_model=lambda: (versions["popularity"], None, None, None),
    )
    memo = Answers()
    known = memo.current(engine)
    assert known is not None
    known["key"] = "answer"
    assert memo.holds(engine) and memo.current(engine) == {"key": "answer"}
    versions["popularity"] = 1  # refreshed (e.g. by another thread) while a chunk ranked
    assert not memo.holds(engine)
    assert memo.current(engine) == {}
    memo.current(engine)["key"] = "answer"
    live.catalogue_version = 3
    assert not memo.holds(engine) and memo.current(engine) == {}
    engine.bundle.stale_model = object()  # the gate's clock moves between chunks: none kept
    assert memo.current(engine) is None
