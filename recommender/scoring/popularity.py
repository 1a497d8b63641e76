"""Item-level static signals: popularity and quality, both scaled to [0, 1]."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def popularity_scores(user_items: sp.csr_matrix) -> np.ndarray:
    """``log1p(#users who interacted)`` per item, divided by its maximum -> ``(n,)`` float32.

    The log keeps the long tail distinguishable instead of squashing everything below the top few.
    """
    binary = sp.csr_matrix(user_items, copy=True)
    binary.sum_duplicates()
    counts = np.diff(binary.tocsc().indptr).astype(np.float64)
    scores = np.log1p(counts)
    top = scores.max() if scores.size else 0.0
    return (scores / top if top > 0 else scores).astype(np.float32)


def quality_scores(
    avg_rating: np.ndarray, num_ratings: np.ndarray, prior_count: float = 20.0
) -> np.ndarray:
    """Bayesian-smoothed rating mapped from [1, 5] to [0, 1]: ``(n,)`` float32.

    ``(r̄·n + μ·m) / (n + m)`` with ``μ`` the catalogue's mean rating and ``m = prior_count``, so a
    single 5★ review does not outrank a thousand 4.8★ ones. Missing ratings count as the prior.
    """
    ratings = np.asarray(avg_rating, dtype=np.float64)
    counts = np.nan_to_num(np.asarray(num_ratings, dtype=np.float64), nan=0.0).clip(min=0)
    valid = np.isfinite(ratings) & (counts > 0)
    mean = float(np.average(ratings[valid], weights=counts[valid])) if valid.any() else 3.0
    ratings = np.where(valid, ratings, mean)
    smoothed = (ratings * counts + mean * prior_count) / (counts + prior_count)
    return ((smoothed - 1.0) / 4.0).clip(0.0, 1.0).astype(np.float32)
