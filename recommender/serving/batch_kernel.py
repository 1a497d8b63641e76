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

from recommender.serving.rank_kernel import NO_COSINE, NO_MASK, _mmr, _top

_GROUPS = 256  # rank_rows: a row's items in groups i mod 256 (their maxima found elementwise)


_KEY_NEG_INF = np.int32(-2139095041)  # _key(-inf): NaNs' keys lie below it (sign set) or above
_KEY_POS_INF = np.int32(0x7F800000)  # _key(+inf)
_LOW_BITS = np.int32(0x7FFFFFFF)


@numba.njit(cache=True, nogil=True)
def _key_range(values: np.ndarray) -> tuple[np.int32, np.int32]:  # pragma: no cover - compiled
    """The least and greatest order key of ``values``: a float32's bits as an int32, the low 31
    flipped for negative floats, ordered as the floats are (``-0.0`` just below ``+0.0``, NaNs
    past the infinities). Integer min/max, so the compiler vectorises it (exact)."""
    bits = values.view(np.int32)
    least = np.int32(2147483647)
    most = np.int32(-2147483648)
    for i in range(bits.shape[0]):
        b = bits[i]
        key = b ^ ((b >> 31) & _LOW_BITS)
        least = min(least, key)
        most = max(most, key)
    return least, most


@numba.njit(cache=True, nogil=True)
def _of_key(key: np.int32) -> np.float32:  # pragma: no cover - compiled
    """The float32 of an order key (the flip is its own inverse)."""
    out = np.empty(1, dtype=np.int32)
    out[0] = key ^ ((key >> 31) & _LOW_BITS)
    return out.view(np.float32)[0]


@numba.njit(cache=True, nogil=True)
def _first_equal(values: np.ndarray, target: np.float32) -> np.float32:  # pragma: no cover
    """The first entry equal to ``target`` (itself an entry): for a zero, the sign the first
    zero has, which a sequential ``v < lo`` / ``v > hi`` scan keeps."""
    for i in range(values.shape[0]):
        if values[i] == target:
            return values[i]
    return target


@numba.njit(cache=True, nogil=True)
def _terms(
    total: np.ndarray,
    values: np.ndarray,
    lo: np.float32,
    span: np.float32,
    weight: np.float32,
    mode: int,
    first: bool,
    scale: np.float32,
) -> None:  # pragma: no cover - compiled
    """``total[i] (+)= term(values[i])``, rounded when ``scale > 0``; ``mode`` 0: ``(v − lo) /
    span · w``, 1: ``0 · w``, 2: ``v · w``. One loop per case, so each vectorises."""
    zero = np.float32(0.0) * weight
    n = values.shape[0]
    if scale > 0:
        for i in range(n):
            v = values[i]
            term = (v - lo) / span * weight if mode == 0 else (zero if mode == 1 else v * weight)
            x = term if first else total[i] + term
            total[i] = np.rint(x * scale) / scale
    elif first:
        if mode == 0:
            for i in range(n):
                total[i] = (values[i] - lo) / span * weight
        elif mode == 1:
            for i in range(n):
                total[i] = zero
        else:
            for i in range(n):
                total[i] = values[i] * weight
    elif mode == 0:
        for i in range(n):
            total[i] = total[i] + (values[i] - lo) / span * weight
    elif mode == 1:
        for i in range(n):
            total[i] = total[i] + zero
    else:
        for i in range(n):
            total[i] = total[i] + values[i] * weight


@numba.njit(cache=True, nogil=True)
def _in_place(
    values: np.ndarray, lo: np.float32, span: np.float32, weight: np.float32, scale: np.float32
) -> None:  # pragma: no cover - compiled
    """:func:`_terms` of a first normalised term written over its own signal (one array: no
    overlap for the vectoriser to rule out at run time)."""
    if scale > 0:
        for i in range(values.shape[0]):
            values[i] = np.rint((values[i] - lo) / span * weight * scale) / scale
    else:
        for i in range(values.shape[0]):
            values[i] = (values[i] - lo) / span * weight


@numba.njit(cache=True, nogil=True)
def blend_row(
    total: np.ndarray,
    values: np.ndarray,
    weight: np.float32,
    normalise: bool,
    first: bool,
    scale: np.float32,
) -> None:  # pragma: no cover - compiled
    """:func:`.blend_kernel.add_term` (then :func:`.blend_kernel.round_row` when ``scale > 0``)
    bit for bit, in loops the compiler vectorises: the min and max from integer order keys
    (exact; a zero minimum's sign from the first zero, as the sequential scan keeps it; a NaN
    shows as a key past the infinities), then one pass per case for the terms (the same IEEE
    float32 operations in the same order per item)."""
    n = values.shape[0]
    mode = 2
    lo = np.float32(0.0)
    span = np.float32(1.0)
    if normalise:
        mode = 1
        if n > 0:
            least, most = _key_range(values)
            if least >= _KEY_NEG_INF and most <= _KEY_POS_INF:  # no NaN
                lo, hi = _of_key(least), _of_key(most)
                if lo == 0:  # (hi's sign never shows: hi − lo is the same, or ±0 ≤ 0)
                    lo = _first_equal(values, lo)
                span = hi - lo
                if span > 0:
                    mode = 0
    if mode == 0 and first and total.ctypes.data == values.ctypes.data:
        _in_place(total, lo, span, weight, scale)
    else:
        _terms(total, values, lo, span, weight, mode, first, scale)


@numba.njit(cache=True, nogil=True)
def blend_rows(
    total: np.ndarray,
    values: np.ndarray,
    weight: np.float32,
    normalise: bool,
    first: bool,
    scale: np.float32,
) -> None:  # pragma: no cover - compiled
    """:func:`blend_row` of every row: ``total[r] (+)= weight · minmax(values[r])`` in place.
    ``values`` is ``(b, n)``, or one static ``(1, n)`` row for every user. ``scale > 0``: this
    is the last term, so each row is then rounded to ``10^d`` (``scale``) in the same pass."""
    shared = values.shape[0] == 1 and total.shape[0] > 1
    for r in range(total.shape[0]):
        blend_row(total[r], values[0] if shared else values[r], weight, normalise, first, scale)


@numba.njit(cache=True, nogil=True)
def _better(v: float, i: int, u: float, j: int) -> bool:  # pragma: no cover - compiled
    """``(v, i)`` ranks before ``(u, j)``: the higher score, on ties the lower index."""
    return v > u or (v == u and i < j)


@numba.njit(cache=True, nogil=True)
def top(
    ranked: np.ndarray, width: int, items: np.ndarray, values: np.ndarray, groups: np.ndarray
) -> int:  # pragma: no cover - compiled
    """:func:`.rank_kernel._top` (the ``width`` best finite entries, best first, ties by index;
    how many), reading most entries once in SIMD.

    Entry ``i`` is in group ``i mod G`` (``G = len(groups)``); the groups' maxima come from an
    elementwise max of the row's ``G``-long slices. A threshold ``t`` with at least ``width``
    maxima at or above it (bisected between the least and greatest maximum, counting in SIMD,
    until ``width``..``2·width`` are) bounds the row's ``width``-th best entry from below:
    those maxima are ``width`` entries. So only the groups whose maximum reaches ``t`` can
    hold the answer, a few hundred entries kept in a ``(value desc, index asc)`` insertion list.
    Rows with a NaN or ``+inf``, fewer than ``width`` finite maxima, or too short to gain,
    take ``_top`` itself."""
    n = ranked.shape[0]
    g = groups.shape[0]
    if n < 2 * g or g < 4 * width:
        return _top(ranked, width, items, values)
    odd = False
    for i in range(n):
        v = ranked[i]
        odd |= (v != v) | (v == np.inf)
    if odd:
        return _top(ranked, width, items, values)
    groups[:] = ranked[:g]
    start = g
    while start + g <= n:
        chunk = ranked[start : start + g]
        for j in range(g):
            v = chunk[j]
            groups[j] = v if v > groups[j] else groups[j]
        start += g
    tail = ranked[start:]
    for j in range(tail.shape[0]):
        v = tail[j]
        groups[j] = v if v > groups[j] else groups[j]
    # a threshold with at least width maxima at or above it (so at least width entries): the
    # least finite maximum, raised by bisection while width..2·width maxima stay above
    low = np.float32(np.inf)
    high = np.float32(-np.inf)
    finite = 0
    for j in range(g):
        v = groups[j]
        low = v if v < low and v > -np.inf else low
        high = v if v > high else high
        finite += v > -np.inf
    if finite < width:
        return _top(ranked, width, items, values)
    threshold = low
    if finite > 2 * width:
        for _ in range(16):
            middle = low + (high - low) * np.float32(0.5)
            above = 0
            for j in range(g):
                above += groups[j] >= middle
            if above >= width:
                threshold = low = middle
                if above <= 2 * width:
                    break
            else:
                high = middle
    count = 0
    for j in range(g):
        if not groups[j] >= threshold:
            continue
        for i in range(j, n, g):
            v = ranked[i]
            if not v >= threshold:
                continue
            if count == width:
                if not _better(v, i, values[width - 1], items[width - 1]):
                    continue
                k = width - 1
            else:
                k = count
                count += 1
            while k > 0 and _better(v, i, values[k - 1], items[k - 1]):
                values[k] = values[k - 1]
                items[k] = items[k - 1]
                k -= 1
            values[k] = v
            items[k] = i
    return count


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
    out (``-1``: none). ``mask``, ``width``, ``k``, ``lam``, ``cosine`` and ``scale`` are
    :func:`.rank_kernel.rank_row`'s; the candidates come from :func:`top`."""
    items = np.empty(width, dtype=np.int64)
    values = np.empty(width, dtype=np.float32)
    groups = np.empty(_GROUPS, dtype=np.float32)
    picks = np.empty(k, dtype=np.int64)
    diversify = lam > 0 and width > 1 and cosine.shape[0] > 0
    for b in range(scores.shape[0]):
        ranked = scores[b]
        if mask.shape[0]:
            for i in range(ranked.shape[0]):
                ranked[i] = ranked[i] if mask[i] else -np.inf
        row = rows[b]
        if row >= 0:
            for entry in range(indptr[row], indptr[row + 1]):
                ranked[indices[entry]] = -np.inf
        count = top(ranked, width, items, values, groups)
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
