"""The serving engine: route each user, score the catalogue, filter, exclude, rerank, shape results.

Routing (SPEC §6): a *trainable* user (CF row) gets CF scores; a *cold* user (a positive
interaction, no CF row) gets the history folded in on the item factors + item similarity + content +
popularity with the model's tuned cold weights; an *unknown* user (never seen, or seen with no
positive interaction) gets popularity/quality, minus anything seen. All three go through
:func:`recommender.scoring.score_users` and then the same code: filters and seen items become
``-inf``, the best ``topk`` (× ``candidate_multiplier`` when reranking) are taken with
``argpartition`` over the whole batch, ties broken by item index, and MMR reorders them. A single
request is a batch of one, so single and batch calls rank a user identically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError
from recommender.scoring import signal_breakdown
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import ServingCaches, WarmupReport
from recommender.serving.filters import Filters, eligibility_mask
from recommender.serving.profiles import UserScorer
from recommender.serving.reranker import (
    breakdown,
    candidate_similarity,
    check_weights,
    mmr_order,
)
from recommender.serving.similarity import ItemNeighbours, SimilarItems

_STRATEGY = {
    V.SEGMENT_TRAINABLE: (V.STRATEGY_CF, False, None),
    V.SEGMENT_COLD: (V.STRATEGY_CONTENT, True, V.FALLBACK_COLD_HYBRID),
    V.SEGMENT_UNKNOWN: (V.STRATEGY_POPULARITY, True, V.FALLBACK_POPULARITY),
}
_NO_FILTERS = Filters()
_DECIMALS = 6  # scores are rounded so batched and single BLAS calls cannot reorder near-ties
_WARMUP_CHUNK = 256
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recommendation:
    """One user's result: routed segment, strategy and ranked product records."""

    user_id: str
    segment: str
    items: list[dict[str, Any]]

    @property
    def strategy(self) -> str:
        return _STRATEGY[self.segment][0]

    @property
    def is_fallback(self) -> bool:
        return _STRATEGY[self.segment][1]

    @property
    def fallback_method(self) -> str | None:
        return _STRATEGY[self.segment][2]

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "segment": self.segment,
            "strategy": self.strategy,
            "is_fallback": self.is_fallback,
            "fallback_method": self.fallback_method,
            "recommendations": self.items,
        }


class Engine:
    """Answers recommendation and similar-item queries from one :class:`ModelBundle`.

    The engine never mutates the bundle; its caches belong to the same model version.
    """

    def __init__(self, bundle: ModelBundle, caches: ServingCaches, settings: ServingSettings):
        self.bundle = bundle
        self.caches = caches
        self.settings = settings
        self._embeddings = bundle.model.embeddings
        self._tiebreak = np.arange(bundle.n_items, dtype=np.float64) * 1e-11
        self.scorer = UserScorer(bundle, caches.user_profiles)
        self.neighbours = ItemNeighbours(bundle, caches.item_similarity, settings)

    # ------------------------------------------------------------------ public API (validated)
    def recommend(
        self,
        user_id: str | int,
        topk: int | None = None,
        exclude_seen: bool = True,
        filters: Filters | Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        weights: Mapping[str, float] | None = None,
        explain: bool = False,
    ) -> Recommendation:
        """Top ``topk`` products for one user (see module docstring for routing).

        Answers without ``explain`` are kept in the results cache: the ranking is a pure function
        of (model, user, options), and every user without history shares one entry per options.
        """
        topk, flt, rerank, requested = self._options(topk, filters, rerank, weights)
        user = str(user_id)
        key = None
        if not explain:
            segment = self.segment_of(user)
            # users without history share one entry; a known user has seen items of their own
            owner = user if user in self.bundle.histories.index else None
            weights_key = None if requested is None else tuple(sorted(requested.items()))
            key = (owner, topk, bool(exclude_seen), flt, rerank, weights_key)
            items = self.caches.results.get(key)
            if log.isEnabledFor(logging.DEBUG):
                hit = "hit" if items is not None else "miss"
                log.debug("recommend user=%r segment=%s results cache %s", user, segment, hit)
            if items is not None:
                return Recommendation(user_id=user, segment=segment, items=items)
        result = self._rank([user], topk, exclude_seen, flt, rerank, requested, explain)[0]
        if key is not None:
            self.caches.results.put(key, result.items)
        return result

    def recommend_batch(
        self,
        user_ids: Sequence[str | int],
        topk: int | None = None,
        exclude_seen: bool = True,
        filters: Filters | Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        weights: Mapping[str, float] | None = None,
        explain: bool = False,
    ) -> list[Recommendation]:
        """Recommendations for many users: one ``score_users`` call per segment, in input order."""
        if not user_ids:
            raise InvalidRequestError("user_ids is empty: give at least one user id.")
        topk, flt, rerank, requested = self._options(topk, filters, rerank, weights)
        users = [str(u) for u in user_ids]
        return self._rank(users, topk, exclude_seen, flt, rerank, requested, explain)

    def _options(self, topk, filters, rerank, weights):
        """Validate and normalise request options (the door every public call goes through)."""
        req = self.settings.requests
        topk = req.default_topk if topk is None else int(topk)
        if not 1 <= topk <= req.max_topk:
            raise InvalidRequestError(f"topk={topk}: must be between 1 and {req.max_topk}.")
        if filters is None:
            flt = _NO_FILTERS
        else:
            flt = filters if isinstance(filters, Filters) else Filters.from_mapping(filters)
        requested = check_weights(weights)
        rerank = self.settings.rerank.enabled if rerank is None else bool(rerank)
        return topk, flt, rerank, requested

    def similar_items(
        self, product_id: str | int, topk: int = 10, method: str = V.SIMILARITY_AUTO
    ) -> SimilarItems:
        """Most similar products (see :mod:`.similarity`)."""
        return self.neighbours.similar_items(product_id, topk, method)

    def segment_of(self, user_id: str | int) -> str:
        """The routing segment of a user id."""
        return self.bundle.histories.segment(self.bundle.histories.index.get(str(user_id), -1))

    # ------------------------------------------------------------------ ranking
    def _rank(
        self, users, topk, exclude_seen, flt, rerank, requested, explain
    ) -> list[Recommendation]:
        bundle = self.bundle
        n = bundle.n_items
        rows, segments = self.scorer.route(users)
        scores, used = self.scorer.score(users, rows, segments, requested)
        relevance = scores
        mask = eligibility_mask(bundle.catalogue, flt)
        width = min(n, topk * self.settings.rerank.candidate_multiplier if rerank else topk)
        default_unknown = used.get(V.SEGMENT_UNKNOWN) == bundle.hybrid.for_segment(
            V.SEGMENT_UNKNOWN
        )
        if default_unknown and bool((rows < 0).all()):  # nobody has seen items to exclude
            candidates, cand_scores = self._static_candidates(len(users), mask, width)
        else:
            candidates, cand_scores = self._candidates(scores, rows, mask, exclude_seen, width)
        batch_rows = np.arange(len(users))[:, None]
        diversity = self.settings.rerank.diversity if rerank else 0.0
        sims = None
        if diversity > 0 and self._embeddings is not None:
            sims = candidate_similarity(candidates, self._embeddings, bundle.item_cosine)
        picks = mmr_order(cand_scores, sims, topk, diversity)
        records = bundle.catalogue.records
        valid = picks >= 0
        safe = np.where(valid, picks, 0)
        chosen_items = candidates[batch_rows, safe].tolist()
        chosen_scores = np.round(
            cand_scores[batch_rows, safe].astype(np.float64), _DECIMALS
        ).tolist()
        counts = valid.sum(axis=1).tolist()
        results = []
        for b, user in enumerate(users):
            chosen = chosen_items[b][: counts[b]]
            items = [
                {**records[item], "rank": rank, "score": score}
                for rank, item, score in zip(
                    range(1, counts[b] + 1), chosen, chosen_scores[b], strict=False
                )
            ]
            if explain and items:
                self._explain(items, chosen, rows[b], segments[b], used[segments[b]], relevance[b])
            results.append(Recommendation(user_id=user, segment=segments[b], items=items))
        return results

    def _candidates(self, scores, rows, mask, exclude_seen, width):
        """Best ``width`` eligible items per row, best first: (b, width) items and scores."""
        n = scores.shape[1]
        # float64 ranking keys, negated for argpartition: index·1e-11 − score breaks ties by item
        # index (scores are rounded to 1e-6, so the offset, < 1e-7 for n < 10K, never reorders
        # distinct scores); excluded items get +inf
        keys = np.subtract(self._tiebreak, scores, dtype=np.float64)
        if mask is not None:
            keys[:, ~mask] = np.inf
        if exclude_seen:
            positions, items = self.bundle.histories.seen_coordinates(rows)
            keys[positions, items] = np.inf
        if width < n:
            candidates = np.argpartition(keys, width - 1, axis=1)[:, :width]
        else:
            candidates = np.tile(np.arange(n), (len(rows), 1))
        batch_rows = np.arange(len(rows))[:, None]
        cand_keys = keys[batch_rows, candidates]
        order = np.argsort(cand_keys, axis=1, kind="stable")
        candidates = candidates[batch_rows, order]
        cand_keys = cand_keys[batch_rows, order]
        cand_scores = np.where(np.isfinite(cand_keys), scores[batch_rows, candidates], -np.inf)
        return candidates, cand_scores

    def _static_candidates(self, b, mask, width):
        """:meth:`_candidates` for users without history under default weights, from the
        precomputed order of the unknown-user scores (same total order, no partition)."""
        order = self.bundle.unknown_order
        if mask is not None:
            order = order[mask[order]]
        top = order[:width]
        scores = np.full(width, -np.inf, dtype=np.float32)
        scores[: len(top)] = self.bundle.unknown_scores[top]
        items = np.zeros(width, dtype=np.int64)
        items[: len(top)] = top
        return np.tile(items, (b, 1)), np.tile(scores, (b, 1))

    def _explain(self, items, chosen, row, segment, weights, relevance) -> None:
        hist = self.bundle.histories
        history = hist.liked(row) if row >= 0 else np.zeros(0, dtype=np.int64)
        cf_row = int(hist.cf_rows[row]) if segment == V.SEGMENT_TRAINABLE else None
        signals = signal_breakdown(
            self.bundle.model,
            segment,
            history,
            self.bundle.hybrid.normalisation,
            cf_row,
            recency_decay=self.bundle.hybrid.recency_decay,
        )
        parts_per_item = breakdown(signals, weights, np.array(chosen))
        for item, entry, parts in zip(chosen, items, parts_per_item, strict=True):
            entry["explain"] = {
                "relevance": round(float(relevance[item]), _DECIMALS),
                "signals": parts,
            }

    # ------------------------------------------------------------------ warm-up
    def warm_up(self, report: WarmupReport | None = None) -> WarmupReport:
        """Fill the caches: neighbours of popular products, then most active users' profiles.

        Stops at ``warmup.max_seconds``; the report says how far it got (``partial`` if cut off).
        """
        cfg = self.settings.warmup
        report = report or self.caches.warmup
        report.max_seconds = cfg.max_seconds
        report.started_at = time.time()
        if not cfg.enabled:
            report.state = "disabled"
            return report
        report.state = "running"
        start = time.perf_counter()
        deadline = start + cfg.max_seconds
        cut = False
        for index in self.bundle.popular_order[: cfg.popular_items]:
            if time.perf_counter() > deadline:
                cut = True
                break
            method = self.neighbours.resolve(int(index), V.SIMILARITY_AUTO)
            self.neighbours.neighbours(int(index), method, count=False)
            report.items_warmed += 1
        hist = self.bundle.histories
        active = hist.most_active(cfg.active_users)
        for start_at in range(0, len(active), _WARMUP_CHUNK):
            if cut or time.perf_counter() > deadline:
                cut = True
                break
            chunk = [hist.user_ids[r] for r in active[start_at : start_at + _WARMUP_CHUNK]]
            chunk = [u for u in chunk if u not in self.caches.user_profiles]
            if chunk:
                rows, segments = self.scorer.route(chunk)
                self.scorer.score(chunk, rows, segments, None, count=False)
            report.users_warmed += len(active[start_at : start_at + _WARMUP_CHUNK])
        report.seconds = time.perf_counter() - start
        report.state = "partial" if cut else "done"
        return report
