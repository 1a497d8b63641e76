"""One request's candidates and MMR picks in one compiled pass (numba).

After scoring, a request ranks its user's ``(n,)`` scores: filters and seen items out, the best
``width`` candidates (``topk × rerank.candidate_multiplier``), greedy MMR over them, the picks'
scores rounded. In numpy that is ~40 small calls (a partition, an argsort, a ``C × C`` gather
of the cosine and two calls per MMR step), about a third of an uncached request's engine time
on the demo shop; compiled it is one call that reads only the ``k − 1`` cosine rows MMR needs.

Bit for bit the numpy path (:meth:`Engine._candidates_one`, :func:`.reranker.mmr_order`,
:func:`.engine._chosen`; pinned in ``tests/recommender/serving/test_single_request.py``):

- candidates: the ``width`` best finite scores, best first, ties by item index (the order of
  the float64 keys ``index·1e-11 − score``), excluded items (``-inf``) left out;
- MMR: the same float32 operations in the same order as ``_mmr_one`` (``gain = (1 − λ)·(rel −
  lo) / span``; a step takes the first maximum of ``gain − penalty`` and lowers it to
  ``min(value, gain − λ·cos(pick, ·))``); only comparisons of those values decide a pick;
- scores: float64 ``rint(score · 10^d) / 10^d``, as ``np.round``.

No ``fastmath``: IEEE float32 arithmetic without reassociation or fused multiply-adds.
"""

from __future__ import annotations

import numba
import numpy as np

NO_MASK = np.zeros(0, dtype=np.bool_)  # every item eligible
NO_COSINE = np.zeros((0, 0), dtype=np.float32)  # no MMR: the relevance order
# read-only, as a loaded bundle's cosine: numba compiles one variant per array type
NO_COSINE.setflags(write=False)


@numba.njit(cache=True, nogil=True)
def _top(ranked: np.ndarray, width: int, items: np.ndarray, values: np.ndarray) -> int:
    # pragma: no cover - compiled
    """The ``width`` best finite entries of ``ranked`` into ``items``/``values``, best first,
    ties by index (scanned in index order, an equal value never passes an earlier one); how
    many there are."""
    count = 0
    for i in range(ranked.shape[0]):
        v = ranked[i]
        if not np.isfinite(v):
            continue
        if count == width:
            if not v > values[width - 1]:
                continue
            j = width - 1
        else:
            j = count
            count += 1
        while j > 0 and values[j - 1] < v:
            values[j] = values[j - 1]
            items[j] = items[j - 1]
            j -= 1
        values[j] = v
        items[j] = i
    return count


@numba.njit(cache=True, nogil=True)
def _mmr(
    values: np.ndarray,
    items: np.ndarray,
    count: int,
    cosine: np.ndarray,
    lam: np.float32,
    picks: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``len(picks)`` greedy MMR picks (positions into the ``count`` candidates) into ``picks``:
    ``_mmr_one``'s float32 arithmetic, the cosine read per pick."""
    lo = values[count - 1]
    hi = values[0]
    span = hi - lo if hi > lo else np.float32(1.0)
    keep = np.float32(1.0) - lam
    gain = np.empty(count, dtype=np.float32)
    for j in range(count):
        gain[j] = keep * (values[j] - lo) / span
    value = gain.copy()
    steps = picks.shape[0]
    for step in range(steps):
        best = 0
        for j in range(1, count):
            if value[j] > value[best]:
                best = j
        picks[step] = best
        if step + 1 == steps:
            break
        row = cosine[items[best]]
        for j in range(count):
            after = gain[j] - lam * row[items[j]]
            if j == best:
                value[j] = -np.inf
            elif after < value[j]:
                value[j] = after


@numba.njit(cache=True, nogil=True)
def pick(
    items: np.ndarray,
    values: np.ndarray,
    keys: np.ndarray,
    width: int,
    k: int,
    lam: np.float32,
    cosine: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """MMR picks of the ``len(values)`` candidates ``items`` (best first: :func:`rank_row`'s or
    :func:`union_top`'s) and their rounded scores; ``keys``: each candidate's row and column in
    ``cosine`` (the items in the ``(n, n)`` cosine, or ``0..C-1`` in the candidates' own
    ``(C, C)`` similarities); ``width``: the candidates asked for."""
    count = values.shape[0]
    picks = np.empty(min(k, count), dtype=np.int64)
    if lam > 0 and width > 1 and cosine.shape[0] and count:
        _mmr(values, keys, count, cosine, lam, picks)
    else:
        for step in range(picks.shape[0]):
            picks[step] = step
    chosen = np.empty(picks.shape[0], dtype=np.int64)
    rounded = np.empty(picks.shape[0], dtype=np.float64)
    for step in range(picks.shape[0]):
        chosen[step] = items[picks[step]]
        rounded[step] = np.rint(np.float64(values[picks[step]]) * scale) / scale
    return chosen, rounded


@numba.njit(cache=True, nogil=True)
def rank_row(
    scores: np.ndarray,
    mask: np.ndarray,
    seen: np.ndarray,
    width: int,
    k: int,
    lam: np.float32,
    cosine: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """One user's ranked items and rounded scores (see the module docstring).

    ``scores`` ``(n,)`` float32; ``mask`` ``(n,)`` bool eligibility (:data:`NO_MASK`: all);
    ``seen`` item indices to leave out; ``width`` candidates, ``k`` picks; ``lam`` the MMR
    diversity over ``cosine`` ``(n, n)`` (:data:`NO_COSINE` or ``lam <= 0``: the relevance
    order); ``scale`` ``10^d`` for scores rounded to ``d`` decimals.
    """
    ranked = scores.copy()
    if mask.shape[0]:
        for i in range(ranked.shape[0]):
            if not mask[i]:
                ranked[i] = -np.inf
    for item in seen:
        ranked[item] = -np.inf
    items = np.empty(width, dtype=np.int64)
    values = np.empty(width, dtype=np.float32)
    count = _top(ranked, width, items, values)
    return pick(items[:count], values[:count], items[:count], width, k, lam, cosine, scale)


@numba.njit(cache=True, nogil=True)
def union_top(
    items: np.ndarray, scores: np.ndarray, mask: np.ndarray, seen: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The candidates of a row that is ``-inf`` outside a candidate union, from the union
    itself: ``items`` ``(m,)`` ascending and their float32 ``scores``; ``mask`` ``(n,)``
    eligibility (:data:`NO_MASK`: all), ``seen`` items to leave out (looked up by bisection).
    The ``width`` (or fewer) best finite entries as ``(item indices, scores)``, best first,
    ties by item index: :func:`rank_row`'s candidates of the dense row, in ``O(m)``."""
    ranked = scores.copy()
    m = items.shape[0]
    if mask.shape[0]:
        for j in range(m):
            if not mask[items[j]]:
                ranked[j] = -np.inf
    for item in seen:
        j = np.searchsorted(items, item)
        if j < m and items[j] == item:
            ranked[j] = -np.inf
    at = np.empty(width, dtype=np.int64)
    values = np.empty(width, dtype=np.float32)
    count = _top(ranked, width, at, values)
    chosen = np.empty(count, dtype=np.int64)
    for t in range(count):
        chosen[t] = items[at[t]]
    return chosen, values[:count].copy()


def warm_up(scores: np.ndarray, seen: np.ndarray, cosine: np.ndarray | None) -> None:
    """Compile :func:`rank_row` (or load it from numba's on-disk cache: ~0.3 s in a new
    process) for the argument types requests pass, at load time rather than in the first
    request: a model's read-only ``scores`` and ``seen`` slices, with and without the
    ``cosine``, without a mask or with a filter's (writable) or the live availability's
    (read-only) one."""
    read_only = np.ones(scores.shape[0], dtype=np.bool_)
    read_only.setflags(write=False)
    masks = (NO_MASK, read_only)  # NO_MASK: the type of a filter's mask
    for matrix in (NO_COSINE,) if cosine is None else (NO_COSINE, cosine):
        for mask in masks:
            rank_row(scores, mask, seen, 2, 1, np.float32(0.5), matrix, 1.0)


def warm_up_union(n: int, seen: np.ndarray, cosine: np.ndarray | None) -> None:
    """:func:`warm_up` of :func:`union_top` and :func:`pick` (a model with the ANN candidate
    stage): a union's read-only int32 items and float32 scores (fresh or a cached
    :class:`~recommender.serving.caches.SparseProfile`), the masks of :func:`warm_up`, and MMR
    over the ``cosine``, over the candidates' own similarities (a new array) or none."""
    items = np.arange(min(n, 2), dtype=np.int32)
    scores = np.zeros(items.size, dtype=np.float32)
    items.setflags(write=False)
    scores.setflags(write=False)
    read_only = np.ones(n, dtype=np.bool_)
    read_only.setflags(write=False)
    for mask in (NO_MASK, read_only):
        chosen, values = union_top(items, scores, mask, seen, 2)
    sims = np.zeros((chosen.size, chosen.size), dtype=np.float32)
    keys = np.arange(chosen.size, dtype=np.int64)
    for matrix in (NO_COSINE, sims) if cosine is None else (NO_COSINE, sims, cosine):
        pick(chosen, values, keys, 2, 1, np.float32(0.5), matrix, 1.0)
