"""Hybrid weights per request, MMR diversity over embeddings, and the per-item score breakdown.

The hybrid itself (Σ weight × normalised signal) is :func:`recommender.scoring.score_users`; this
module decides *which* weights a request uses and re-orders the best candidates for diversity:

``MMR(i) = (1 − λ)·rel(i) − λ·max_{j ∈ selected} cos(e_i, e_j)``, with ``rel`` min-max scaled over
each user's candidates so λ weighs comparable quantities. λ = 0 keeps the relevance order.
Everything works on a batch ``(b, C)`` at once, so a single request and a batch rank a user by
the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from recommender import vocabulary as V
from recommender.scoring.hybrid import HybridConfig, validate_weights

# signals a segment can have: unknown users have no history, so only the static ones
_AVAILABLE = {
    V.SEGMENT_TRAINABLE: frozenset(V.SIGNALS),
    V.SEGMENT_COLD: frozenset(V.SIGNALS),
    V.SEGMENT_UNKNOWN: frozenset({V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY}),
}


def check_weights(weights: Mapping[str, float] | None) -> dict[str, float] | None:
    """Validate per-request ``rerank_weights`` (known signals, finite, ≥ 0, not all zero).

    Raises InvalidRequestError naming the bad key; ``None`` means "use the model's defaults".
    """
    return None if weights is None else validate_weights(weights)


def segment_weights(
    hybrid: HybridConfig, segment: str, requested: Mapping[str, float] | None
) -> tuple[dict[str, float], bool]:
    """The weights scoring ``segment`` under a request, and whether they are the defaults.

    Requested weights are restricted to the signals the segment has; when none of them applies
    (e.g. ``{"cf": 1}`` for an unknown user) the segment's defaults are used, so every user still
    gets a meaningful ranking.
    """
    default = hybrid.for_segment(segment)
    if requested is None:
        return default, True
    usable = {k: w for k, w in requested.items() if k in _AVAILABLE[segment] and w > 0}
    if not usable:
        return default, True
    return usable, usable == {k: w for k, w in default.items() if w > 0}


def candidate_similarity(
    candidates: np.ndarray, embeddings: np.ndarray | None, cosine: np.ndarray | None
) -> np.ndarray:
    """``(b, C, C)`` cosine between each row's candidates: gathered from the precomputed
    ``(n, n)`` ``cosine`` when there is one, else from the embeddings (batched matmul)."""
    if cosine is not None:
        n = cosine.shape[0]
        return np.take(cosine.reshape(-1), candidates[:, :, None] * n + candidates[:, None, :])
    if embeddings is None:
        raise ValueError("candidate_similarity needs the embeddings or their cosine")
    vectors = embeddings[candidates]
    return vectors @ vectors.transpose(0, 2, 1)


def mmr_order(
    relevance: np.ndarray, sims: np.ndarray | None, k: int, diversity: float
) -> np.ndarray:
    """Greedy MMR selection of ``k`` of each row's candidates.

    Args:
        relevance: ``(b, C)`` candidate scores, best first per row; ``-inf`` marks no candidate.
        sims: ``(b, C, C)`` cosine between candidates (:func:`candidate_similarity`); ``None``
            keeps the relevance order.
        k: items to select per row.
        diversity: λ in [0, 1].

    Returns:
        ``(b, min(k, C))`` positions into the candidate axis; ``-1`` where a row ran out.
    """
    b, c = relevance.shape
    k = min(k, c)
    valid = np.isfinite(relevance)
    if sims is None or diversity <= 0 or c <= 1:
        order = np.tile(np.arange(k), (b, 1))
        order[~valid[:, :k]] = -1
        return order
    lam = np.float32(diversity)
    if b == 1:  # the same float32 arithmetic on 1-D views, with a third of the numpy calls
        return _mmr_one(relevance[0], valid[0], sims[0], k, lam)[None, :]
    block = sims
    return _mmr_batch(relevance, valid, k, lam, lambda rows, pick: block[rows, pick])


def _mmr_batch(
    relevance: np.ndarray,
    valid: np.ndarray,
    k: int,
    lam: np.float32,
    similar_to: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """:func:`mmr_order`'s greedy loop over ``b`` rows; ``similar_to(rows, pick)`` is ``(b, C)``:
    each row's cosine of its picked candidate with every candidate (read only for the picks a
    later step needs)."""
    b, c = relevance.shape
    lo = np.where(valid, relevance, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, relevance, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    # (1 − λ)·rel, with -inf for taken and missing candidates
    gain = np.where(valid, (1 - lam) * (relevance - lo) / span, -np.inf).astype(np.float32)
    penalty = np.zeros((b, c), dtype=np.float32)  # λ · max similarity to the selected items
    rows = np.arange(b)
    order = np.full((b, k), -1, dtype=np.int64)
    for step in range(k):
        pick = np.argmax(gain - penalty, axis=1)
        has = np.isfinite(gain[rows, pick])
        order[:, step] = np.where(has, pick, -1)
        gain[rows, pick] = -np.inf
        if step + 1 < k:
            np.maximum(penalty, lam * similar_to(rows, pick), out=penalty)
    return order


def mmr_order_cosine(
    relevance: np.ndarray, candidates: np.ndarray, cosine: np.ndarray, k: int, diversity: float
) -> np.ndarray:
    """:func:`mmr_order` over :func:`candidate_similarity` of ``candidates`` in the ``(n, n)``
    ``cosine``, gathering only the rows it reads: a step needs each row's similarities to the
    item it just picked, ``k − 1`` rows of ``C`` instead of the ``C × C`` block (a batch's 1,000
    users: ~50K random reads of the 16 MB matrix instead of ~900K). The same float32 values in
    the same operations, so the same picks."""
    b, c = relevance.shape
    k = min(k, c)
    if b == 1 or diversity <= 0 or c <= 1:
        sims = None if diversity <= 0 or c <= 1 else candidate_similarity(candidates, None, cosine)
        return mmr_order(relevance, sims, k, diversity)
    flat = cosine.reshape(-1)
    columns = np.asarray(candidates, dtype=np.int64)
    n = cosine.shape[0]

    def picked_rows(rows: np.ndarray, pick: np.ndarray) -> np.ndarray:
        return flat.take(columns[rows, pick][:, None] * n + columns)  # the picked items' rows

    valid = np.isfinite(relevance)
    return _mmr_batch(relevance, valid, k, np.float32(diversity), picked_rows)


def _mmr_one(
    relevance: np.ndarray, valid: np.ndarray, sims: np.ndarray, k: int, lam: np.float32
) -> np.ndarray:
    """:func:`mmr_order` of one row: candidates are best first, so the valid ones are a prefix
    and its first and last entries are the highest and lowest relevance.

    Keeps ``value = gain − penalty`` itself: ``gain − max(p, s) = min(gain − p, gain − s)``
    exactly (a float subtraction is monotone in what it subtracts), so with ``gain − λ·sims``
    formed once a step is an argmax and one ``minimum``: the same picks in half the calls. The
    diagonal of ``gain − λ·sims`` is ``-inf``, so that ``minimum`` also takes the picked item
    out (``value[pick] = -inf`` without a call of its own).
    """
    count = int(valid.sum())
    order = np.full(k, -1, dtype=np.int64)
    if not count:
        return order
    rel = relevance[:count]
    lo, hi = rel[count - 1], rel[0]
    span = hi - lo if hi > lo else np.float32(1.0)
    gain = ((1 - lam) * (rel - lo) / span).astype(np.float32)
    after = gain - lam * sims[:count, :count]  # row j: gain − λ·cos(·, j), once j is selected
    after.reshape(-1)[:: count + 1] = -np.inf  # (a new array: its diagonal is ours to write)
    value = gain.copy()  # gain − penalty, penalty 0 before any selection
    picks = []
    for _ in range(min(k, count)):
        pick = int(value.argmax())
        picks.append(pick)
        np.minimum(value, after[pick], out=value)
    order[: len(picks)] = picks
    return order


def breakdown(
    signals: Mapping[str, np.ndarray], weights: Mapping[str, float], items: np.ndarray
) -> list[dict[str, object]]:
    """Per recommended item: each signal's normalised value, its weight and its contribution."""
    rows = []
    for item in items:
        entry: dict[str, object] = {}
        for name, values in signals.items():
            value = float(values[item])
            weight = float(weights.get(name, 0.0))
            entry[name] = {
                "value": round(value, 6),
                "weight": weight,
                "contribution": round(weight * value, 6),
            }
        rows.append(entry)
    return rows
