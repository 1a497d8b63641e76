"""Item-kNN: cosine similarity of items over who interacted with them.

A baseline and a serving signal: it carries the cold path (users with one or two known items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_item_knn(user_items: sp.csr_matrix, neighbours: int, shrinkage: float) -> sp.csr_matrix:
    """Item×item similarity ``(n, n)`` float32 CSR, top ``neighbours`` per row, zero diagonal.

    ``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage)`` on binarised interactions; the
    shrinkage damps pairs seen together only once or twice.
    """
    if neighbours < 1:
        raise ValueError("neighbours must be >= 1")
    binary = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    n_items = binary.shape[1]
    co = (binary.T @ binary).tocsr().astype(np.float32)
    counts = np.asarray(co.diagonal(), dtype=np.float32)
    co.setdiag(0.0)
    co.eliminate_zeros()
    co = co.tocoo()
    denom = np.sqrt(counts[co.row] * counts[co.col]) + np.float32(shrinkage)
    values = (co.data / denom).astype(np.float32)
    sim = sp.csr_matrix((values, (co.row, co.col)), shape=(n_items, n_items))
    return _top_k_per_row(sim, neighbours)


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
