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
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError
from recommender.scoring import ScoringModel, score_users, signal_breakdown
from recommender.scoring.blend_kernel import warm_up as warm_blend
from recommender.scoring.content_kernel import warm_up as warm_content
from recommender.serving.allocator import retain_heap
from recommender.serving.batch_kernel import warm_up as warm_batch
from recommender.serving.batch_scoring import Answers, rank_chunk
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import ServingCaches, WarmupReport
from recommender.serving.context import (
    blend_for_user,
    context_indices,
    eligible,
    fresh_evidence,
    unseen,
    with_context,
)
from recommender.serving.filters import Filters, eligibility_mask, first_allowed
from recommender.serving.histories import UserHistories
from recommender.serving.live_feed import LiveFeed
from recommender.serving.live_state import LiveState, LiveUser, trainable_fold_in
from recommender.serving.new_products import eligibility, live_model
from recommender.serving.options import OptionArgs, RecommendOptions
from recommender.serving.rank_kernel import (
    NO_COSINE,
    NO_MASK,
    pick,
    rank_row,
    union_top,
    warm_up_union,
)
from recommender.serving.rank_kernel import warm_up as warm_kernel
from recommender.serving.ranked import Ranked
from recommender.serving.reranker import (
    breakdown,
    candidate_similarity,
    mmr_order,
    mmr_order_cosine,
)
from recommender.serving.similarity import ItemNeighbours, SimilarItems
from recommender.serving.user_scorer import LiveFrame, UserScorer

if TYPE_CHECKING:  # annotations only: no runtime dependency on typing_extensions (Python 3.10)
    from typing_extensions import Unpack

_STRATEGY = {
    V.SEGMENT_TRAINABLE: (V.STRATEGY_CF, False, None),
    V.SEGMENT_COLD: (V.STRATEGY_CONTENT, True, V.FALLBACK_COLD_HYBRID),
    V.SEGMENT_UNKNOWN: (V.STRATEGY_POPULARITY, True, V.FALLBACK_POPULARITY),
}
_WARMUP_CHUNK = 256
_NO_ITEMS = np.zeros(0, dtype=np.int32)  # no seen items to leave out
_NO_ITEMS.setflags(write=False)  # the type of the histories' (read-only) slices: one kernel
_SCORE_SCALE = 10.0**V.SCORE_DECIMALS  # np.round's factor for the answer's scores
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recommendation:
    """One user's result: routed segment, strategy and ranking (:attr:`items`: the records)."""

    user_id: str
    segment: str
    ranked: Ranked

    @cached_property
    def items(self) -> list[dict[str, Any]]:
        """The ranked product records (built on first use; see :mod:`.ranked`)."""
        return self.ranked.records()

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


def compile_kernels(bundle: ModelBundle) -> None:
    """Compile (or load from numba's on-disk cache) the one-request path's kernels for the
    argument types ``bundle``'s arrays give them. Every engine does it when built; a preloading
    master (``service/preload.py``) does it once before forking, so its workers inherit the
    compiled code instead of each compiling it (~1.9 s of CPU the first time a checkout or an
    image starts, before numba's cache exists)."""
    warm_blend(bundle.model.static_normalised.get(bundle.hybrid.normalisation, {}).values())
    warm_content(bundle.model.item_cosine)
    warm_kernel(bundle.unknown_scores, bundle.histories.indices[:0], bundle.item_cosine)
    if bundle.model.candidates is not None:
        warm_up_union(bundle.n_items, bundle.histories.indices[:0], bundle.item_cosine)
    hist = bundle.histories  # and the batch path's (.batch_kernel)
    warm_batch(
        bundle.n_items, np.asarray(hist.indptr), np.asarray(hist.indices), bundle.item_cosine
    )


def _seen_coordinates(hist: UserHistories, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch positions, item indices) of every seen item of ``rows`` (-1 = unknown user): the
    CSR slices of the whole batch gathered at once."""
    known = np.flatnonzero(rows >= 0)
    starts = hist.indptr[rows[known]]
    lengths = hist.indptr[rows[known] + 1] - starts
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    entries = np.arange(total, dtype=np.int64) + np.repeat(starts - ends + lengths, lengths)
    return np.repeat(known, lengths), hist.indices[entries]


def _chosen(
    picks: np.ndarray, candidates: np.ndarray, cand_scores: np.ndarray
) -> tuple[list[list[int]], list[list[float]], list[int]]:
    """Per row: the picked items, their scores rounded to ``V.SCORE_DECIMALS`` and how many were
    picked (``picks``: positions into the candidates, ``-1`` after a row ran out)."""
    if len(picks) == 1:  # one request: the picks are a prefix, read on 1-D views
        count = int(np.count_nonzero(picks[0] >= 0))
        taken = picks[0, :count]
        scores = np.round(cand_scores[0, taken].astype(np.float64), V.SCORE_DECIMALS)
        return [candidates[0, taken].tolist()], [scores.tolist()], [count]
    batch_rows = np.arange(len(picks))[:, None]
    valid = picks >= 0
    safe = np.where(valid, picks, 0)
    chosen_items = candidates[batch_rows, safe].tolist()
    chosen_scores = np.round(
        cand_scores[batch_rows, safe].astype(np.float64), V.SCORE_DECIMALS
    ).tolist()
    return chosen_items, chosen_scores, valid.sum(axis=1).tolist()


class _LiveRecords(Sequence[dict[str, Any]]):
    """The catalogue's response records with live updates (price, name ...) applied."""

    def __init__(self, live: LiveState) -> None:
        self._live = live

    def __len__(self) -> int:
        return self._live.bundle.n_items

    def __getitem__(self, item: Any) -> Any:
        return self._live.record(item)


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
        retain_heap(settings.batch.retain_heap_mb)  # the batch path's arrays reused (.allocator)
        self._embeddings = bundle.model.embeddings
        # long enough for the appended new products too (see .new_products)
        size = bundle.n_items + settings.events.max_new_products
        self._tiebreak = np.arange(size, dtype=np.float64) * 1e-11
        self.scorer = UserScorer(bundle, caches.user_profiles)
        self.neighbours = ItemNeighbours(bundle, caches.item_similarity, settings)
        self.live: LiveState | None = None  # set by the holder when an event store is configured
        self.feed: LiveFeed | None = None
        self._live_model: tuple[int, ScoringModel, np.ndarray, np.ndarray] | None = None
        self._live_model_lock = threading.Lock()
        compile_kernels(bundle)  # the compiled blend and ranking steps, before the first request
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
        self.sync_live()
        context = context_indices(
            self.bundle, self.live, opts.context
        )  # checked first: a bad id is a 422
        live_user = self.live.user(user) if self.live is not None else None
        frame = self._live_frame_model()  # live popularity as of now: its version keys answers
        row = self.bundle.histories.index.get(user, -1)
        if not opts.explain:
            segment = self._segment_of(row, live_user)
            if context is not None and segment == V.SEGMENT_UNKNOWN:
                segment = V.SEGMENT_COLD  # the context is their history (see _rank)
            # users without history share one entry; a known user has seen items of their own
            owner = user if row >= 0 or live_user is not None else None
            gate = self._gate_key(row, live_user, frame[1])
            key = (owner, opts.digest + self._live_key(live_user) + gate)
            ranked = self.caches.results.get(key)
            if log.isEnabledFor(logging.DEBUG):
                hit = "hit" if ranked is not None else "miss"
                log.debug("recommend user=%r segment=%s results cache %s", user, segment, hit)
            if ranked is not None:
                return Recommendation(user_id=user, segment=segment, ranked=ranked)
        if opts.explain or context is not None or live_user is not None:
            result = self._rank([user], opts)[0]
        else:  # most requests: no live evidence of the user's own, no context
            result = self._rank_one(user, row, opts, frame)
        if key is not None:
            self.caches.results.put(key, result.ranked)
        return result

    def recommend_batch(
        self,
        user_ids: Sequence[str | int],
        options: RecommendOptions | None = None,
        **loose: Unpack[OptionArgs],
    ) -> list[Recommendation]:
        """Recommendations for many users in input order: one ``score_users`` call per segment
        and chunk of ``batch.chunk_users`` users (arrays of a chunk stay in the CPU caches)."""
        opts = self._resolve(options, loose)
        chunks = self.recommend_chunks(user_ids, opts, self.settings.batch.chunk_users)
        return [r for chunk in chunks for r in chunk]

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
        self.sync_live()
        context_indices(
            self.bundle, self.live, options.context
        )  # a bad id is a 422 now, not in a later chunk
        size = len(users) if chunk_users is None else max(1, int(chunk_users))
        memo = Answers()  # a later chunk reuses the answers of users with the same history
        return (self._rank(users[i : i + size], options, memo) for i in range(0, len(users), size))

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
        self,
        product_id: str | int,
        topk: int = 10,
        method: str = V.SIMILARITY_AUTO,
        user_id: str | int | None = None,
        filters: Filters | Mapping[str, Any] | None = None,
    ) -> SimilarItems:
        """Most similar products (see :mod:`.similarity`); unavailable products left out.

        ``filters`` keep the neighbours that match them (as in :meth:`recommend`). With
        ``user_id`` the neighbours the user has seen are left out and the rest re-ranked for
        them: ``(1 − w) · similarity + w · hybrid score``, both min-max scaled over the
        neighbours, ``w = rerank.similar_user_weight`` and the hybrid score the one
        :meth:`recommend` ranks the user by; ``score`` is then that blend. Either way the
        answer comes from the product's ``requests.max_similar_topk`` nearest neighbours, so it
        may hold fewer than ``topk`` products.
        """
        self.sync_live()
        if user_id is None and filters is None:
            return self.neighbours.similar_items(product_id, topk, method, self.live)
        found = self.neighbours.candidates(product_id, topk, method, self.live)
        items, sims = found.neighbours, np.asarray(found.scores, dtype=np.float64)
        if filters is not None:
            flt = filters if isinstance(filters, Filters) else Filters.from_mapping(filters)
            keep = eligible(self.bundle, self.live, items, flt)
            items, sims = items[keep], sims[keep]
        if user_id is None:
            return found.answer(items, sims, topk)
        user = str(user_id)
        live_user = self.live.user(user) if self.live is not None else None
        keep = unseen(self.bundle, user, live_user, items)
        items, sims = items[keep], sims[keep]
        if items.size:
            relevance = self._user_relevance(user, live_user)
            weight = self.settings.rerank.similar_user_weight
            items, sims = blend_for_user(items, sims, relevance, weight)
        return found.answer(items, sims, topk)

    def _user_relevance(self, user: str, live_user: LiveUser | None) -> np.ndarray:
        """The user's hybrid scores under the model's weights, as :meth:`recommend` ranks them
        (live popularity, new products and live positives included; profile cache used)."""
        lives = None if self.live is None else [live_user]
        frame = None
        if self.live is not None:
            version, model, unknown_scores, _ = self._live_frame_model()
            fold = trainable_fold_in(self.settings.events.trainable_fold_in, self.bundle.info)
            frame = LiveFrame(model, unknown_scores, version, lives or [], fold)
        rows, segments = self.scorer.route([user], lives)
        # the neighbours need a relevance each: exact when the model ranks ANN candidates only
        exact = self.bundle.model.candidates is not None
        scores, _ = self.scorer.score([user], rows, segments, None, live=frame, exact=exact)
        return scores[0]

    def segment_of(self, user_id: str | int) -> str:
        """The routing segment of a user id (live events included)."""
        user = str(user_id)
        return self._segment(user, self.live.user(user) if self.live is not None else None)

    def _segment(self, user: str, live_user: LiveUser | None) -> str:
        return self._segment_of(self.bundle.histories.index.get(user, -1), live_user)

    def _segment_of(self, row: int, live_user: LiveUser | None) -> str:
        """The segment of history row ``row`` (-1: never seen) with the user's live events."""
        segment = self.bundle.histories.segment(row)
        if segment == V.SEGMENT_UNKNOWN and live_user is not None and live_user.liked.size:
            return V.SEGMENT_COLD
        return segment

    # ------------------------------------------------------------------ live state
    def sync_live(self) -> None:
        """Read-your-writes: apply what the store acknowledged since the last look (cheap
        when nothing is new; never raises, see :class:`LiveFeed`)."""
        if self.feed is not None and self.live is not None:
            self.feed.sync(self.live)

    def _live_key(self, live_user: LiveUser | None) -> bytes:
        """Appended to a results-cache key: the user's live version, popularity and catalogue
        versions, so that an event or update never serves an answer computed before it."""
        live = self.live  # (its popularity version brought up to date by _live_frame_model)
        if live is None:
            return b""
        version = 0 if live_user is None else live_user.version
        if not (version or live.popularity_version or live.catalogue_version):
            return b""
        return struct.pack("<qqq", version, live.popularity_version, live.catalogue_version)

    def _gate_key(self, row: int, live_user: LiveUser | None, model: ScoringModel) -> bytes:
        """``b"stale"`` when history row ``row`` is past the stale gate on ``model`` (the live
        frame's; answers differ on each side of it, and a user crosses it with no event),
        else empty."""
        bundle = self.bundle
        if bundle.stale_model is None or (live_user is not None and live_user.liked.size):
            return b""
        rows = np.array([row], dtype=np.int64)
        return b"stale" if self.scorer.stale(rows, model)[0] else b""

    def _live_frame_model(self) -> tuple[int, ScoringModel, np.ndarray, np.ndarray]:
        """(popularity version, model, unknown scores, unknown order) under live popularity,
        over the model's items and the new products (:func:`.new_products.live_model`)."""
        live = self.live
        bundle = self.bundle
        popularity, items = (None, None) if live is None else live.popularity_frame()
        if live is None or items is None or (popularity is None and not items.k):
            return 0, bundle.model, bundle.unknown_scores, bundle.unknown_order
        version = live.popularity_version
        current = self._live_model
        if current is not None and current[0] == version:
            return current
        with self._live_model_lock:
            current = self._live_model
            if current is not None and current[0] >= version:
                return current
            model = live_model(bundle.model, popularity, items)
            unknown = score_users(
                model,
                V.SEGMENT_UNKNOWN,
                [np.zeros(0, dtype=np.int64)],
                bundle.hybrid.for_segment(V.SEGMENT_UNKNOWN),
                bundle.hybrid.normalisation,
            )[0]
            scores = np.round(unknown, V.SCORE_DECIMALS).astype(np.float32)
            order = np.lexsort((np.arange(model.n_items), -scores))
            scores.setflags(write=False)
            order.setflags(write=False)
            self._live_model = (version, model, scores, order)
            return self._live_model

    # ------------------------------------------------------------------ ranking
    def _rank(
        self, users: list[str], options: RecommendOptions, memo: Answers | None = None
    ) -> list[Recommendation]:
        if len(users) > 1 and not options.explain and not options.context:
            # a chunk: scored together (.batch_scoring)
            return rank_chunk(self, users, options, memo)
        return self._rank_each(users, options)

    def _rank_one(
        self,
        user: str,
        row: int,
        options: RecommendOptions,
        frame: tuple[int, ScoringModel, np.ndarray, np.ndarray],
    ) -> Recommendation:
        """:meth:`_rank_each` of one request without ``explain``, context items or live events
        of the user (most of a storefront's traffic): the same scores, candidates and picks
        (pinned against it in ``tests/recommender/serving/test_single_request.py``) without
        the batch's per-position lists, live frame and weight dicts. ``row``: the user's
        history row (-1: never seen); ``frame``: :meth:`_live_frame_model`. Under the ANN
        candidate stage a trainable or cold user goes through :meth:`_rank_union_one`; an
        ``unknown`` one (no positive interaction) has no search to run and stays here."""
        version, model, unknown_scores, unknown_order = frame
        hist = self.bundle.histories
        segment = hist.segment(row)
        if model.candidates is not None and segment != V.SEGMENT_UNKNOWN:
            return self._rank_union_one(user, row, segment, options, model, version)
        scorer = self.scorer
        scores, weights = scorer.score_one(
            user, row, segment, options.weight_map, model, version, unknown_scores
        )
        n = model.n_items
        mask = self._eligible(options, self.live, n)
        if row < 0 and weights == scorer.default_weights(V.SEGMENT_UNKNOWN):  # nothing seen
            topk = options.topk
            width = min(
                n, topk * self.settings.rerank.candidate_multiplier if options.rerank else topk
            )
            candidates, cand_scores = self._static_candidates(
                1, mask, width, unknown_order, scores=unknown_scores
            )
            chosen_items, chosen_scores, counts = self._pick(
                candidates, cand_scores, options, model
            )
            chosen, rounded = chosen_items[0][: counts[0]], chosen_scores[0][: counts[0]]
        else:
            chosen, rounded = self._rank_row(scores, row, mask, options, model)
        ranked = Ranked(chosen, rounded, self._records(chosen))
        return Recommendation(user_id=user, segment=segment, ranked=ranked)

    def _rank_row(
        self,
        scores: np.ndarray,
        row: int,
        mask: np.ndarray | None,
        options: RecommendOptions,
        model: ScoringModel,
    ) -> tuple[list[int], list[float]]:
        """:meth:`_candidates_one` and :meth:`_pick` of one stored user's (or a known user's
        without history) ``(n,)`` scores: the picked items and rounded scores, through
        :func:`.rank_kernel.rank_row` when MMR reads the precomputed cosine (or none)."""
        n = model.n_items
        topk = options.topk
        width = min(n, topk * self.settings.rerank.candidate_multiplier if options.rerank else topk)
        diversity = self._diversity(options, model)
        cosine = self._cosine(model) if diversity > 0 else NO_COSINE
        if cosine is not None:  # one compiled pass (.rank_kernel)
            hist = self.bundle.histories
            seen = hist.items(row) if options.exclude_seen and row >= 0 else _NO_ITEMS
            eligible = NO_MASK if mask is None else mask
            lam = np.float32(diversity)
            chosen_at, rounded = rank_row(
                scores, eligible, seen, width, topk, lam, cosine, _SCORE_SCALE
            )
            return chosen_at.tolist(), rounded.tolist()
        candidates, cand_scores = self._candidates_one(
            scores, row, mask, options.exclude_seen, width, None
        )
        chosen_items, chosen_scores, counts = self._pick(candidates, cand_scores, options, model)
        return chosen_items[0][: counts[0]], chosen_scores[0][: counts[0]]

    def _rank_union_one(
        self,
        user: str,
        row: int,
        segment: str,
        options: RecommendOptions,
        model: ScoringModel,
        version: int,
    ) -> Recommendation:
        """:meth:`_rank_each` of one stored trainable or cold user under the ANN candidate
        stage: one search, then the user's candidate union ranked by itself
        (:func:`.rank_kernel.union_top`, :func:`.rank_kernel.pick`) instead of an ``(n,)``
        row that is ``-inf`` outside it; the same exact fallback when filters or exclusions
        leave fewer than ``topk`` candidates (pinned in ``test_single_request.py``)."""
        scorer = self.scorer
        items, scores, weights = scorer.score_union_one(
            user, row, segment, options.weight_map, model, version
        )
        n = model.n_items
        mask = self._eligible(options, self.live, n)
        topk = options.topk
        width = min(n, topk * self.settings.rerank.candidate_multiplier if options.rerank else topk)
        short = min(topk, width)
        if items is None:  # a dense profile
            chosen, rounded = self._rank_row(scores, row, mask, options, model)
        else:
            seen = self.bundle.histories.items(row) if options.exclude_seen else _NO_ITEMS
            eligible = NO_MASK if mask is None else mask
            found, values = union_top(items, scores, eligible, seen, width)
            chosen, rounded = self._union_picks(
                found, values, items, scores, row, mask, options, model, width
            )
        if len(chosen) < short:  # too few ANN candidates left: exact, as _rank_each
            exact = scorer.exact_one(row, segment, weights, model)
            chosen, rounded = self._rank_row(exact, row, mask, options, model)
        ranked = Ranked(chosen, rounded, self._records(chosen))
        return Recommendation(user_id=user, segment=segment, ranked=ranked)

    def _union_picks(
        self,
        found: np.ndarray,
        values: np.ndarray,
        items: np.ndarray,
        scores: np.ndarray,
        row: int,
        mask: np.ndarray | None,
        options: RecommendOptions,
        model: ScoringModel,
        width: int,
    ) -> tuple[list[int], list[float]]:
        """MMR over :func:`.rank_kernel.union_top`'s candidates ``found`` (their ``values``)
        as :meth:`_pick` orders the dense row's: over the precomputed cosine, else over the
        candidates' embeddings' similarities, the ``(1, width, width)`` product ``_pick``
        forms; a row with fewer than ``width`` candidates then goes through the dense row
        itself (``_pick`` multiplies its padding too)."""
        topk = options.topk
        diversity = self._diversity(options, model)
        lam = np.float32(diversity)
        cosine: np.ndarray | None = NO_COSINE
        keys = found
        if diversity > 0 and width > 1:
            cosine = self._cosine(model)
            if cosine is None:
                if found.size < width:  # (rare: filters leave fewer than width candidates)
                    dense = np.full(model.n_items, -np.inf, dtype=np.float32)
                    dense[items] = scores
                    return self._rank_row(dense, row, mask, options, model)
                cosine = candidate_similarity(found[None, :], model.embeddings, None)[0]
                keys = np.arange(found.size, dtype=np.int64)
        assert cosine is not None
        chosen, rounded = pick(found, values, keys, width, topk, lam, cosine, _SCORE_SCALE)
        return chosen.tolist(), rounded.tolist()

    def _diversity(self, options: RecommendOptions, model: ScoringModel) -> float:
        """The MMR λ of a request: its diversity (else ``rerank.diversity``), 0 without
        ``rerank`` or without embeddings to compare candidates with."""
        if not options.rerank or model.embeddings is None:
            return 0.0
        wanted = options.diversity
        return self.settings.rerank.diversity if wanted is None else wanted

    def _cosine(self, model: ScoringModel) -> np.ndarray | None:
        """The precomputed ``(n, n)`` cosine MMR reads for ``model``'s items (None: not
        precomputed, or new products past it: MMR multiplies the embeddings)."""
        return self.bundle.item_cosine if model.n_items == self.bundle.n_items else None

    def _records(self, chosen: list[int]) -> Sequence[Any] | Mapping[int, Any]:
        """Where the ranked products' response records come from: the catalogue's (which
        never change), or their live records read now, as ranked, after live updates."""
        live = self.live
        if live is None or not live.has_catalogue_changes:
            return self.bundle.catalogue.records
        live_records = _LiveRecords(live)
        return {i: live_records[i] for i in chosen}

    def _eligible(
        self, options: RecommendOptions, live: LiveState | None, n: int
    ) -> np.ndarray | None:
        """Items a request may get (None = all): its filters, live availability and prices, and
        the new products after the model's ``n`` items (shared by both ranking paths)."""
        bundle = self.bundle
        mask = eligibility_mask(
            bundle.catalogue, options.filters, price=None if live is None else live.price
        )
        if live is not None and live.has_catalogue_changes:
            mask = live.available if mask is None else mask & live.available
        if n > bundle.n_items and live is not None:
            mask = eligibility(mask, live.new_items, options.filters, bundle.n_items)
            mask = None if mask is None else mask[:n]  # (a snapshot newer than the frame)
        return mask

    def _pick(
        self,
        candidates: np.ndarray,
        cand_scores: np.ndarray,
        options: RecommendOptions,
        model: ScoringModel,
    ) -> tuple[list[list[int]], list[list[float]], list[int]]:
        """MMR over each row's candidates (diversity as requested, 0 without ``rerank``), then
        :func:`_chosen` (shared by both ranking paths)."""
        wanted = self.settings.rerank.diversity if options.diversity is None else options.diversity
        diversity = wanted if options.rerank else 0.0
        sims = None
        if diversity > 0 and model.embeddings is not None:
            cosine = self.bundle.item_cosine if model.n_items == self.bundle.n_items else None
            if cosine is not None and len(candidates) > 1:  # a batch: the rows MMR reads
                picks = mmr_order_cosine(cand_scores, candidates, cosine, options.topk, diversity)
                return _chosen(picks, candidates, cand_scores)
            sims = candidate_similarity(candidates, model.embeddings, cosine)
        picks = mmr_order(cand_scores, sims, options.topk, diversity)
        return _chosen(picks, candidates, cand_scores)

    def _rank_each(self, users: list[str], options: RecommendOptions) -> list[Recommendation]:
        """The general path: any batch, live events, ``explain`` and ``context_items`` included."""
        bundle = self.bundle
        topk, rerank = options.topk, options.rerank
        live = self.live
        lives = [live.user(u) for u in users] if live is not None else None
        frame = None
        model = bundle.model
        unknown_order = bundle.unknown_order
        if live is not None:
            version, model, unknown_scores, unknown_order = self._live_frame_model()
            fold = trainable_fold_in(self.settings.events.trainable_fold_in, bundle.info)
            frame = LiveFrame(model, unknown_scores, version, lives or [], fold)
        context = context_indices(self.bundle, self.live, options.context)
        if context is not None:
            context = context[context < model.n_items]  # (new products newer than the frame)
        if context is not None and context.size:
            # the context as each user's newest live positives (and seen: excluded like them)
            lives = lives or [None] * len(users)
            fresh = [
                fresh_evidence(bundle, u, entry, context)
                for u, entry in zip(users, lives, strict=True)
            ]
            lives = [with_context(entry, context) for entry in lives]
            fold = trainable_fold_in(self.settings.events.trainable_fold_in, bundle.info)
            version = 0 if frame is None else frame.popularity_version
            unknown = bundle.unknown_scores if frame is None else frame.unknown_scores
            frame = LiveFrame(model, unknown, version, lives, fold, context, fresh)
        rows, segments = self.scorer.route(users, lives)
        scores, used = self.scorer.score(users, rows, segments, options.weight_map, live=frame)
        relevance = scores
        n = model.n_items  # the model's items, then the new products when there are some
        mask = self._eligible(options, live, n)
        width = min(n, topk * self.settings.rerank.candidate_multiplier if rerank else topk)
        default_unknown = used.get(V.SEGMENT_UNKNOWN) == bundle.hybrid.for_segment(
            V.SEGMENT_UNKNOWN
        )
        nobody_known = rows[0] < 0 if len(rows) == 1 else bool((rows < 0).all())
        nothing_seen = nobody_known and not any(lives or ())
        if default_unknown and nothing_seen:  # nobody has seen items to exclude
            candidates, cand_scores = self._static_candidates(
                len(users), mask, width, unknown_order, frame
            )
        else:
            candidates, cand_scores = self._candidates(
                scores, rows, mask, options.exclude_seen, width, lives
            )
            if model.candidates is not None and self._short(cand_scores, topk, width).any():
                # filters (or exclusions) left fewer than topk of the ANN candidates: exact
                scores, used = self.scorer.score(
                    users, rows, segments, options.weight_map, live=frame, exact=True
                )
                relevance = scores
                candidates, cand_scores = self._candidates(
                    scores, rows, mask, options.exclude_seen, width, lives
                )
        chosen_items, chosen_scores, counts = self._pick(candidates, cand_scores, options, model)
        results: list[Recommendation] = []
        for b, user in enumerate(users):
            count = counts[b]
            chosen = chosen_items[b][:count]
            explains = None
            if options.explain and count:
                explains = self._explain(
                    chosen, rows[b], segments[b], used[segments[b]], relevance[b], frame, b
                )
                if frame is not None and frame.context is not None:
                    in_context = [str(pid) for pid in options.context]
                    for entry in explains:  # the signals above were scored with them
                        entry["context_items"] = in_context
            ranked = Ranked(chosen, chosen_scores[b][:count], self._records(chosen), explains)
            results.append(Recommendation(user_id=user, segment=segments[b], ranked=ranked))
        return results

    @staticmethod
    def _short(cand_scores: np.ndarray, topk: int, width: int) -> np.ndarray:
        """``(b,)`` bool: rows with fewer than ``topk`` rankable items among their candidates
        (the candidate stage then falls back to exact scoring for them)."""
        return np.count_nonzero(cand_scores > -np.inf, axis=1) < min(topk, width)

    def _candidates(
        self,
        scores: np.ndarray,
        rows: np.ndarray,
        mask: np.ndarray | None,
        exclude_seen: bool,
        width: int,
        lives: Sequence[LiveUser | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``width`` eligible items per row, best first: (b, width) items and scores."""
        n = scores.shape[1]
        if len(rows) == 1:
            return self._candidates_one(scores[0], int(rows[0]), mask, exclude_seen, width, lives)
        # float64 ranking keys, negated for argpartition: index·1e-11 − score breaks ties by item
        # index (scores are rounded to 1e-6, so the offset, < 1e-7 for n < 10K, never reorders
        # distinct scores); excluded items get +inf
        keys = np.subtract(self._tiebreak[:n], scores, dtype=np.float64)
        if mask is not None:
            keys[:, ~mask] = np.inf
        if exclude_seen:
            positions, items = _seen_coordinates(self.bundle.histories, rows)
            keys[positions, items] = np.inf
            for position, entry in enumerate(lives or ()):
                if entry is not None and entry.seen.size:
                    keys[position, entry.seen] = np.inf
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

    def _candidates_one(
        self,
        scores: np.ndarray,
        row: int,
        mask: np.ndarray | None,
        exclude_seen: bool,
        width: int,
        lives: Sequence[LiveUser | None] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_candidates` of one user on 1-D float32 scores: the ``width``-th best score
        is a threshold (``np.partition``), the items at or above it come in index order and a
        stable argsort of their negated scores puts them in the order of the float64 keys
        ``index·1e-11 − score`` (ties by index; see :func:`.batch_scoring.top_candidates`): the
        same candidates and scores as a batch of one, without a float64 copy of the row.
        Slots past a row's eligible items hold ``-inf`` (their items are never picked)."""
        n = scores.shape[0]
        ranked = scores.copy()  # a profile may be the cache's own (read-only) vector
        if mask is not None:
            ranked[~mask] = -np.inf
        if exclude_seen:
            if row >= 0:
                hist = self.bundle.histories
                ranked[hist.indices[hist.indptr[row] : hist.indptr[row + 1]]] = -np.inf
            entry = lives[0] if lives else None
            if entry is not None and entry.seen.size:
                ranked[entry.seen] = -np.inf
        if width < n:
            threshold = np.partition(ranked, n - width)[n - width]
            items = np.flatnonzero(ranked >= threshold)
            values = ranked[items]
            if items.size > width:  # ties at the threshold: only the lowest-index ones needed
                tied = np.flatnonzero(values == threshold)
                keep = np.ones(items.size, dtype=bool)
                keep[tied[width - (items.size - tied.size) :]] = False
                items, values = items[keep], values[keep]
        else:
            items, values = np.arange(n), ranked
        order = np.argsort(-values, kind="stable")[:width]
        return items[order][None, :], values[order][None, :]

    def _static_candidates(
        self,
        b: int,
        mask: np.ndarray | None,
        width: int,
        order: np.ndarray | None = None,
        frame: LiveFrame | None = None,
        scores: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_candidates` for users without history under default weights, from the
        precomputed order of the unknown-user scores (same total order, no partition);
        ``scores``: those scores (default: the frame's, else the bundle's)."""
        order = self.bundle.unknown_order if order is None else order
        unknown_scores = self.bundle.unknown_scores if frame is None else frame.unknown_scores
        unknown_scores = unknown_scores if scores is None else scores
        top = order[:width] if mask is None else first_allowed(order, mask, width)
        scores = np.full(width, -np.inf, dtype=np.float32)
        scores[: len(top)] = unknown_scores[top]
        items = np.zeros(width, dtype=np.int64)
        items[: len(top)] = top
        return np.tile(items, (b, 1)), np.tile(scores, (b, 1))

    def _explain(
        self,
        chosen: list[int],
        row: int,
        segment: str,
        weights: Mapping[str, float],
        relevance: np.ndarray,
        frame: LiveFrame | None = None,
        position: int = 0,
    ) -> list[dict[str, Any]]:
        """Each item's signals as they were scored: the live model (live popularity, new
        products) and history (live positives; a trainable user's CF folded in from it)."""
        hist = self.bundle.histories
        history = self.scorer.history(row, frame, position)
        cf_row = int(hist.cf_rows[row]) if segment == V.SEGMENT_TRAINABLE else None
        live_user = None if frame is None else frame.users[position]
        refolded = (
            segment == V.SEGMENT_TRAINABLE
            and frame is not None
            and frame.trainable_fold_in
            and live_user is not None
            and self.scorer._has_live_positives(frame, position)
        )
        if refolded:
            segment, cf_row = V.SEGMENT_COLD, None
        model = self.bundle.model if frame is None else frame.model
        stale = self.bundle.stale_model
        if stale is not None and self.scorer.stale(np.array([row]), model, frame, [position])[0]:
            model = stale  # scored past the stale gate: its popularity
        signals = signal_breakdown(
            model.refold_model if refolded else model,
            segment,
            history,
            self.bundle.hybrid.normalisation,
            cf_row,
            recency_decay=self.bundle.hybrid.recency_decay,
            # ranked over an ANN candidate union (-inf outside it): normalised over that union
            weights=weights if bool(np.isneginf(relevance).any()) else None,
        )
        parts_per_item = breakdown(signals, weights, np.array(chosen))
        return [
            {"relevance": round(float(relevance[item]), V.SCORE_DECIMALS), "signals": parts}
            for item, parts in zip(chosen, parts_per_item, strict=True)
        ]

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
