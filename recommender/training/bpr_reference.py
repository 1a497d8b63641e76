"""The pre-numba uniform-negative BPR (numpy mini-batches), kept as the reference.

``scripts/benchmark_bpr.py`` and the tests compare :mod:`recommender.training.bpr_uniform` with it
(speed, validation NDCG@10). Serving and training never call it: at ~4 s per epoch on 100K
interactions it is ~30 minutes per build.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.config.training import BPRParams

_BATCH_SIZE = 1024  # summed mini-batch updates
_RESAMPLE_ROUNDS = 5


def fit_uniform_minibatch(
    binary: sp.csr_matrix, params: BPRParams
) -> tuple[np.ndarray, np.ndarray]:
    """Mini-batch SGD on ``ln σ(x_ui − x_uj)`` with ``j`` uniform over the catalogue."""
    rng = np.random.default_rng(params.random_state)
    n_users, n_items = binary.shape
    f = params.factors
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(binary.indptr))
    items = binary.indices.astype(np.int64)
    known = np.sort(users * n_items + items)
    p = (rng.random((n_users, f)) - 0.5) / f
    q = (rng.random((n_items, f)) - 0.5) / f
    bias = np.zeros(n_items)
    lr, reg = params.learning_rate, params.regularization
    for _ in range(params.iterations if users.size else 0):
        order = rng.permutation(users.size)
        for begin in range(0, order.size, _BATCH_SIZE):
            batch = order[begin : begin + _BATCH_SIZE]
            u, i = users[batch], items[batch]
            j = _sample_negatives(rng, u, n_items, known)
            pu, qi, qj = p[u], q[i], q[j]
            x = np.einsum("bf,bf->b", pu, qi - qj) + bias[i] - bias[j]
            z = 1.0 / (1.0 + np.exp(np.clip(x, -35.0, 35.0)))  # σ(−x) = d ln σ(x) / dx
            _scatter_add(p, u, lr * (z[:, None] * (qi - qj) - reg * pu))
            _scatter_add(
                q,
                np.concatenate([i, j]),
                lr * np.vstack([z[:, None] * pu - reg * qi, -z[:, None] * pu - reg * qj]),
            )
            bias += lr * np.bincount(
                np.concatenate([i, j]),
                weights=np.concatenate([z - reg * bias[i], -z - reg * bias[j]]),
                minlength=n_items,
            )
    user_factors = np.hstack([p, np.ones((n_users, 1))]).astype(np.float32)
    item_factors = np.hstack([q, bias[:, None]]).astype(np.float32)
    return user_factors, item_factors


def _scatter_add(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``target[rows] += values`` summing repeated rows (``np.add.at`` is far slower)."""
    unique, inverse = np.unique(rows, return_inverse=True)
    summed = (
        sp.csr_matrix(
            (np.ones(rows.size), (inverse, np.arange(rows.size))), shape=(unique.size, rows.size)
        )
        @ values
    )
    target[unique] += summed


def _sample_negatives(
    rng: np.random.Generator, users: np.ndarray, n_items: int, known: np.ndarray
) -> np.ndarray:
    negatives = rng.integers(0, n_items, size=users.size)
    for _ in range(_RESAMPLE_ROUNDS):
        keys = users * n_items + negatives
        pos = np.searchsorted(known, keys).clip(max=max(known.size - 1, 0))
        clash = known[pos] == keys if known.size else np.zeros(users.size, dtype=bool)
        if not clash.any():
            break
        negatives[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return negatives
