"""Per-user signal vectors over the whole catalogue.

The catalogue is small (1–3K products), so every signal is a dense ``(b, n)`` float32 matrix for a
batch of ``b`` users and ``n`` items; callers mask and rank it. Histories are int arrays of item
indices (canonical order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

_NO_ITEMS = np.zeros(0, dtype=np.int64)  # concatenate() of an empty batch


def _as_float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def cf_scores(user_vectors: np.ndarray, item_factors: np.ndarray) -> np.ndarray:
    """Dot products of user vectors ``(b, d)`` with item factors ``(n, d)`` -> ``(b, n)``."""
    return _as_float32(np.asarray(user_vectors, dtype=np.float32) @ item_factors.T)


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
) -> np.ndarray:
    """Least-squares user vectors for users without a CF row, as ALS computes a user step.

    ``u = (VᵀV + V_Iᵀ (C_I − I) V_I + λI)⁻¹ V_Iᵀ c_I`` where ``I`` is the history and ``c_I`` the
    confidences (1 when not given, which reduces to ridge regression on the history's factors).
    Users with an empty history get a zero vector. Returns ``(b, d)`` float32.
    """
    n_factors = item_factors.shape[1]
    base = item_gram(item_factors) if gram is None else np.asarray(gram, dtype=np.float64)
    base = base + regularization * np.eye(n_factors)
    if confidences is None:
        # unit confidences: the system matrix is the same for every user, so one solve serves all
        rhs = _history_sums(histories, item_factors)
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


def recency_weights(histories: Sequence[np.ndarray], decay: float) -> list[np.ndarray]:
    """Per history item ``decay ** age``, age 0 for the newest (last) item: ``[d², d, 1]`` for 3.

    Histories are ordered oldest → newest (evaluation and serving both build them that way). On the
    Hasaki reviews ~44% of held-out items follow the previous item within 24 h, so the newest items
    say most about the next one; ``decay = 1`` weighs all items equally (the unweighted signals).
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"recency decay must be in (0, 1], got {decay!r}")
    return [decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64) for h in histories]


def _history_sums(
    histories: Sequence[np.ndarray],
    matrix: np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """``(b, k)`` float64: per user, the (``weights``-weighted) sum of ``matrix`` rows over the
    history's distinct items (a repeated item keeps its largest weight), as
    ``_history_matrix(...) @ matrix`` computes it.

    A plain loop on purpose: a request scores one user, and building a scipy sparse matrix costs
    more than the arithmetic; each user's sum is also independent of the batch around it.
    """
    out = np.zeros((len(histories), matrix.shape[1]), dtype=np.float64)
    for row, history in enumerate(histories):
        if len(history) == 0:
            continue
        items = np.asarray(history, dtype=np.int64)
        w = np.ones(len(items)) if weights is None else np.asarray(weights[row], dtype=np.float64)
        if len(items) > 1 and len(np.unique(items)) < len(items):
            order = np.lexsort((-w, items))  # per item its largest weight first
            items, w = items[order], w[order]
            first = np.ones(len(items), dtype=bool)
            first[1:] = items[1:] != items[:-1]
            items, w = items[first], w[first]
        out[row] = w @ matrix[items].astype(np.float64)
    return out


def _history_matrix(
    histories: Sequence[np.ndarray],
    n_items: int,
    weights: Sequence[np.ndarray] | None = None,
) -> sp.csr_matrix:
    """``(b, n)`` history indicator (1 per item) or, with ``weights``, each item's weight (an item
    repeated in a history keeps its largest weight)."""
    if weights is not None:
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories] or [_NO_ITEMS])
        data = np.concatenate(
            [np.asarray(w, dtype=np.float64) for w in weights] or [_NO_ITEMS.astype(np.float64)]
        )
        order = np.lexsort((-data, cols, rows))  # per (row, col) the largest weight first
        rows, cols, data = rows[order], cols[order].astype(np.int64), data[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return sp.csr_matrix(
            (data[first].astype(np.float32), (rows[first], cols[first])),
            shape=(len(histories), n_items),
        )
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    indices = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if indptr[-1]
        else np.zeros(0, dtype=np.int64)
    )
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(histories), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def item_similarity_scores(
    histories: Sequence[np.ndarray],
    similarity: sp.csr_matrix,
    weights: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Sum of item-kNN similarities from each history item (times its weight, e.g.
    :func:`recency_weights`): ``(b, n)``; empty history -> zeros."""
    h = _history_matrix(histories, similarity.shape[0], weights)
    return _as_float32((h @ similarity).toarray())


def content_scores(
    histories: Sequence[np.ndarray],
    embeddings: np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Cosine of every item to the (``weights``-weighted) mean of the history's L2-normalised
    embeddings: ``(b, n)``."""
    profiles = _history_sums(histories, embeddings, weights).astype(np.float32)
    norms = np.linalg.norm(profiles, axis=1)
    has = norms > 0
    profiles[has] /= norms[has, None]
    return _as_float32(profiles @ embeddings.T)
