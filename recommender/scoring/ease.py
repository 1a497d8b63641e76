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
) -> np.ndarray:
    """``(b, n)`` float32: per user the sum of ``item_item`` rows over the distinct history items
    (times ``weights``, e.g. recency weights); an empty history scores zeros."""
    return np.ascontiguousarray(_history_sums(histories, item_item, weights), dtype=np.float32)
