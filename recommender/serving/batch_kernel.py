"""A batch chunk's blend, candidates and MMR picks in compiled passes over its rows (numba).

After its signals, a chunk of ``b`` users was ~30 numpy calls over ``(b, n)`` matrices: six per
signal for the min-max blend, three for rounding, a float32 partition and a dozen calls to pick
each row's candidates, then ``k`` MMR steps of four calls each. Each made a new ``(b, n)`` or
``(b, C)`` array and read the whole chunk again. Here, one call per signal blends every row in
place. A second call then ranks every row while it is in the CPU's caches: rounding, filters,
seen items, candidates, MMR, the picks' rounded scores.

Row by row these are the one-request kernels (:func:`.blend_kernel.add_term`,
:func:`.blend_kernel.round_row`, :func:`.rank_kernel._top` and :func:`.rank_kernel._mmr`)
called from compiled loops, so a user ranks exactly as a single request ranks them. (The same
kernel called from Python once per row was slower than the numpy batch: its per-call overhead
was paid 1,000 times.) Pinned in ``tests/recommender/serving/test_batch_kernel.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from recommender.scoring.blend_kernel import add_term, round_row
from recommender.serving.rank_kernel import NO_COSINE, NO_MASK, _mmr, _top


@numba.njit(cache=True, nogil=True)
def blend_rows(
    total: np.ndarray,
    values: np.ndarray,
    weight: np.float32,
    normalise: bool,
    first: bool,
    scale: np.float32,
) -> None:  # pragma: no cover - compiled
    """:func:`.blend_kernel.add_term` of every row: ``total[r] (+)= weight · minmax(values[r])``
    in place. ``values`` is ``(b, n)``, or one static ``(1, n)`` row for every user.
    ``scale > 0``: this is the last term, so each row is then rounded to ``10^d`` (``scale``),
    as :func:`.blend_kernel.round_row` does, while it is still in the cache."""
    shared = values.shape[0] == 1 and total.shape[0] > 1
    for r in range(total.shape[0]):
        add_term(total[r], values[0] if shared else values[r], weight, normalise, first)
        if scale > 0:
            round_row(total[r], scale)


@numba.njit(cache=True, nogil=True)
def rank_rows(
    scores: np.ndarray,
    rows: np.ndarray,
    mask: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    width: int,
    k: int,
    lam: np.float32,
    cosine: np.ndarray,
    scale: float,
    chosen: np.ndarray,
    rounded: np.ndarray,
    counts: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`.rank_kernel.rank_row` of every row of ``scores`` ``(b, n)`` float32 (written: the
    caller's own rounded scores), into ``chosen`` ``(b, k)`` int64, ``rounded`` ``(b, k)``
    float64 and ``counts`` ``(b,)`` (picks per row; the slots after them are not written).

    ``rows``: each user's history row, whose ``indices[indptr[row]:indptr[row + 1]]`` are left
    out (``-1``, or an empty ``indptr``: none). ``mask``, ``width``, ``k``, ``lam``, ``cosine``
    and ``scale`` are :func:`.rank_kernel.rank_row`'s."""
    items = np.empty(width, dtype=np.int64)
    values = np.empty(width, dtype=np.float32)
    picks = np.empty(k, dtype=np.int64)
    diversify = lam > 0 and width > 1 and cosine.shape[0] > 0
    for b in range(scores.shape[0]):
        ranked = scores[b]
        if mask.shape[0]:
            for i in range(ranked.shape[0]):
                if not mask[i]:
                    ranked[i] = -np.inf
        row = rows[b]
        if row >= 0 and indptr.shape[0]:
            for entry in range(indptr[row], indptr[row + 1]):
                ranked[indices[entry]] = -np.inf
        count = _top(ranked, width, items, values)
        steps = min(k, count)
        if diversify and count:
            _mmr(values, items, count, cosine, lam, picks[:steps])
        else:
            for step in range(steps):
                picks[step] = step
        for step in range(steps):
            chosen[b, step] = items[picks[step]]
            rounded[b, step] = np.rint(np.float64(values[picks[step]]) * scale) / scale
        counts[b] = steps


def warm_up(n: int, indptr: np.ndarray, indices: np.ndarray, cosine: np.ndarray | None) -> None:
    """Compile (or load from numba's on-disk cache) both kernels for the argument types a chunk
    passes, at load time rather than in the first batch: a chunk's own rows and a model's
    static (read-only) vector, the histories' CSR arrays, with and without a mask (a filter's,
    writable, or the live availability's, read-only) and the ``cosine``."""
    total = np.zeros((1, n), dtype=np.float32)
    static = np.zeros((1, n), dtype=np.float32)
    static.setflags(write=False)
    for values in (total, static):
        blend_rows(total, values, np.float32(1.0), True, True, np.float32(0.0))
    read_only = np.ones(n, dtype=np.bool_)
    read_only.setflags(write=False)
    rows = np.full(1, -1, dtype=np.int64)
    chosen, rounded, counts = (
        np.empty((1, 1), np.int64),
        np.empty((1, 1), np.float64),
        np.empty(1, np.int64),
    )
    for matrix in (NO_COSINE,) if cosine is None else (NO_COSINE, cosine):
        for mask in (NO_MASK, read_only):
            rank_rows(
                total, rows, mask, indptr, indices, 1, 1, np.float32(0.5), matrix, 1.0,
                chosen, rounded, counts,
            )  # fmt: skip
