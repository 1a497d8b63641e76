"""Ranking metrics over top-K lists, vectorised over users.

Every function takes ``top_k`` ``(b, K)`` int item indices (best first) and ``targets``: one array
of relevant item indices per user (leave-last-positive-out gives exactly one, so HR@K = Recall@K).
Per-user values are returned so that callers can bootstrap confidence intervals; the reported
number is their mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hits_matrix(top_k: np.ndarray, targets: Sequence[np.ndarray]) -> np.ndarray:
    """``(b, K)`` bool: ``hits[u, r]`` is True when the item at rank ``r`` is relevant for ``u``."""
    top_k = np.asarray(top_k)
    if len(targets) != top_k.shape[0]:
        raise ValueError(f"{top_k.shape[0]} top-K rows but {len(targets)} target lists")
    widest = max((len(t) for t in targets), default=0)
    padded = np.full((len(targets), max(widest, 1)), -1, dtype=np.int64)
    for row, items in enumerate(targets):
        padded[row, : len(items)] = items
    return (top_k[:, :, None] == padded[:, None, :]).any(axis=2)


def _n_relevant(targets: Sequence[np.ndarray]) -> np.ndarray:
    return np.fromiter((len(t) for t in targets), dtype=np.float64, count=len(targets))


def hit_rate(hits: np.ndarray, k: int) -> np.ndarray:
    """HR@k per user: 1 when any relevant item is in the first ``k``."""
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def recall(hits: np.ndarray, k: int, targets: Sequence[np.ndarray]) -> np.ndarray:
    """Recall@k per user: relevant items found in the first ``k`` / relevant items."""
    n_rel = _n_relevant(targets)
    return np.divide(hits[:, :k].sum(axis=1), n_rel, out=np.zeros_like(n_rel), where=n_rel > 0)


def ndcg(hits: np.ndarray, k: int, targets: Sequence[np.ndarray]) -> np.ndarray:
    """NDCG@k per user, binary gains: ``DCG = Σ_r hit_r / log2(r + 2)``, ``IDCG`` the best DCG."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    n_ideal = np.minimum(_n_relevant(targets), k).astype(np.int64)
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[n_ideal]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def mrr(hits: np.ndarray, k: int) -> np.ndarray:
    """MRR@k per user: ``1 / (rank of the first relevant item)`` (1-based), 0 when none in ``k``."""
    window = hits[:, :k]
    found = window.any(axis=1)
    first = window.argmax(axis=1)
    return np.where(found, 1.0 / (first + 1.0), 0.0)


def coverage(top_k: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: share of the ``n_items`` products that appear in any top-K list."""
    if n_items <= 0:
        return 0.0
    return float(np.unique(np.asarray(top_k)).size / n_items)


def intra_list_diversity(top_k: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Per-user mean pairwise cosine distance ``1 − cos`` among the recommended items' embeddings.

    ``embeddings`` ``(n, e)``; rows are L2-normalised here. Lists shorter than 2 score 0.
    """
    top_k = np.asarray(top_k)
    k = top_k.shape[1]
    if k < 2:
        return np.zeros(top_k.shape[0])
    emb = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
    # Σ_{r≠s} cos(v_r, v_s) = |Σ_r v_r|² − Σ_r |v_r|²: O(b·K·e) instead of the (b, K, K) Gram
    total = np.zeros((top_k.shape[0], emb.shape[1]))
    for rank in range(k):
        total += emb[top_k[:, rank]]
    gram_sum = np.einsum("be,be->b", total, total)
    self_sum = (norms[top_k, 0] > 0).sum(axis=1).astype(np.float64)  # unit rows (zero: 0)
    mean_cos = (gram_sum - self_sum) / (k * (k - 1))
    return 1.0 - mean_cos


def bootstrap_interval(
    values: np.ndarray, samples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-user ``values`` (users resampled).

    ``samples == 0`` or fewer than 2 users gives ``(mean, mean)``.
    """
    rows = np.asarray(values, dtype=np.float64).reshape(1, -1)
    return bootstrap_intervals(rows, samples, seed, level)[0]


def bootstrap_intervals(
    values: np.ndarray, samples: int, seed: int, level: float = 0.95
) -> list[tuple[float, float]]:
    """:func:`bootstrap_interval` of each row of ``values`` ``(m, n)`` (m metrics of the same n
    users), drawing the resampled users once for all rows: each row's interval is exactly the
    one :func:`bootstrap_interval` gives it alone, at a fraction of the cost."""
    values = np.asarray(values, dtype=np.float64)
    m, n = values.shape
    if n == 0:
        return [(0.0, 0.0)] * m
    mean = values.mean(axis=1)
    if samples <= 0 or n < 2:
        return [(float(x), float(x)) for x in mean]
    rng = np.random.default_rng(seed)
    means = np.empty((m, samples))
    chunk = max(1, 2_000_000 // n)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for row in range(m):
            means[row, start:stop] = values[row][idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    bounds = np.quantile(means, [tail, 1.0 - tail], axis=1)
    return [(float(low), float(high)) for low, high in bounds.T]
