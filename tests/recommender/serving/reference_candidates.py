"""The candidate stage's union scoring as it was first built (issue 12), kept as a reference.

A frozen copy: every signal cheap over the catalogue (item-kNN included) is a dense ``(b, n)``
row whose top entries join the union; the pinning test compares
:func:`recommender.scoring.candidates.candidate_scores` with it bit for bit, so the sparse
item-kNN sums and the per-source sizes change no score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from recommender import vocabulary as V
from recommender.scoring.ease import ease_scores
from recommender.scoring.hybrid import combine
from recommender.scoring.scorer import ScoringModel, cf_vectors
from recommender.scoring.signals import (
    _history_sums,
    cf_scores,
    history_entries,
    item_similarity_scores,
    recency_weights,
)


def _top(values: np.ndarray, count: int) -> np.ndarray:
    if values.size <= count:
        return np.arange(values.size, dtype=np.int64)
    return np.argpartition(-values, count - 1)[:count]


def _neighbours(row: np.ndarray, count: int) -> np.ndarray:
    hit = np.flatnonzero(row > 0)
    if hit.size > count:
        hit = hit[_top(row[hit], count)]
    return hit


def former_candidate_scores(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: Mapping[str, float],
    method: str = "minmax",
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
) -> np.ndarray:
    """Hybrid scores ``(b, n)`` over each user's candidate union (``per_source`` from every
    source), ``-inf`` elsewhere: the first implementation."""

    search = model.candidates
    if search is None:
        raise ValueError("candidate_scores needs a model with candidates")
    n, b, count = model.n_items, len(histories), search.per_source  # one size for every source
    wanted = {name for name, w in weights.items() if w > 0}
    recency = None if recency_decay == 1.0 else recency_weights(histories, recency_decay)
    entries = history_entries(histories, recency)
    sources: list[list[np.ndarray]] = [[model.popularity_order[:count]] for _ in range(b)]
    if n > search.n_indexed:  # new products: not in the index, always candidates
        extra = np.arange(search.n_indexed, n, dtype=np.int64)
        for found in sources:
            found.append(extra)
    full: dict[str, np.ndarray] = {}  # (b, n) signals cheap enough over the catalogue
    vectors: dict[str, np.ndarray] = {}  # (b, d) queries of the signals scored by gather
    if V.SIGNAL_CF in wanted and model.item_item is not None:
        full[V.SIGNAL_CF] = ease_scores(histories, model.item_item, recency, n)
    elif V.SIGNAL_CF in wanted:
        users = np.asarray(cf_vectors(model, segment, histories, user_rows, recency, entries))
        users = users.astype(np.float32, copy=False)
        if search.cf is not None:
            vectors[V.SIGNAL_CF] = users
            for found, hits in zip(sources, search.cf.search(users, count), strict=True):
                found.append(hits)
        else:
            full[V.SIGNAL_CF] = cf_scores(users, model.item_factors, model.item_factors_t)
    if V.SIGNAL_CONTENT in wanted and model.embeddings is not None:
        profiles = _history_sums(histories, model.embeddings, recency, entries)
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        profiles = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
        vectors[V.SIGNAL_CONTENT] = profiles.astype(np.float32)
        if search.content is not None:
            queries = vectors[V.SIGNAL_CONTENT]
            for found, hits in zip(sources, search.content.search(queries, count), strict=True):
                found.append(hits)
        else:
            full[V.SIGNAL_CONTENT] = vectors.pop(V.SIGNAL_CONTENT) @ model.embeddings.T
    if V.SIGNAL_ITEM_SIMILARITY in wanted:
        full[V.SIGNAL_ITEM_SIMILARITY] = item_similarity_scores(
            histories, model.item_similarity, recency, entries
        )
    for name, values in full.items():
        pick = _neighbours if name == V.SIGNAL_ITEM_SIMILARITY else _top
        for row, found in enumerate(sources):
            found.append(pick(values[row], count))
    popularity = model.popularity
    history = model.popularity_history
    if V.SIGNAL_POPULARITY in wanted and request_times is not None and history is not None:
        popularity = history.at(request_times)  # (b, n): as of each request (evaluation)
    out = np.full((b, n), -np.inf, dtype=np.float32)
    for row, found in enumerate(sources):
        items = np.unique(np.concatenate(found))
        signals: dict[str, np.ndarray] = {}
        for name in wanted:
            if name in full:
                signals[name] = full[name][row, items]
            elif name in vectors:
                matrix = model.item_factors if name == V.SIGNAL_CF else model.embeddings
                assert matrix is not None
                signals[name] = matrix[items] @ vectors[name][row]
            elif name == V.SIGNAL_POPULARITY:
                static = popularity.ndim == 1
                signals[name] = popularity[items] if static else popularity[row, items]
            elif name == V.SIGNAL_QUALITY:
                signals[name] = model.quality[items]
        if not signals:  # only weighted signals the model lacks: no preference, as exact
            out[row, items] = 0.0
            continue
        out[row, items] = combine(
            {k: np.asarray(v, dtype=np.float32)[None, :] for k, v in signals.items()},
            weights,
            method,
        )[0]
    return out
