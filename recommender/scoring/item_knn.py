"""Item-kNN: cosine similarity of items over who interacted with them.

A baseline and a serving signal: it carries the cold path (users with one or two known items).
Optionally, pairs a user took in the same session (a gap-based run of interactions, see
:func:`session_items`) count extra: a "basket" signal on top of plain co-occurrence.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_item_knn(
    user_items: sp.csr_matrix,
    neighbours: int,
    shrinkage: float,
    sessions: sp.csr_matrix | None = None,
    session_weight: float = 0.0,
) -> sp.csr_matrix:
    """Item×item similarity ``(n, n)`` float32 CSR, top ``neighbours`` per row, zero diagonal.

    ``sim(i, j) = (|U_i ∩ U_j| + w |S_i ∩ S_j|) / (sqrt(|U_i| |U_j|) + shrinkage)`` on binarised
    interactions, where ``S_i`` are the sessions (rows of ``sessions``, sessions × items, e.g. from
    :func:`session_items`) containing ``i`` and ``w = session_weight``; ``w = 0`` or no
    ``sessions`` is plain shrunk cosine. The shrinkage damps pairs seen together only once or twice.
    """
    if neighbours < 1:
        raise ValueError("neighbours must be >= 1")
    if session_weight < 0:
        raise ValueError("session_weight must be >= 0")
    binary = _binary(user_items)
    n_items = binary.shape[1]
    co = (binary.T @ binary).tocsr().astype(np.float32)
    counts = np.asarray(co.diagonal(), dtype=np.float32)
    if sessions is not None and session_weight > 0:
        if sessions.shape[1] != n_items:
            raise ValueError(f"sessions has {sessions.shape[1]} item columns, expected {n_items}")
        basket = _binary(sessions)
        co = (co + np.float32(session_weight) * (basket.T @ basket)).tocsr().astype(np.float32)
    co = co.tocoo()
    # off the diagonal (no self-similarity) and non-zero; dropping entries keeps the structure
    # fixed, where setdiag(0) on an unstored diagonal entry would insert it
    keep = (co.row != co.col) & (co.data != 0)
    row, col = co.row[keep], co.col[keep]
    denom = np.sqrt(counts[row] * counts[col]) + np.float32(shrinkage)
    values = (co.data[keep] / denom).astype(np.float32)
    sim = sp.csr_matrix((values, (row, col)), shape=(n_items, n_items))
    return _top_k_per_row(sim, neighbours)


def session_items(
    users: np.ndarray,
    items: np.ndarray,
    seconds: np.ndarray,
    n_items: int,
    gap_seconds: float,
) -> sp.csr_matrix:
    """Binary sessions × items CSR of interactions ``(users[k], items[k], seconds[k])``.

    Each (user, item) pair counts once, at its earliest time. A user's interactions in time order
    form one session until the gap to the previous one exceeds ``gap_seconds`` (sessions chain:
    A, B 20 h later and C 20 h after B share a 24 h session). Evaluation and serving both call
    this, so the served item-kNN is the evaluated one.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    seconds = np.asarray(seconds, dtype=np.int64)
    if not users.size:
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    order = np.lexsort((items, seconds, users))
    users, items, seconds = users[order], items[order], seconds[order]
    _, first = np.unique(users * n_items + items, return_index=True)
    first.sort()
    users, items, seconds = users[first], items[first], seconds[first]
    new = np.ones(users.size, dtype=bool)
    new[1:] = (users[1:] != users[:-1]) | (np.diff(seconds) > gap_seconds)
    session = np.cumsum(new) - 1
    values = np.ones(users.size, dtype=np.float32)
    return sp.csr_matrix(
        (values, (session, items)), shape=(int(session[-1]) + 1, n_items), dtype=np.float32
    )


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    return binary


def _top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        if start == end:
            continue
        data = matrix.data[start:end]
        idx = matrix.indices[start:end]
        if len(data) > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), i, dtype=np.int32))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=matrix.shape,
        dtype=np.float32,
    )
