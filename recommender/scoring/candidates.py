"""The candidate stage: score a user exactly, but only over a few hundred candidate items.

At 50,000 products the content signal of a user is a ``(50,000 × 512)`` product (102 MB read
per request); CF over 64 factors ~4 ms. With a :class:`CandidateSearch` on the model,
:func:`candidate_scores` forms each user's candidate union instead:

- the ANN top-``C`` of the content profile (and of the CF user vector when CF is indexed;
  otherwise CF is scored over the catalogue and its exact top-``C`` joins);
- the item-kNN neighbours of the history (context items included: they are its newest items),
  at most the ``C`` most similar;
- the popularity top-``C``; the items appended after the index was built (new products).

Every weighted signal is then scored *exactly* over the union (row gathers of the precomputed
arrays), normalised over the union and blended. Items outside it get ``-inf``: they are not
ranked (neither a 0 nor the minimum of a normalised signal), exactly like an excluded item.
Evaluation scores through the same function (:func:`~recommender.scoring.score_users`), so what
is evaluated is what is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recommender import vocabulary as V
from recommender.config.candidates import CandidateSettings
from recommender.scoring.ann import IndexParams, VectorIndex
from recommender.scoring.ease import ease_scores
from recommender.scoring.hybrid import combine
from recommender.scoring.signals import (
    _history_sums,
    cf_scores,
    history_entries,
    item_similarity_scores,
    recency_weights,
)

if TYPE_CHECKING:
    from recommender.scoring.scorer import ScoringModel


@dataclass(frozen=True)
class CandidateSearch:
    """The ANN indexes of one model and how many candidates each source brings (``per_source``).

    ``content`` indexes the L2-normalised embeddings, ``cf`` the item factors (inner product;
    None: CF is scored over the catalogue). Both cover the model's first ``n_indexed`` items.
    """

    content: VectorIndex | None
    cf: VectorIndex | None
    per_source: int = 300

    @property
    def n_indexed(self) -> int:
        index = self.content if self.content is not None else self.cf
        return 0 if index is None else index.n_items

    def check(self, n_items: int, embedding_dim: int | None, factors: int) -> None:
        """Raise ``ValueError`` when an index does not fit the model it is attached to."""
        for name, index, ndim in (
            ("content", self.content, embedding_dim),
            ("cf", self.cf, factors),
        ):
            if index is None:
                continue
            if index.n_items != n_items or index.ndim != ndim:
                raise ValueError(
                    f"{name} index holds {index.n_items} × {index.ndim}, the model "
                    f"{n_items} items × {ndim}"
                )


def index_params(settings: CandidateSettings) -> IndexParams:
    """The HNSW settings of ``settings``."""
    return IndexParams(
        connectivity=settings.connectivity,
        expansion_add=settings.expansion_add,
        expansion_search=settings.expansion_search,
        dtype=settings.dtype,
    )


def indexed_vectors(model: ScoringModel, settings: CandidateSettings) -> dict[str, np.ndarray]:
    """The matrices to index: the embeddings (content), the item factors when CF has at least
    ``cf_min_factors`` (below that a product over the catalogue is cheaper than a search)."""
    out: dict[str, np.ndarray] = {}
    if model.embeddings is not None:
        out[V.SIGNAL_CONTENT] = model.embeddings
    factors = int(model.item_factors.shape[1])
    if model.item_item is None and factors >= settings.cf_min_factors:
        out[V.SIGNAL_CF] = model.item_factors
    return out


def build_search(
    model: ScoringModel,
    settings: CandidateSettings,
    built: dict[str, VectorIndex] | None = None,
) -> CandidateSearch | None:
    """An in-memory :class:`CandidateSearch` for ``model`` when ``settings`` enable it for its
    catalogue (evaluation; serving maps stored files). ``built``: indexes already built for the
    same vectors (the content index of several models), reused and filled in."""
    if not settings.enabled(model.n_items):
        return None
    vectors = indexed_vectors(model, settings)
    if not vectors:
        return None
    built = {} if built is None else built
    params = index_params(settings)
    indexes = {}
    for name, matrix in vectors.items():
        reuse = built.get(name)
        if reuse is None or name == V.SIGNAL_CF:  # factors differ between models
            reuse = VectorIndex.build(matrix, params, settings.build_threads)
            if name == V.SIGNAL_CONTENT:
                built[name] = reuse
        indexes[name] = reuse
    return CandidateSearch(
        content=indexes.get(V.SIGNAL_CONTENT),
        cf=indexes.get(V.SIGNAL_CF),
        per_source=settings.per_source,
    )


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries of ``values`` ``(n,)`` (any order)."""
    if values.size <= count:
        return np.arange(values.size, dtype=np.int64)
    return np.argpartition(-values, count - 1)[:count]


def _neighbours(row: np.ndarray, count: int) -> np.ndarray:
    """Items with item-kNN similarity from the history (at most the ``count`` highest)."""
    hit = np.flatnonzero(row > 0)
    if hit.size > count:
        hit = hit[_top(row[hit], count)]
    return hit


class CandidateSearchFailed(RuntimeError):
    """An index could not answer (e.g. its file became unreadable): score exactly instead."""


def _search(index: VectorIndex, queries: np.ndarray, count: int) -> list[np.ndarray]:
    try:
        return index.search(queries, count)
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise CandidateSearchFailed(str(exc)) from exc


def candidate_scores(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: Mapping[str, float],
    method: str = "minmax",
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
) -> np.ndarray:
    """Hybrid scores ``(b, n)`` float32 over each user's candidate union, ``-inf`` elsewhere.

    Same arguments and signals as :func:`~recommender.scoring.score_users` (users with a
    history: ``trainable`` / ``cold``); ``model.candidates`` must be set.

    Raises:
        CandidateSearchFailed: an index did not answer (the caller scores exactly).
    """
    from recommender.scoring.scorer import cf_vectors  # scorer dispatches here

    search = model.candidates
    if search is None:
        raise ValueError("candidate_scores needs a model with candidates")
    n, b, count = model.n_items, len(histories), search.per_source
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
            for found, hits in zip(sources, _search(search.cf, users, count), strict=True):
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
            for found, hits in zip(sources, _search(search.content, queries, count), strict=True):
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
