"""EASE's CF signal: a user's scores are ``x_u B``, a weighted sum of ``B``'s history rows.

Numpy only (a row gather and a vector-matrix product per user, no scipy construction), so it is
the same for a request and for an evaluation batch, and the same for trainable and cold users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.scoring.signals import _history_sums


def ease_scores(
    histories: Sequence[np.ndarray],
    item_item: np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
    n_items: int | None = None,
) -> np.ndarray:
    """``(b, n_items)`` float32: per user the sum of ``item_item`` rows over the distinct history
    items (times ``weights``, e.g. recency weights); an empty history scores zeros.

    ``n_items`` (default ``B``'s size) may exceed ``B``'s: products added after the build (the
    live catalogue) have no ``B`` rows or columns, so they add nothing to a history and score 0.
    """
    base = item_item.shape[0]
    n = base if n_items is None else int(n_items)
    if n != base:
        histories, weights = _known_items(histories, weights, base)
    scores = _history_sums(histories, item_item, weights)
    if n != base:
        scores = np.concatenate([scores, np.zeros((scores.shape[0], n - base), scores.dtype)], 1)
    return np.ascontiguousarray(scores, dtype=np.float32)


def _known_items(
    histories: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None, base: int
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Histories (and their weights) without the items at or above ``base`` (no ``B`` rows)."""
    keeps = [np.asarray(h) < base for h in histories]
    kept = [np.asarray(h)[k] for h, k in zip(histories, keeps, strict=True)]
    if weights is None:
        return kept, None
    return kept, [np.asarray(w)[k] for w, k in zip(weights, keeps, strict=True)]
