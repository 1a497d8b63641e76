"""Per-user signal vectors over the whole catalogue.

Every signal is a dense ``(b, n)`` float32 matrix for a batch of ``b`` users and ``n`` items;
callers mask and rank it. Histories are int arrays of item indices (canonical order). The request
path scores one user as a batch of one, so each signal is a few numpy calls over precomputed
arrays (flat history entries, row gathers, one ``np.add.at`` / per-user sums): no sparse matrix is
built and nothing loops over items or users. The two BLAS products (CF, fold-in) see a single
user as two identical rows, so a user's scores are bit-identical whatever the batch around them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from recommender.scoring.content_kernel import cosine_profile

_NO_ITEMS = np.zeros(0, dtype=np.int64)  # concatenate() of an empty batch
Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # (rows, items, weights): history_entries


class FlatHistories(Sequence[np.ndarray]):
    """A batch's histories as one flat array: ``histories[u]`` is ``items[bounds[u]:bounds[u +
    1]]`` (a batch gathers them from the CSR arrays at once). :func:`history_entries` of them
    without weights is one sort of ``user·n + item`` keys instead of joining ``b`` arrays again
    and a three-key lexsort: the same arrays."""

    def __init__(self, items: np.ndarray, bounds: np.ndarray) -> None:
        self.items, self.bounds = items, bounds

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, user: int) -> np.ndarray:  # type: ignore[override]
        return self.items[self.bounds[user] : self.bounds[user + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[user] for user in range(len(self)))

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`history_entries` without weights: each (user, item) once, by user then item."""
        lengths = np.diff(self.bounds)
        if not self.items.size:
            return _NO_ITEMS, _NO_ITEMS, np.zeros(0, dtype=np.float64)
        width = int(self.items.max()) + 1
        rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        keys = np.sort(rows * width + self.items)
        keep = _new_user(keys)
        keys = keys[keep] if not keep.all() else keys
        rows, items = np.divmod(keys, width)
        return rows, items, np.ones(keys.size, dtype=np.float64)


def _as_float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def cf_scores(
    user_vectors: np.ndarray, item_factors: np.ndarray, transposed: np.ndarray | None = None
) -> np.ndarray:
    """Dot products of user vectors ``(b, d)`` with item factors ``(n, d)`` -> ``(b, n)``;
    ``transposed``: the same factors as a C-contiguous ``(d, n)`` array, much faster for a few
    rows (:attr:`~recommender.scoring.scorer.ScoringModel.item_factors_t`).

    BLAS multiplies a single row with gemv and several with gemm, whose roundings differ in the
    last bits: one user is multiplied as two identical rows, as in any batch.
    """
    vectors = np.asarray(user_vectors, dtype=np.float32)
    right = item_factors.T if transposed is None else transposed
    if vectors.shape[0] == 1:
        return _as_float32((np.repeat(vectors, 2, axis=0) @ right)[:1])
    return _as_float32(vectors @ right)


def item_gram(item_factors: np.ndarray) -> np.ndarray:
    """``VᵀV`` ``(d, d)``, computed once per model for :func:`fold_in`."""
    v = item_factors.astype(np.float64)
    return v.T @ v


def fold_in(
    histories: Sequence[np.ndarray],
    item_factors: np.ndarray,
    regularization: float,
    confidences: Sequence[np.ndarray] | None = None,
    gram: np.ndarray | None = None,
    inverse: np.ndarray | None = None,
    entries: Entries | None = None,
) -> np.ndarray:
    """Least-squares user vectors for users without a CF row, as ALS computes a user step.

    ``u = (VᵀV + V_Iᵀ (C_I − I) V_I + λI)⁻¹ V_Iᵀ c_I`` where ``I`` is the history and ``c_I`` the
    confidences (1 when not given, which reduces to ridge regression on the history's factors).
    ``inverse``: the precomputed ``(VᵀV + λI)⁻¹`` (:func:`fold_in_inverse`; unit confidences
    only): a user vector is then one product instead of a LAPACK solve per call (0.2 ms of the
    0.33 ms a 64-factor fold-in cost); else the system is built from ``gram``.
    ``entries``: :func:`history_entries` of ``histories`` when the caller already has them.
    Users with an empty history get a zero vector. Returns ``(b, d)`` float32.
    """
    n_factors = item_factors.shape[1]
    if confidences is None and inverse is not None:
        # one user as two identical rows, as in any batch (see cf_scores)
        rhs = _history_sums(histories, item_factors, entries=entries)
        if rhs.shape[0] == 1:
            return _as_float32((np.repeat(rhs, 2, axis=0) @ inverse)[:1])
        return _as_float32(rhs @ inverse)
    base = _system(
        item_gram(item_factors) if gram is None else np.asarray(gram, dtype=np.float64),
        regularization,
    )
    if confidences is None:
        # unit confidences: the system matrix is the same for every user, so one solve serves
        # all; one user is solved as two identical columns, as in any batch (see cf_scores)
        rhs = _history_sums(histories, item_factors, entries=entries)
        if rhs.shape[0] == 1:
            return _as_float32(np.linalg.solve(base, np.repeat(rhs, 2, axis=0).T).T[:1])
        return _as_float32(np.linalg.solve(base, rhs.T).T)
    out = np.zeros((len(histories), n_factors), dtype=np.float32)
    for row, items in enumerate(histories):
        if len(items) == 0:
            continue
        v_i = item_factors[np.asarray(items)].astype(np.float64)
        conf = (
            np.ones(len(items))
            if confidences is None
            else np.asarray(confidences[row], dtype=np.float64)
        )
        a = base + (v_i.T * (conf - 1.0)) @ v_i
        b = v_i.T @ conf
        out[row] = np.linalg.solve(a, b)
    return out


def _system(gram: np.ndarray, regularization: float) -> np.ndarray:
    return np.asarray(gram, dtype=np.float64) + regularization * np.eye(gram.shape[0])


def fold_in_inverse(gram: np.ndarray, regularization: float) -> np.ndarray:
    """``(VᵀV + λI)⁻¹`` ``(d, d)`` float64, computed once per model: symmetric positive definite
    for λ > 0, so its inverse is well conditioned and the unit-confidence fold-in is a product."""
    return np.linalg.inv(_system(gram, regularization))


def recency_weights(histories: Sequence[np.ndarray], decay: float) -> list[np.ndarray]:
    """Per history item ``decay ** age``, age 0 for the newest (last) item: ``[d², d, 1]`` for 3.

    Histories are ordered oldest → newest (evaluation and serving both build them that way). On the
    Hasaki reviews ~44% of held-out items follow the previous item within 24 h, so the newest items
    say most about the next one; ``decay = 1`` weighs all items equally (the unweighted signals).
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"recency decay must be in (0, 1], got {decay!r}")
    return [decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64) for h in histories]


def history_entries(
    histories: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch's histories as flat ``(rows, items, weights)``: each (user, item) once, keeping
    an item's largest weight, sorted by user then item (the order a sparse history matrix stores).

    A handful of numpy calls whatever the batch size; every signal below starts from it. One
    user without weights (a request) is one sort of the history: the same arrays.
    """
    if len(histories) == 1 and weights is None:
        items = np.sort(np.asarray(histories[0], dtype=np.int64))
        if items.size > 1 and not (items[1:] != items[:-1]).all():
            items = items[_new_user(items)]
        return np.zeros(items.size, dtype=np.int64), items, np.ones(items.size, dtype=np.float64)
    if weights is None and isinstance(histories, FlatHistories):
        return histories.entries()
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    rows = np.repeat(np.arange(len(histories), dtype=np.int64), lengths)
    items = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if rows.size
        else _NO_ITEMS
    )
    if weights is None:
        w = np.ones(rows.size, dtype=np.float64)
    else:
        w = (
            np.concatenate([np.asarray(x, dtype=np.float64) for x in weights])
            if rows.size
            else np.zeros(0, dtype=np.float64)
        )
    order = np.lexsort((-w, items, rows))  # per (row, item) the largest weight first
    rows, items, w = rows[order], items[order], w[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    return rows[first], items[first], w[first]


def _new_user(rows: np.ndarray) -> np.ndarray:
    """``(m,)`` bool: where a sorted ``rows`` array starts a new user."""
    new = np.ones(rows.size, dtype=bool)
    new[1:] = rows[1:] != rows[:-1]
    return new


def _user_sums(
    matrix: np.ndarray, items: np.ndarray, w: np.ndarray | None, starts: np.ndarray
) -> np.ndarray:
    """``(u, k)`` float64: per user, ``Σ w_i · matrix[i]`` over their entries (``items[starts[u]:
    starts[u + 1]]``), added in entry order.

    One user: one gather and one ``sum``. A batch: one vectorised gather-and-add per history
    *position* (the j-th entry of every user that has one), several times faster than gathering
    every row first and ``np.add.reduceat`` along axis 0, with the same order of additions.
    """

    def rows(entries: np.ndarray) -> np.ndarray:
        gathered = matrix[items[entries]]
        return gathered if w is None else gathered * w[entries, None]

    if len(starts) == 1:  # every entry, in order
        gathered = matrix[items] if w is None else matrix[items] * w[:, None]
        if len(items) == 1:  # one entry (most cold users): its row is the sum
            return gathered.astype(np.float64)
        return gathered.astype(np.float64).sum(axis=0, keepdims=True)
    lengths = np.diff(np.append(starts, len(items)))
    longest_first = np.argsort(-lengths, kind="stable")  # users with a j-th entry: a prefix
    starts, lengths = starts[longest_first], lengths[longest_first]
    sums = rows(starts).astype(np.float64)
    for position in range(1, int(lengths[0])):
        having = int(np.count_nonzero(lengths > position))
        sums[:having] += rows(starts[:having] + position)
    out = np.empty_like(sums)
    out[longest_first] = sums
    return out


def _history_sums(
    histories: Sequence[np.ndarray],
    matrix: np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
    entries: Entries | None = None,
) -> np.ndarray:
    """``(b, k)`` float64: per user, the (``weights``-weighted) sum of ``matrix`` rows over the
    history's distinct items (a repeated item keeps its largest weight): one gather and a
    per-user sum for the whole batch."""
    rows, items, w = history_entries(histories, weights) if entries is None else entries
    if len(histories) == 1 and rows.size:
        return _user_sums(matrix, items, None if weights is None else w, np.zeros(1, np.int64))
    out = np.zeros((len(histories), matrix.shape[1]), dtype=np.float64)
    if not rows.size:
        return out
    starts = np.flatnonzero(_new_user(rows))
    out[rows[starts]] = _user_sums(matrix, items, None if weights is None else w, starts)
    return out


def item_similarity_scores(
    histories: Sequence[np.ndarray],
    similarity: sp.csr_matrix,
    weights: Sequence[np.ndarray] | None = None,
    entries: Entries | None = None,
) -> np.ndarray:
    """Sum of item-kNN similarities from each history item (times its weight, e.g.
    :func:`recency_weights`): ``(b, n)``; empty history -> zeros.

    The rows of the history items are gathered straight from the CSR arrays and added with one
    ``np.add.at`` in (user, item) order: the float32 products and sums a sparse
    ``history @ similarity`` computes, without building a matrix per request.
    """
    b, n = len(histories), similarity.shape[1]
    out = np.zeros(b * n, dtype=np.float32)
    rows, items, w = history_entries(histories, weights) if entries is None else entries
    if b == 1 and rows.size == 1:  # one user, one item: its CSR row, added as below
        start, end = similarity.indptr[items[0] : items[0] + 2]
        values = similarity.data[start:end]
        if weights is not None:
            values = values * w.astype(np.float32)
        np.add.at(out, similarity.indices[start:end], values)
    elif rows.size:
        targets, values = similarity_entries(similarity, (rows, items, w), weights is not None)
        np.add.at(out, targets, values)
    return out.reshape(b, n)


def similarity_entries(
    similarity: sp.csr_matrix, entries: Entries, weighted: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR entries of the history items, flat in (user, item) order, gathered straight from
    the CSR arrays: ``user·n + neighbour`` and the similarity (times the history item's weight
    when ``weighted``), as float32 products in the order a sparse ``history @ similarity`` adds
    them."""
    rows, items, w = entries
    indptr = similarity.indptr
    starts = indptr[items]
    lengths = indptr[items + 1] - starts
    offsets = starts - np.cumsum(lengths) + lengths  # CSR start − flat start per item
    positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(offsets, lengths)
    values = similarity.data[positions]
    if weighted:
        values = values * np.repeat(w.astype(np.float32), lengths)
    targets = np.repeat(rows * similarity.shape[1], lengths) + similarity.indices[positions]
    return targets, values


def content_scores(
    histories: Sequence[np.ndarray],
    embeddings: np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
    cosine: np.ndarray | None = None,
    entries: Entries | None = None,
) -> np.ndarray:
    """Cosine of every item to the (``weights``-weighted) mean of the history's L2-normalised
    embeddings: ``(b, n)``.

    With the precomputed item×item ``cosine`` ``(n, n)`` the profile is never formed:
    ``cos(p, e_k) = Σ w_i cos(e_i, e_k) / |p|`` and ``|p|² = Σ_i w_i Σ_j w_j cos(e_i, e_j)``, a
    gather of the history's rows (``h × n``) instead of a ``(b, e) @ (e, n)`` product.
    """
    if cosine is None:
        profiles = _history_sums(histories, embeddings, weights, entries).astype(np.float32)
        norms = np.linalg.norm(profiles, axis=1)
        has = norms > 0
        profiles[has] /= norms[has, None]
        if profiles.shape[0] == 1:  # as two rows, like cf_scores
            return _as_float32((np.repeat(profiles, 2, axis=0) @ embeddings.T)[:1])
        return _as_float32(profiles @ embeddings.T)
    rows, items, w = history_entries(histories, weights) if entries is None else entries
    if len(histories) == 1 and rows.size:  # one user: the arithmetic below, in one pass
        weighted = weights is not None
        return cosine_profile(cosine, items, np.asarray(w, dtype=np.float64), weighted)[None, :]
    out = np.zeros((len(histories), cosine.shape[1]), dtype=np.float32)
    if not rows.size:
        return out
    new_user = _new_user(rows)
    starts, group = np.flatnonzero(new_user), np.cumsum(new_user) - 1
    sums = _user_sums(cosine, items, None if weights is None else w, starts)  # p · e_k
    squared = np.add.reduceat(w * sums[group, items], starts)  # |p|²
    has = squared > 0
    sums[has] /= np.sqrt(squared[has])[:, None]
    sums[~has] = 0.0
    out[rows[starts]] = sums
    return out
