"""One user's content signal over a precomputed item×item cosine, compiled (numba).

:func:`~recommender.scoring.signals.content_scores` of a single user gathers the history
items' cosine rows, sums them in float64, takes the profile's norm from those sums and
divides: eight numpy calls and two ``(h, n)`` temporaries. Here it is one pass that adds the
rows in history-entry order, bit for bit the numpy arithmetic (pinned in
``tests/recommender/scoring/test_single_user_paths.py``): each row's float32 values widened
to float64 (times the entry's weight when weighted), added row after row from the first
(``sum(axis=0)`` over rows adds them in order), ``|p|² = Σ w_i · sums[item_i]`` in entry order
(``np.add.reduceat``), and ``float32(sums / sqrt(|p|²))``, zeros when ``|p|² ≤ 0``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cosine_profile(
    cosine: np.ndarray, items: np.ndarray, weights: np.ndarray, weighted: bool
) -> np.ndarray:  # pragma: no cover - compiled
    """``(n,)`` float32 cosine of every item to the user's profile: ``items`` (the history's
    entries, at least one), ``weights`` their weights (used for the rows when ``weighted``,
    and for the norm always: ones without weights)."""
    n = cosine.shape[1]
    sums = np.empty(n, dtype=np.float64)
    for k in range(items.shape[0]):
        row = cosine[items[k]]
        scale = weights[k]
        for j in range(n):
            value = np.float64(row[j])
            if weighted:
                value = value * scale
            sums[j] = value if k == 0 else sums[j] + value
    squared = weights[0] * sums[items[0]]
    for k in range(1, items.shape[0]):
        squared += weights[k] * sums[items[k]]
    out = np.zeros(n, dtype=np.float32)
    if squared > 0:
        norm = np.sqrt(squared)
        for j in range(n):
            out[j] = np.float32(sums[j] / norm)
    return out


def warm_up(cosine: np.ndarray | None) -> None:
    """Compile (or load from numba's cache) :func:`cosine_profile` for a model's ``cosine``
    and a history slice, at load time rather than in the first request."""
    if cosine is None or not cosine.shape[0]:
        return
    one = np.zeros(1, dtype=np.int64)
    cosine_profile(cosine, one, np.ones(1, dtype=np.float64), False)
