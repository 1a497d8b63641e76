"""The batch chunk's kernels (``recommender/serving/batch_kernel.py``) equal the one-request
kernels they stand for, bit for bit: ``blend_row`` is ``add_term`` (+ ``round_row``), ``top``
is ``_top`` and ``rank_rows`` is ``rank_row`` of each row, on rows with ties, signed zeros,
NaN, infinities and excluded items, at widths on both sides of ``top``'s fallback."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from recommender.scoring.blend_kernel import add_term, round_row
from recommender.serving.batch_kernel import _GROUPS, blend_row, blend_rows, rank_rows, top
from recommender.serving.rank_kernel import NO_COSINE, NO_MASK, _top, rank_row

SCALE = np.float32(1e6)
WIDTHS = [1, 2, 10, 30, 31, 64, 65, 90, 300]


def rows(n: int, seed: int = 1) -> Iterator[np.ndarray]:
    """float32 rows of length ``n`` that stress the kernels' shortcuts."""
    rng = np.random.default_rng(seed)
    x = rng.random(n).astype(np.float32)
    yield x
    yield (np.round(x * 8) / 8).astype(np.float32)  # wide ties
    yield rng.integers(0, 3, n).astype(np.float32)
    for value, step in ((0.0, 5), (-0.0, 5)):  # zeros of both signs at the min
        y = x.copy()
        y[::step] = value
        y[3] = -value
        yield y
    y = -x  # zeros at the max
    y[::4] = -0.0
    y[1] = 0.0
    yield y
    yield np.zeros(n, np.float32)
    yield np.full(n, -0.0, np.float32)
    for value, step in ((np.nan, n // 2), (np.nan, 3), (np.inf, 7), (-np.inf, 2)):
        y = x.copy()
        y[::step] = value
        yield y
    y = x.copy()
    y[rng.random(n) < 0.97] = -np.inf  # fewer finite entries than most widths
    yield y
    yield np.full(n, -np.inf, np.float32)
    yield np.sort(x)
    yield np.sort(x)[::-1].copy()
    yield (rng.standard_normal(n) * 1e-3).astype(np.float32)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (a zero's sign included), NaNs equal whatever their payload."""
    nan = np.isnan(a)
    return bool((nan == np.isnan(b)).all()) and bool(
        np.array_equal(a[~nan].view(np.int32), b[~nan].view(np.int32))
    )


@pytest.mark.parametrize("n", [7, 513, 2000])
def test_blend_row_is_add_term_then_round_row(n):
    weights = (np.float32(0.95), np.float32(0.05), np.float32(1000.0))
    for values in rows(n):
        for total in rows(n, seed=2):
            for weight in weights:
                for normalise in (True, False):
                    for first in (True, False):
                        for scale in (np.float32(0.0), SCALE):
                            want = total.copy()
                            add_term(want, values, weight, normalise, first)
                            if scale > 0:
                                round_row(want, scale)
                            got = total.copy()
                            blend_row(got, values, weight, normalise, first, scale)
                            assert same_bits(got, want), (normalise, first, scale)


@pytest.mark.parametrize("n", [7, 2000])
def test_blend_rows_in_place_and_shared_rows(n):
    """The first term written over its own signal matrix, and a static row for every user."""
    block = np.stack(list(rows(n)))
    for scale in (np.float32(0.0), SCALE):
        want = block.copy()
        for r in range(len(want)):
            add_term(want[r], block[r].copy(), np.float32(0.7), True, True)
            if scale > 0:
                round_row(want[r], scale)
        got = block.copy()
        blend_rows(got, got, np.float32(0.7), True, True, scale)
        assert all(same_bits(g, w) for g, w in zip(got, want, strict=True))
    static = block[:1].copy()
    want = block.copy()
    for r in range(len(want)):
        add_term(want[r], static[0], np.float32(0.3), False, False)
    got = block.copy()
    blend_rows(got, static, np.float32(0.3), False, False, np.float32(0.0))
    assert all(same_bits(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("n", [100, 512, 513, 2000, 5003])
def test_top_is_the_one_request_top(n):
    groups = np.empty(_GROUPS, np.float32)
    for row in rows(n):
        for width in WIDTHS:
            want_items, want_values = np.empty(width, np.int64), np.empty(width, np.float32)
            got_items, got_values = np.empty(width, np.int64), np.empty(width, np.float32)
            count = _top(row, width, want_items, want_values)
            assert top(row, width, got_items, got_values, groups) == count, width
            assert got_items[:count].tolist() == want_items[:count].tolist(), width
            assert same_bits(got_values[:count], want_values[:count]), width


def test_rank_rows_is_rank_row_of_each_row():
    rng = np.random.default_rng(4)
    n, b = 2000, 12
    embeddings = rng.standard_normal((n, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = embeddings @ embeddings.T
    cosine.setflags(write=False)
    scores = np.round(rng.random((b, n)), 3).astype(np.float32)  # ties among candidates
    scores[3] = 0.25  # one tie across the row
    indptr = np.concatenate(([0], np.cumsum(rng.integers(0, 40, b)))).astype(np.int64)
    indices = rng.integers(0, n, int(indptr[-1])).astype(np.int32)
    filters = rng.random(n) < 0.6
    for mask in (NO_MASK, filters):
        for matrix, lam in ((NO_COSINE, 0.0), (cosine, 0.1), (cosine, 0.7)):
            for width, k in ((30, 10), (10, 10), (1, 1), (300, 100)):
                history = np.arange(b, dtype=np.int64)
                history[2] = -1  # nothing seen
                chosen = np.empty((b, k), np.int64)
                rounded = np.empty((b, k), np.float64)
                counts = np.empty(b, np.int64)
                block = scores.copy()
                rank_rows(
                    block, history, mask, indptr, indices, width, k, np.float32(lam), matrix,
                    1e6, chosen, rounded, counts,
                )  # fmt: skip
                for r in range(b):
                    seen = indices[indptr[r] : indptr[r + 1]] if history[r] >= 0 else indices[:0]
                    want_items, want_scores = rank_row(
                        scores[r], mask, seen, width, k, np.float32(lam), matrix, 1e6
                    )
                    count = int(counts[r])
                    assert chosen[r, :count].tolist() == want_items.tolist()
                    assert rounded[r, :count].tolist() == want_scores.tolist()
