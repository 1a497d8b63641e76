"""Similar products: cosine neighbours over the model's item factors or the product embeddings.

``cf`` uses the L2-normalised item factors (products bought by the same people); ``content`` the
product embeddings (similar text); ``auto`` takes ``cf`` for products anyone interacted with and
``content`` for the others, whose factors carry no signal. Each product's ranked neighbours
(``requests.max_similar_topk`` of them) are computed once and kept in the item-similarity cache.
Products new since the build (:mod:`.new_products`) have no factors: they are ``content``
queries, and ``content`` neighbours of every product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError, UnknownProductError
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import CountingCache
from recommender.serving.live_state import LiveState
from recommender.serving.new_products import (
    all_available,
    all_embeddings,
    content_neighbours,
    merge_neighbours,
)


@dataclass(frozen=True)
class SimilarItems:
    """Neighbours of one product and the method that produced them."""

    product_id: str
    method: str
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Neighbourhood:
    """One product's ranked neighbours (item indices, similarity) and how to answer them."""

    product_id: str
    method: str
    neighbours: np.ndarray
    scores: np.ndarray
    record: Callable[[int], dict[str, Any]]

    def answer(self, items: np.ndarray, scores: np.ndarray, topk: int) -> SimilarItems:
        """The best ``topk`` of ``items`` (ranked, with their ``scores``) as response records."""
        rows = [
            {**self.record(item), "rank": rank, "score": score}
            for rank, item, score in zip(
                range(1, topk + 1), items[:topk].tolist(), scores[:topk].tolist(), strict=False
            )
        ]
        return SimilarItems(product_id=self.product_id, method=self.method, items=rows)


class ItemNeighbours:
    """Answers ``similar_items`` for one bundle, through its item-similarity cache."""

    def __init__(self, bundle: ModelBundle, cache: CountingCache, settings: ServingSettings):
        self.bundle = bundle
        self.cache = cache
        self.limit = settings.requests.max_similar_topk
        self._embeddings = bundle.model.embeddings
        self._tiebreak = np.arange(bundle.n_items, dtype=np.float64) * 1e-11

    def similar_items(
        self,
        product_id: str | int,
        topk: int = 10,
        method: str = V.SIMILARITY_AUTO,
        live: LiveState | None = None,
    ) -> SimilarItems:
        """Most similar products, the product itself excluded; ties broken by item index."""
        found = self.candidates(product_id, topk, method, live)
        return found.answer(found.neighbours, found.scores, topk)

    def candidates(
        self,
        product_id: str | int,
        topk: int = 10,
        method: str = V.SIMILARITY_AUTO,
        live: LiveState | None = None,
    ) -> Neighbourhood:
        """The product's ranked available neighbours (``max_similar_topk`` of them) after the
        checks of ``topk``, ``method`` and the product id; :meth:`similar_items` keeps the best
        ``topk``, a per-user answer re-ranks them first (``Engine.similar_items``)."""
        if not 1 <= int(topk) <= self.limit:
            raise InvalidRequestError(f"topk={topk}: must be between 1 and {self.limit}.")
        if method not in V.SIMILARITY_METHODS:
            raise InvalidRequestError(
                f"method={method!r}: expected one of {', '.join(V.SIMILARITY_METHODS)}."
            )
        pid = str(product_id)
        index = self.bundle.catalogue.index.get(pid)
        new = None if live is None else live.new_items
        new_index = None if new is None or index is not None else new.index_of(pid)
        if index is None and new_index is None:
            raise UnknownProductError(
                f"product {pid!r} is not in the catalogue of model {self.bundle.model_id}; "
                "check the id (products are identified by their shop product_id)."
            )
        if new_index is not None and new is not None:
            used = self._resolve_new(pid, method)
            assert self._embeddings is not None  # _resolve_new checked it
            vectors = all_embeddings(self._embeddings, new)
            neighbours, scores = content_neighbours(
                vectors, vectors[new_index], new_index, self.limit
            )
        else:
            assert index is not None
            used = self.resolve(index, method)
            neighbours, scores = self.neighbours(index, used)
            if new is not None and used == V.SIMILARITY_CONTENT and self._embeddings is not None:
                query = self._embeddings[index]
                neighbours, scores = merge_neighbours(neighbours, scores, new, query, self.limit)
        record: Callable[[int], dict[str, Any]] = self.bundle.catalogue.records.__getitem__
        if live is not None and live.has_catalogue_changes:
            keep = all_available(live.available, live.new_items)[neighbours]
            neighbours, scores = neighbours[keep], scores[keep]
            record = live.record
        return Neighbourhood(pid, used, neighbours, scores, record)

    def resolve(self, index: int, method: str) -> str:
        """The concrete method (``cf`` or ``content``) for ``method`` on product ``index``."""
        has_cf = bool(self.bundle.has_interactions[index]) and bool(
            self.bundle.item_unit_factors[index].any()
        )
        if method == V.SIMILARITY_AUTO:
            method = V.SIMILARITY_CF if has_cf or self._embeddings is None else V.SIMILARITY_CONTENT
        if method == V.SIMILARITY_CONTENT and self._embeddings is None:
            raise InvalidRequestError("method=content: this model has no product embeddings.")
        return method

    def _resolve_new(self, product_id: str, method: str) -> str:
        """A new product's method: content (it has no CF factors before the next build)."""
        if method == V.SIMILARITY_CF:
            raise InvalidRequestError(
                f"method=cf: product {product_id!r} is new since model {self.bundle.model_id} "
                "was built and has no CF factors yet; use method=content or auto."
            )
        if self._embeddings is None:
            raise InvalidRequestError(
                f"product {product_id!r} is new since the model was built and this model has "
                "no product embeddings to compare it with; it is listed after the next build."
            )
        return V.SIMILARITY_CONTENT

    def neighbours(
        self, index: int, method: str, count: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, cosine) of the best ``max_similar_topk`` neighbours, best first."""
        key = (index, method)
        cached = self.cache.get(key, count)
        if cached is not None:
            return cached
        vectors = self.bundle.item_unit_factors if method == V.SIMILARITY_CF else self._embeddings
        assert vectors is not None  # method was resolved against the available vectors above
        sims: np.ndarray = np.round(vectors @ vectors[index], V.SCORE_DECIMALS).astype(np.float64)
        keys = self._tiebreak - sims
        keys[index] = np.inf
        width = min(self.limit, len(sims) - 1)
        top = np.argpartition(keys, width - 1)[:width]
        top = top[np.argsort(keys[top], kind="stable")]
        top = top[np.isfinite(keys[top])]
        result = (top, sims[top])
        for array in result:
            array.setflags(write=False)
        self.cache.put(key, result)
        return result
