"""The candidate stage: score a user exactly, but only over a few hundred candidate items.

At 50,000 products the content signal of a user is a ``(50,000 × 512)`` product (102 MB read
per request); CF over 64 factors ~4 ms. With a :class:`CandidateSearch` on the model,
:func:`candidate_scores` forms each user's candidate union instead:

- content: the stored content top-``C`` of each history item (``content_neighbours``, searched
  once on the content index; a one-item history's row is what a search of its profile gives),
  or, without that table, the ANN top-``C`` of the content profile;
- the ANN top-``C`` of the CF user vector when CF is indexed (otherwise CF is scored over the
  catalogue and its exact top-``C`` joins);
- the item-kNN neighbours of the history (context items included: they are its newest items),
  at most the ``C`` most similar, summed from the history items' CSR rows (no ``(n,)`` row);
- the popularity top-``C``; the items appended after the index was built (new products).

``C`` is each source's size (``per_signal``, else ``per_source``).

Every weighted signal is then scored *exactly* over the union (row gathers of the precomputed
arrays), normalised over the union and blended. Items outside it get ``-inf``: they are not
ranked (neither a 0 nor the minimum of a normalised signal), exactly like an excluded item.
Evaluation scores through the same function (:func:`~recommender.scoring.score_users`), so what
is evaluated is what is served.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.candidates import CandidateSettings
from recommender.scoring.ann import IndexParams, VectorIndex
from recommender.scoring.ease import ease_scores
from recommender.scoring.hybrid import combine, normalise
from recommender.scoring.signals import (
    Entries,
    _history_sums,
    cf_scores,
    history_entries,
    recency_weights,
    similarity_entries,
)

if TYPE_CHECKING:
    from recommender.scoring.scorer import ScoringModel


@dataclass(frozen=True)
class CandidateSearch:
    """The ANN indexes of one model and how many candidates each source brings (``per_source``,
    or ``per_signal``'s size for that source: ``cf``, ``content``, ``item_similarity``,
    ``popularity``).

    ``content`` indexes the L2-normalised embeddings, ``cf`` the item factors (inner product;
    None: CF is scored over the catalogue). Both cover the model's first ``n_indexed`` items.
    """

    content: VectorIndex | None
    cf: VectorIndex | None
    per_source: int = 300
    per_signal: tuple[tuple[str, int], ...] = ()  # (source, size) pairs (hashable)
    # (n_indexed, k) int32: each item's content top-k by the index (itself first), searched
    # once; a user's content candidates are then their history items' rows (no search)
    content_neighbours: np.ndarray | None = None

    def size(self, source: str) -> int:
        """Candidates ``source`` brings to a user's union."""
        return dict(self.per_signal).get(source, self.per_source)

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
    built: dict[str, Any] | None = None,
) -> CandidateSearch | None:
    """An in-memory :class:`CandidateSearch` for ``model`` when ``settings`` enable it for its
    catalogue (evaluation; serving maps stored files). ``built``: indexes already built for the
    same vectors (the content index and its neighbour table, shared by several models), reused
    and filled in."""
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
    search = CandidateSearch(
        content=indexes.get(V.SIGNAL_CONTENT),
        cf=indexes.get(V.SIGNAL_CF),
        per_source=settings.per_source,
        per_signal=tuple(sorted(settings.per_signal.items())),
    )
    if search.content is None or not settings.content_neighbours:
        return search
    key = f"{V.SIGNAL_CONTENT}_neighbours"
    table = built.get(key)
    if table is None:
        table = content_neighbour_table(search, vectors[V.SIGNAL_CONTENT], settings)
        built[key] = table
    return dataclasses.replace(search, content_neighbours=table)


def content_neighbour_table(
    search: CandidateSearch, embeddings: np.ndarray, settings: CandidateSettings
) -> np.ndarray:
    """Each indexed item's content top-k (k = the content source's size), by the content index
    itself: what a search of a one-item history's profile returns."""
    assert search.content is not None
    return search.content.neighbour_table(
        embeddings[: search.n_indexed], search.size(V.SIGNAL_CONTENT), settings.build_threads
    )


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries of ``values`` ``(n,)`` (any order)."""
    if values.size <= count:
        return np.arange(values.size, dtype=np.int64)
    return np.argpartition(-values, count - 1)[:count]


def _neighbours(items: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Of ``items`` (sorted) and their item-kNN sums, those with a similarity from the history
    (at most the ``count`` highest): the items the former dense row's ``row > 0`` gave."""
    hit = values > 0
    items, values = items[hit], values[hit]
    if items.size > count:
        items = items[_top(values, count)]
    return items


def _similarity_sums(
    entries: Entries,
    similarity: sp.csr_matrix,
    recency: Sequence[np.ndarray] | None,
    b: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per user, the items with an item-kNN entry from the history (sorted) and their summed
    similarity: :func:`~recommender.scoring.signals.item_similarity_scores` without its dense
    ``(b, n)`` row. The same float32 values are added to each item in the same order (one
    ``np.add.at`` in (user, item) order), so every sum is bit-identical to the dense one."""
    return _split_sums(*_flat_similarity_sums(entries, similarity, recency), similarity.shape[1], b)


def _flat_similarity_sums(
    entries: Entries, similarity: sp.csr_matrix, recency: Sequence[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_similarity_sums` of the whole batch: keys ``row · n + item`` (sorted) and sums."""
    targets, values = similarity_entries(similarity, entries, recency is not None)
    if not targets.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    keys, inverse = np.unique(targets, return_inverse=True)
    sums = np.zeros(keys.size, dtype=np.float32)
    np.add.at(sums, inverse, values.astype(np.float32, copy=False))
    return keys, sums


def _split_sums(
    keys: np.ndarray, sums: np.ndarray, n: int, b: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The per-user ``(items, sums)`` of flat ``row · n + item`` keys."""
    bounds = np.searchsorted(keys, np.arange(b + 1, dtype=np.int64) * n)
    return [
        (keys[lo:hi] - row * n, sums[lo:hi])
        for row, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]


def _lookup(keys: np.ndarray, values: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``values`` at ``items`` where ``keys`` (sorted) holds them, 0 elsewhere."""
    if not keys.size:
        return np.zeros(items.size, dtype=np.float32)
    at = np.minimum(np.searchsorted(keys, items), keys.size - 1)
    return np.where(keys[at] == items, values[at], np.float32(0))


def _history_neighbours(
    entries: Entries, neighbours: np.ndarray, b: int, size: int
) -> list[np.ndarray]:
    """Per user, the stored content neighbours of their history items: ``ceil(size / h)`` of
    each of ``h`` items (at least 10), so the content source brings about ``size`` candidates
    whatever the history's length. One item: its own top-``size``, which is what a search of
    the profile (the item's embedding) returns."""
    rows, items, _ = entries
    indexed = items < neighbours.shape[0]  # new products have no stored row
    rows, items = rows[indexed], items[indexed]
    lengths = np.bincount(rows, minlength=b)
    out = []
    start = 0
    for row in range(b):
        own = items[start : start + lengths[row]]
        start += lengths[row]
        if not own.size:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        width = min(neighbours.shape[1], max(10, -(-size // own.size)))
        out.append(np.asarray(neighbours[own, :width], dtype=np.int64).ravel())
    return out


class CandidateSearchFailed(RuntimeError):
    """An index could not answer (e.g. its file became unreadable): score exactly instead."""


def _search(
    index: VectorIndex, queries: np.ndarray, count: int, threads: int = 1
) -> list[np.ndarray]:
    try:
        return index.search(queries, count, threads)
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise CandidateSearchFailed(str(exc)) from exc


@dataclass(frozen=True)
class Unions:
    """The candidate unions of a batch, flat: user ``r``'s items (sorted) are
    ``items[bounds[r]:bounds[r + 1]]``, and ``values[name]`` a raw signal over ``items``
    (float32), each user's slice computed exactly as for that user alone."""

    items: np.ndarray  # int64
    bounds: np.ndarray  # (b + 1,) int64
    values: dict[str, np.ndarray]

    @property
    def rows(self) -> np.ndarray:
        """The user of each entry of :attr:`items`."""
        b = len(self.bounds) - 1
        return np.repeat(np.arange(b, dtype=np.int64), np.diff(self.bounds))

    def per_user(self) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``(items, {signal: values})`` of each user (views)."""
        spans = zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True)
        return [
            (self.items[lo:hi], {k: v[lo:hi] for k, v in self.values.items()}) for lo, hi in spans
        ]


def _union_of(found: list[list[np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's sorted distinct items of their sources' parts, flat: ``(items, bounds)``
    (one sort of ``row · n + item`` keys: the ``np.unique`` of each user's parts at once)."""
    b = len(found)
    sizes = np.fromiter((sum(p.size for p in parts) for parts in found), dtype=np.int64, count=b)
    keys = np.concatenate([p for parts in found for p in parts]).astype(np.int64, copy=False)
    keys += np.repeat(np.arange(b, dtype=np.int64) * n, sizes)
    keys.sort()
    if keys.size:
        distinct = np.empty(keys.size, dtype=bool)
        distinct[0] = True
        np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
        keys = keys[distinct]
    rows = keys // n
    bounds = np.searchsorted(rows, np.arange(b + 1, dtype=np.int64))
    return keys - rows * n, bounds


def candidate_signals(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    sources: Collection[str],
    signals: Collection[str],
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Per user: the candidate union (sorted item indices) and the raw ``signals`` over it
    (:func:`candidate_union_signals`, split per user)."""
    return candidate_union_signals(
        model, segment, histories, sources, signals, user_rows, recency_decay, request_times
    ).per_user()


def candidate_union_signals(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    sources: Collection[str],
    signals: Collection[str],
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
    search_threads: int = 1,
) -> Unions:
    """The candidate unions of a batch and the raw ``signals`` over them (``search_threads``:
    the threads the batch's ANN queries are searched on, see :meth:`VectorIndex.search`).

    ``sources``: the weighted signals, each of which brings its top candidates (the popular
    items and the new products always join). ``signals``: the signals scored over the union
    (the weighted ones to rank; every signal for an ``explain`` breakdown); a signal the model
    lacks (content without embeddings) is left out, as in exact scoring. Nothing ``(n,)``-wide
    is built per user unless a signal is cheaper over the catalogue (EASE, CF below
    ``cf_min_factors``, content without an index).

    Raises:
        CandidateSearchFailed: an index did not answer (the caller scores exactly).
    """
    from recommender.scoring.scorer import cf_vectors  # scorer dispatches here

    search = model.candidates
    if search is None:
        raise ValueError("candidate_signals needs a model with candidates")
    n, b = model.n_items, len(histories)
    needed = set(sources) | set(signals)
    recency = None if recency_decay == 1.0 else recency_weights(histories, recency_decay)
    entries = history_entries(histories, recency)
    found: list[list[np.ndarray]] = [
        [model.popularity_order[: search.size(V.SIGNAL_POPULARITY)]] for _ in range(b)
    ]
    if n > search.n_indexed:  # new products: not in the index, always candidates
        extra = np.arange(search.n_indexed, n, dtype=np.int64)
        for parts in found:
            parts.append(extra)
    full: dict[str, np.ndarray] = {}  # (b, n) signals cheap enough over the catalogue
    vectors: dict[str, np.ndarray] = {}  # (b, d) queries of the signals scored by gather
    if V.SIGNAL_CF in needed and model.item_item is not None:
        full[V.SIGNAL_CF] = ease_scores(histories, model.item_item, recency, n)
    elif V.SIGNAL_CF in needed:
        users = np.asarray(cf_vectors(model, segment, histories, user_rows, recency, entries))
        users = users.astype(np.float32, copy=False)
        if search.cf is not None:
            vectors[V.SIGNAL_CF] = users
            if V.SIGNAL_CF in sources:
                hits = _search(search.cf, users, search.size(V.SIGNAL_CF), search_threads)
                for parts, items in zip(found, hits, strict=True):
                    parts.append(items)
        else:
            full[V.SIGNAL_CF] = cf_scores(users, model.item_factors, model.item_factors_t)
    if V.SIGNAL_CONTENT in needed and model.embeddings is not None:
        profiles = _history_sums(histories, model.embeddings, recency, entries)
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        profiles = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
        vectors[V.SIGNAL_CONTENT] = profiles.astype(np.float32)
        if search.content is None:
            full[V.SIGNAL_CONTENT] = vectors.pop(V.SIGNAL_CONTENT) @ model.embeddings.T
        elif V.SIGNAL_CONTENT in sources:
            size = search.size(V.SIGNAL_CONTENT)
            if search.content_neighbours is not None:
                hits = _history_neighbours(entries, search.content_neighbours, b, size)
            else:
                hits = _search(search.content, vectors[V.SIGNAL_CONTENT], size, search_threads)
            for parts, items in zip(found, hits, strict=True):
                parts.append(items)
    similar = None
    if V.SIGNAL_ITEM_SIMILARITY in needed:
        similar = _flat_similarity_sums(entries, model.item_similarity, recency)
        if V.SIGNAL_ITEM_SIMILARITY in sources:
            size = search.size(V.SIGNAL_ITEM_SIMILARITY)
            for parts, (items, sums) in zip(found, _split_sums(*similar, n, b), strict=True):
                parts.append(_neighbours(items, sums, size))
    for name, dense in full.items():
        if name in sources:
            for row, parts in enumerate(found):
                parts.append(_top(dense[row], search.size(name)))
    popularity = model.popularity
    history = model.popularity_history
    if V.SIGNAL_POPULARITY in signals and request_times is not None and history is not None:
        popularity = history.at(request_times)  # (b, n): as of each request (evaluation)
    items, bounds = _union_of(found, n)
    rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(bounds))  # each entry's user
    values: dict[str, np.ndarray] = {}
    for name in signals:
        if name in full:
            values[name] = np.asarray(full[name][rows, items], dtype=np.float32)
        elif name in vectors:
            matrix = model.item_factors if name == V.SIGNAL_CF else model.embeddings
            assert matrix is not None
            gathered = np.empty(items.size, dtype=np.float32)
            spans = zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
            for row, (lo, hi) in enumerate(spans):  # one product per user, as alone
                gathered[lo:hi] = matrix[items[lo:hi]] @ vectors[name][row]
            values[name] = gathered
        elif name == V.SIGNAL_ITEM_SIMILARITY and similar is not None:
            values[name] = _lookup(*similar, rows * n + items)
        elif name == V.SIGNAL_POPULARITY:
            static = popularity.ndim == 1
            picked = popularity[items] if static else popularity[rows, items]
            values[name] = np.asarray(picked, dtype=np.float32)
        elif name == V.SIGNAL_QUALITY:
            values[name] = np.asarray(model.quality[items], dtype=np.float32)
    return Unions(items, bounds, values)


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
    items, bounds, scores = candidate_unions(
        model, segment, histories, weights, method, user_rows, recency_decay, request_times
    )
    out = np.full((len(histories), model.n_items), -np.inf, dtype=np.float32)
    out[np.repeat(np.arange(len(histories)), np.diff(bounds)), items] = scores
    return out


def candidate_unions(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: Mapping[str, float],
    method: str = "minmax",
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
    search_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The finite entries of :func:`candidate_scores`' rows (``-inf`` elsewhere), flat: user
    ``r``'s union is ``items[bounds[r]:bounds[r + 1]]`` (sorted) and its float32 hybrid scores
    the same slice of ``scores``. The batch path ranks these directly, without a ``(b, n)``
    array (``search_threads``: see :func:`candidate_union_signals`).

    Raises:
        CandidateSearchFailed: an index did not answer (the caller scores exactly).
    """
    wanted = [name for name, w in weights.items() if w > 0]
    unions = candidate_union_signals(
        model,
        segment,
        histories,
        wanted,
        wanted,
        user_rows,
        recency_decay,
        request_times,
        search_threads,
    )
    return unions.items, unions.bounds, _blend(unions, weights, method)


def _blend(unions: Unions, weights: Mapping[str, float], method: str) -> np.ndarray:
    """:func:`~recommender.scoring.hybrid.combine` of each user's signals over their union.

    Min-max is per row, so the users go through one ``combine`` of a ``(b, longest union)``
    block, each row padded with its own first value (the row's minimum and maximum, hence every
    entry's arithmetic, are those of the union alone); rank normalisation depends on the row's
    length, so it combines user by user."""
    items, bounds, signals = unions.items, unions.bounds, unions.values
    if not signals:  # only weighted signals the model lacks: no preference, as exact
        return np.zeros(items.size, dtype=np.float32)
    b = len(bounds) - 1
    if b == 1:
        return combine({k: v[None, :] for k, v in signals.items()}, weights, method)[0]
    if method != "minmax" or not items.size:
        out = np.empty(items.size, dtype=np.float32)
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if hi > lo:
                row = {k: v[None, lo:hi] for k, v in signals.items()}
                out[lo:hi] = combine(row, weights, method)[0]
        return out
    rows = unions.rows
    columns = np.arange(items.size, dtype=np.int64) - bounds[rows]
    width = int(np.diff(bounds).max())
    firsts = np.minimum(bounds[:-1], items.size - 1)
    blocks = {}
    for name, values in signals.items():
        block = np.repeat(values[firsts][:, None], width, axis=1)
        block[rows, columns] = values
        blocks[name] = block
    return combine(blocks, weights, method)[rows, columns]


def candidate_breakdown(
    model: ScoringModel,
    segment: str,
    history: np.ndarray,
    weights: Mapping[str, float],
    method: str = "minmax",
    user_row: int | None = None,
    recency_decay: float = 1.0,
) -> dict[str, np.ndarray]:
    """Every available signal of ONE user normalised over the union that ranked them under
    ``weights`` (as :func:`candidate_scores` blends them): signal -> ``(n,)``, 0 outside the
    union. The ``explain`` breakdown then adds up to the served relevance.

    Raises:
        CandidateSearchFailed: an index did not answer (the caller breaks down exactly).
    """
    wanted = [name for name, w in weights.items() if w > 0]
    rows = None if user_row is None else np.array([user_row])
    ((items, signals),) = candidate_signals(
        model, segment, [history], wanted, V.SIGNALS, rows, recency_decay
    )
    out = {}
    for name, values in signals.items():
        row = np.zeros(model.n_items, dtype=np.float32)
        row[items] = normalise(values, method)
        out[name] = row
    return out
