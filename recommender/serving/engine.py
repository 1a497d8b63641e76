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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError
from recommender.scoring import signal_breakdown
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import ServingCaches, WarmupReport
from recommender.serving.filters import eligibility_mask
from recommender.serving.options import OptionArgs, RecommendOptions
from recommender.serving.reranker import breakdown, candidate_similarity, mmr_order
from recommender.serving.similarity import ItemNeighbours, SimilarItems
from recommender.serving.user_scorer import UserScorer

if TYPE_CHECKING:  # annotations only: no runtime dependency on typing_extensions (Python 3.10)
    from typing_extensions import Unpack

_STRATEGY = {
    V.SEGMENT_TRAINABLE: (V.STRATEGY_CF, False, None),
    V.SEGMENT_COLD: (V.STRATEGY_CONTENT, True, V.FALLBACK_COLD_HYBRID),
    V.SEGMENT_UNKNOWN: (V.STRATEGY_POPULARITY, True, V.FALLBACK_POPULARITY),
}
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

    def __init__(
        self, bundle: ModelBundle, caches: ServingCaches, settings: ServingSettings
    ) -> None:
        self.bundle = bundle
        self.caches = caches
        self.settings = settings
        self._embeddings = bundle.model.embeddings
        self._tiebreak = np.arange(bundle.n_items, dtype=np.float64) * 1e-11
        self.scorer = UserScorer(bundle, caches.user_profiles)
        self.neighbours = ItemNeighbours(bundle, caches.item_similarity, settings)
        caches.bound_entries(
            bundle.n_items,
            bundle.catalogue.records[0] if bundle.n_items else {},
            settings.requests.max_topk,
            settings.requests.max_similar_topk,
        )

    # ------------------------------------------------------------------ public API (validated)
    def options(self, **loose: Unpack[OptionArgs]) -> RecommendOptions:
        """Validated :class:`RecommendOptions` under this engine's settings (defaults, limits)."""
        return RecommendOptions.parse(self.settings, **loose)

    def _resolve(self, options: RecommendOptions | None, loose: OptionArgs) -> RecommendOptions:
        if options is None:
            return self.options(**loose)
        if loose:
            raise TypeError(f"give either options or keyword options, not both: {sorted(loose)}")
        return options

    def recommend(
        self,
        user_id: str | int,
        options: RecommendOptions | None = None,
        **loose: Unpack[OptionArgs],
    ) -> Recommendation:
        """Top ``topk`` products for one user (see module docstring for routing).

        Options come as one :class:`RecommendOptions` or as keywords (``topk=5, filters=...``).
        Answers without ``explain`` are kept in the results cache: the ranking is a pure function
        of (model, user, options), and every user without history shares one entry per options.
        The key is (user id or ``None``, the options' 16-byte digest): a fixed size whatever the
        filters hold.
        """
        opts = self._resolve(options, loose)
        user = str(user_id)
        key = None
        if not opts.explain:
            segment = self.segment_of(user)
            # users without history share one entry; a known user has seen items of their own
            owner = user if user in self.bundle.histories.index else None
            key = (owner, opts.digest)
            items = self.caches.results.get(key)
            if log.isEnabledFor(logging.DEBUG):
                hit = "hit" if items is not None else "miss"
                log.debug("recommend user=%r segment=%s results cache %s", user, segment, hit)
            if items is not None:
                return Recommendation(user_id=user, segment=segment, items=items)
        result = self._rank([user], opts)[0]
        if key is not None:
            self.caches.results.put(key, result.items)
        return result

    def recommend_batch(
        self,
        user_ids: Sequence[str | int],
        options: RecommendOptions | None = None,
        **loose: Unpack[OptionArgs],
    ) -> list[Recommendation]:
        """Recommendations for many users: one ``score_users`` call per segment, in input order."""
        opts = self._resolve(options, loose)
        return [r for chunk in self.recommend_chunks(user_ids, opts) for r in chunk]

    def recommend_chunks(
        self,
        user_ids: Sequence[str | int],
        options: RecommendOptions,
        chunk_users: int | None = None,
    ) -> Iterator[list[Recommendation]]:
        """A batch checked now (size, ``topk`` × users), ranked ``chunk_users`` users per step.

        Each ``next()`` ranks one chunk, so a caller can run the chunks on a worker thread and
        let other requests in between; chunks rank every user exactly as one call would.
        """
        users = self._batch_users(user_ids, options)
        size = len(users) if chunk_users is None else max(1, int(chunk_users))
        return (self._rank(users[i : i + size], options) for i in range(0, len(users), size))

    def _batch_users(self, user_ids: Sequence[str | int], options: RecommendOptions) -> list[str]:
        """The batch's ids as strings, after the batch limits of ``requests.*``."""
        limits = self.settings.requests
        count = len(user_ids)
        if not count:
            raise InvalidRequestError("user_ids is empty: give at least one user id.")
        if count > limits.max_batch_size:
            raise InvalidRequestError(
                f"user_ids has {count} ids; at most {limits.max_batch_size} per batch "
                "(requests.max_batch_size). Split the batch."
            )
        total = count * options.topk
        if total > limits.max_batch_items:
            most_users = max(1, limits.max_batch_items // options.topk)
            raise InvalidRequestError(
                f"user_ids × topk = {count} × {options.topk} = {total} recommendations; at most "
                f"{limits.max_batch_items} per batch (requests.max_batch_items). Lower topk to "
                f"{max(1, limits.max_batch_items // count)} or send at most {most_users} users "
                "per batch."
            )
        return [str(u) for u in user_ids]

    def similar_items(
        self, product_id: str | int, topk: int = 10, method: str = V.SIMILARITY_AUTO
    ) -> SimilarItems:
        """Most similar products (see :mod:`.similarity`)."""
        return self.neighbours.similar_items(product_id, topk, method)

    def segment_of(self, user_id: str | int) -> str:
        """The routing segment of a user id."""
        return self.bundle.histories.segment(self.bundle.histories.index.get(str(user_id), -1))

    # ------------------------------------------------------------------ ranking
    def _rank(self, users: list[str], options: RecommendOptions) -> list[Recommendation]:
        bundle = self.bundle
        n = bundle.n_items
        topk, rerank = options.topk, options.rerank
        rows, segments = self.scorer.route(users)
        scores, used = self.scorer.score(users, rows, segments, options.weight_map)
        relevance = scores
        mask = eligibility_mask(bundle.catalogue, options.filters)
        width = min(n, topk * self.settings.rerank.candidate_multiplier if rerank else topk)
        default_unknown = used.get(V.SEGMENT_UNKNOWN) == bundle.hybrid.for_segment(
            V.SEGMENT_UNKNOWN
        )
        if default_unknown and bool((rows < 0).all()):  # nobody has seen items to exclude
            candidates, cand_scores = self._static_candidates(len(users), mask, width)
        else:
            candidates, cand_scores = self._candidates(
                scores, rows, mask, options.exclude_seen, width
            )
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
            cand_scores[batch_rows, safe].astype(np.float64), V.SCORE_DECIMALS
        ).tolist()
        counts = valid.sum(axis=1).tolist()
        results: list[Recommendation] = []
        for b, user in enumerate(users):
            chosen = chosen_items[b][: counts[b]]
            items = [
                {**records[item], "rank": rank, "score": score}
                for rank, item, score in zip(
                    range(1, counts[b] + 1), chosen, chosen_scores[b], strict=False
                )
            ]
            if options.explain and items:
                self._explain(items, chosen, rows[b], segments[b], used[segments[b]], relevance[b])
            results.append(Recommendation(user_id=user, segment=segments[b], items=items))
        return results

    def _candidates(
        self,
        scores: np.ndarray,
        rows: np.ndarray,
        mask: np.ndarray | None,
        exclude_seen: bool,
        width: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``width`` eligible items per row, best first: (b, width) items and scores."""
        n = scores.shape[1]
        # float64 ranking keys, negated for argpartition: index·1e-11 − score breaks ties by item
        # index (scores are rounded to 1e-6, so the offset, < 1e-7 for n < 10K, never reorders
        # distinct scores); excluded items get +inf
        keys = np.subtract(self._tiebreak, scores, dtype=np.float64)
        if mask is not None:
            keys[:, ~mask] = np.inf
        if exclude_seen:
            positions, items = self.bundle.histories.seen_coordinates(rows.tolist())
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

    def _static_candidates(
        self, b: int, mask: np.ndarray | None, width: int
    ) -> tuple[np.ndarray, np.ndarray]:
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

    def _explain(
        self,
        items: list[dict[str, Any]],
        chosen: list[int],
        row: int,
        segment: str,
        weights: Mapping[str, float],
        relevance: np.ndarray,
    ) -> None:
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
                "relevance": round(float(relevance[item]), V.SCORE_DECIMALS),
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
