"""Per-user hybrid score vectors: route a user to a segment, score a batch with ``score_users``.

A user's vector under the model's default weights is their *profile*; profiles live in the
user-profile cache (``4·n`` bytes each; a candidate-stage profile only its candidates, a
:class:`~recommender.serving.caches.SparseProfile`). Users without history share the bundle's
precomputed vector (or a memoised one per request weighting). Scores are rounded to
``V.SCORE_DECIMALS`` decimals so that no BLAS rounding difference can reorder near-ties.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender import vocabulary as V
from recommender.scoring import ScoringModel, score_user, score_users
from recommender.scoring.blend_kernel import round_row
from recommender.scoring.candidates import CandidateSearchFailed, candidate_unions
from recommender.serving import caches
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import CountingCache, SparseProfile, pack_profile
from recommender.serving.live_state import LiveUser
from recommender.serving.reranker import segment_weights

UNKNOWN_MEMO_SIZE = 256  # distinct request weightings remembered for users without history
log = logging.getLogger(__name__)
_BROADCAST_LIMIT = 65536  # live x stored history pairs compared directly (see history)
_ROUNDING = np.float32(10.0**V.SCORE_DECIMALS)  # np.round's factor (float32 scores)


@dataclass(frozen=True)
class LiveFrame:
    """What live state changes for one scoring call: the model with live popularity, its
    unknown-user scores and popularity version, and each batch position's live evidence."""

    model: ScoringModel
    unknown_scores: np.ndarray
    popularity_version: int
    users: Sequence[LiveUser | None]
    trainable_fold_in: bool = True
    # the request's context items (cart, product on screen), oldest first: the newest items of
    # every batch position's history, also in ``users``' liked items; such profiles are not cached
    context: np.ndarray | None = None
    # with a context: per position, whether the live evidence holds an item beyond the stored
    # positives (a trainable user's CF row, fit on those, is only folded in again then)
    fresh: Sequence[bool] | None = None


def profile_key(
    user: str, live_version: int | None, popularity_version: int, stale: bool = False
) -> str:
    """A profile's cache key: the user id alone until live events change the profile (the
    user's live version, None without live events; the live popularity's version), a
    stale-gated profile (scored on other popularity) with a suffix."""
    suffix = "\x1fstale" if stale else ""
    if live_version is None and popularity_version == 0:
        return user + suffix
    return f"{user}\x1f{live_version or 0}\x1f{popularity_version}{suffix}"


class UserScorer:
    """Segments and score matrices of users for one bundle, through its user-profile cache."""

    def __init__(
        self, bundle: ModelBundle, cache: CountingCache, clock: Callable[[], float] = time.time
    ) -> None:
        self.bundle = bundle
        self.cache = cache
        self.clock = clock  # "now" of the stale gate (Unix seconds)
        self._unknown_memo: dict[tuple, np.ndarray] = {}
        self._defaults: dict[str, dict[str, float]] = {}  # segment -> its default weights

    def stale(
        self,
        rows: np.ndarray,
        model: ScoringModel,
        live: LiveFrame | None = None,
        positions: Sequence[int] | None = None,
    ) -> np.ndarray:
        """``(len(rows),)`` bool: which users the stale gate scores on ``bundle.stale_model``.

        Those with a stored newest positive more than ``hybrid.stale_after_hours`` before now,
        scored on the built model (live popularity or new products: the live model for all),
        without live positives or context items (those are the newest, i.e. recent).
        ``positions``: each row's batch position in ``live`` (default 0..b-1).
        """
        bundle = self.bundle
        limit = bundle.hybrid.stale_seconds
        out = np.zeros(len(rows), dtype=bool)
        if bundle.stale_model is None or limit is None or model is not bundle.model:
            return out
        if live is not None and live.context is not None:
            return out
        rows = np.asarray(rows, dtype=np.int64)
        known = rows >= 0
        newest = bundle.histories.newest_positive_seconds[np.where(known, rows, 0)]
        out = known & np.isfinite(newest) & (self.clock() - newest > limit)
        if live is not None:
            places = range(len(rows)) if positions is None else positions
            for i, position in enumerate(places):
                if out[i] and self._has_live_positives(live, position):
                    out[i] = False
        return out

    def score(
        self,
        users: Sequence[str],
        rows: np.ndarray,
        segments: list[str],
        requested: Mapping[str, float] | None,
        count: bool = True,
        live: LiveFrame | None = None,
        exact: bool = False,
    ) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
        """(b, n) rounded hybrid scores and the weights used per segment.

        Default-weight profiles come from / go to the cache (``count=False``: warm-up, not
        counted as hits or misses); one ``score_users`` call per segment for the rest.
        ``live``: the model with live popularity, and users' live positives appended to their
        history (a trainable user's CF vector is then folded in from the full history); profile
        cache keys then carry the user's live version and the popularity version.
        ``exact``: over the whole catalogue even when the model has an ANN candidate stage (the
        fallback when filters leave too few candidates); such profiles bypass the cache.
        """
        bundle, hist = self.bundle, self.bundle.histories
        model = bundle.model if live is None else live.model
        if exact:
            model = model.exact_model
        scores = np.empty((len(users), model.n_items), dtype=np.float32)  # + new products
        used: dict[str, dict[str, float]] = {}
        past_gate = self.stale(rows, model, live)
        groups: dict[tuple[str, bool], list[int]] = {}
        for position, segment in enumerate(segments):
            gated = bool(past_gate[position]) and segment != V.SEGMENT_UNKNOWN
            groups.setdefault((segment, gated), []).append(position)
        profiles = self.cache
        debug = log.isEnabledFor(logging.DEBUG)
        base_model = model
        for (segment, gated), positions in groups.items():
            began = time.perf_counter() if debug else 0.0
            weights, is_default = segment_weights(bundle.hybrid, segment, requested)
            used[segment] = weights
            model = bundle.stale_model if gated and bundle.stale_model is not None else base_model
            if exact:
                model = model.exact_model
            if segment == V.SEGMENT_UNKNOWN:
                if live is not None:
                    default = live.unknown_scores
                    vector = default if is_default else self._unknown_scores(weights, live)
                else:
                    vector = bundle.unknown_scores if is_default else self._unknown_scores(weights)
                scores[positions] = vector
                if debug:
                    log.debug(
                        "scored %d %s users with %s weights (shared vector)",
                        len(positions),
                        segment,
                        "default" if is_default else "request",
                    )
                continue
            keys = [self._profile_key(users[p], live, p, gated) for p in positions]
            key_of = dict(zip(positions, keys, strict=True))
            missing = positions
            if is_default and not exact and (live is None or live.context is None):
                missing = []
                for position in positions:
                    cached = profiles.get(key_of[position], count)
                    if cached is None:
                        missing.append(position)
                    elif isinstance(cached, SparseProfile):
                        cached.write_into(scores[position])
                    else:
                        scores[position] = cached
            if debug:
                _log_lookup(segment, len(positions), len(missing), is_default)
            if not missing:
                continue
            histories = [self.history(rows[p], live, p) for p in missing]
            refold = [self._has_live_positives(live, p) for p in missing]
            refold_trainable = live is not None and live.trainable_fold_in
            if segment == V.SEGMENT_TRAINABLE and refold_trainable and any(refold):
                # live positives: the CF vector is folded in from the full history instead of
                # the stored row, which predates them (the other signals as for any trainable);
                # an ALS model refolds with its own user step (ScoringModel.refold_model)
                computed = np.empty((len(missing), bundle.n_items), dtype=np.float32)
                stale = [i for i, r in enumerate(refold) if not r]
                fresh = [i for i, r in enumerate(refold) if r]
                if stale:
                    cf = hist.cf_rows[rows[[missing[i] for i in stale]]]
                    computed[stale] = self._compute(
                        segment, [histories[i] for i in stale], weights, cf, model
                    )
                computed[fresh] = self._compute(
                    V.SEGMENT_COLD, [histories[i] for i in fresh], weights, None, model.refold_model
                )
            else:
                cf_rows = hist.cf_rows[rows[missing]] if segment == V.SEGMENT_TRAINABLE else None
                computed = self._compute(segment, histories, weights, cf_rows, model)
            # one request: its vector is the answer (no copy into ``scores``)
            alone = len(missing) == len(users) and computed.shape == scores.shape
            if alone:
                computed.setflags(write=False)
                scores = computed
            else:
                scores[missing] = computed
            if is_default and not exact and (live is None or live.context is None):
                for i, position in enumerate(missing):
                    key = key_of[position]
                    if count and not profiles.admits(key):  # a first visit (warm-up: stored)
                        continue
                    profiles.put(key, pack_profile(computed[i]), force=True)
            if debug:
                log.debug(
                    "computed %d %s profiles in %.2f ms",
                    len(missing),
                    segment,
                    (time.perf_counter() - began) * 1000,
                )
        return scores, used

    def score_one(
        self,
        user: str,
        row: int,
        segment: str,
        requested: Mapping[str, float] | None,
        model: ScoringModel,
        popularity_version: int = 0,
        unknown_scores: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Mapping[str, float]]:
        """:meth:`score` of one request's user who has no live evidence of their own (no live
        event, no context): their ``(n,)`` rounded scores (read-only: a cached profile or the
        shared unknown vector) and the weights used (:meth:`default_weights` when the
        segment's defaults).

        ``model``, ``popularity_version`` and ``unknown_scores`` are the live frame's (live
        popularity, new products), else the bundle's. The same profile keys, stale gate,
        cache counting and arithmetic as :meth:`score` on a batch of one, without its
        per-segment groups, batch matrix and live bookkeeping (a request's path).
        """
        bundle = self.bundle
        weights, is_default = self._weights(segment, requested)
        if segment == V.SEGMENT_UNKNOWN:
            if is_default:
                shared = bundle.unknown_scores if unknown_scores is None else unknown_scores
                return shared, weights
            return self._unknown_vector(weights, model, popularity_version), weights
        gated = self._gated(row, model)
        if gated:
            model = bundle.stale_model  # type: ignore[assignment]  # not None when gated
        key = profile_key(user, None, popularity_version, gated)
        cached = self.cache.get(key) if is_default else None
        if log.isEnabledFor(logging.DEBUG):  # the line :meth:`score` logs for a batch of one
            _log_lookup(segment, 1, int(cached is None), is_default)
        if isinstance(cached, SparseProfile):
            dense = np.empty(model.n_items, dtype=np.float32)
            cached.write_into(dense)
            return dense, weights
        if cached is not None:
            return cached, weights
        hist = bundle.histories
        cf_row = int(hist.cf_rows[row]) if segment == V.SEGMENT_TRAINABLE else None
        vector = self._compute_one(segment, hist.liked(row), weights, cf_row, model)
        vector.setflags(write=False)  # (a new array: cached as it is, see pack_profile)
        if is_default and self.cache.admits(key):  # a repeat visitor (or admission off)
            self.cache.put(key, pack_profile(vector), force=True)
        return vector, weights

    def score_union_one(
        self,
        user: str,
        row: int,
        segment: str,
        requested: Mapping[str, float] | None,
        model: ScoringModel,
        popularity_version: int = 0,
    ) -> tuple[np.ndarray | None, np.ndarray, Mapping[str, float]]:
        """:meth:`score_one` of a trainable or cold user under the ANN candidate stage
        (``model.candidates``), without the ``(n,)`` row that is ``-inf`` outside the union:
        ``(items, scores, weights)``, the union's items (int32, ascending) and their rounded
        scores, both read-only. ``items`` is None where ``scores`` is a dense ``(n,)`` vector:
        a profile cached dense, or scored exactly after an index failed to answer (as
        :func:`~recommender.scoring.score_users` falls back). The same profile key, stale gate,
        cache counting and cached entry (:func:`pack_profile` of the dense row) as
        :meth:`score_one`."""
        bundle = self.bundle
        weights, is_default = self._weights(segment, requested)
        if self._gated(row, model):
            gated, model = True, bundle.stale_model  # type: ignore[assignment]  # not None
        else:
            gated = False
        key = profile_key(user, None, popularity_version, gated)
        cached = self.cache.get(key) if is_default else None
        if log.isEnabledFor(logging.DEBUG):  # the line :meth:`score` logs for a batch of one
            _log_lookup(segment, 1, int(cached is None), is_default)
        if isinstance(cached, SparseProfile):
            return cached.indices, cached.values, weights
        if cached is not None:
            return None, cached, weights
        hist = bundle.histories
        cf_row = int(hist.cf_rows[row]) if segment == V.SEGMENT_TRAINABLE else None
        history = hist.liked(row)
        union = None
        if model.candidates is not None:  # (a stale model may lack the stage)
            try:
                union = candidate_unions(
                    model,
                    segment,
                    [history],
                    weights,
                    bundle.hybrid.normalisation,
                    None if cf_row is None else np.array([cf_row], dtype=np.int64),
                    recency_decay=bundle.hybrid.recency_decay,
                )
            except CandidateSearchFailed as exc:  # never fail a request for the optimisation
                log.warning("ANN candidate search failed (%s): scoring exactly", exc)
        if union is None:
            vector = self._compute_one(segment, history, weights, cf_row, model.exact_model)
            vector.setflags(write=False)
            if is_default and self.cache.admits(key):
                self.cache.put(key, pack_profile(vector), force=True)
            return None, vector, weights
        found, _, raw = union
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        round_row(raw, _ROUNDING)  # (the dense row's rounding, on its finite entries)
        finite = raw != -np.inf  # what pack_profile keeps of the dense row
        items, scores = found[finite].astype(np.int32), raw[finite]
        items.setflags(write=False)
        scores.setflags(write=False)
        if is_default and self.cache.admits(key):  # a repeat visitor (or admission off)
            n = model.n_items
            entry: np.ndarray | SparseProfile
            if items.size < caches.SPARSE_SHARE * n:
                entry = SparseProfile(items, scores)
            else:  # most of the catalogue: cached dense, as pack_profile does
                dense = np.full(n, -np.inf, dtype=np.float32)
                dense[items] = scores
                dense.setflags(write=False)
                entry = dense
            self.cache.put(key, entry, force=True)
        return items, scores, weights

    def exact_one(
        self,
        row: int,
        segment: str,
        weights: Mapping[str, float],
        model: ScoringModel,
    ) -> np.ndarray:
        """:meth:`score`'s ``exact=True`` of one stored user without live evidence: the
        candidate stage's fallback when filters leave too few candidates; over the catalogue,
        past no stale gate (:meth:`stale` gates the built model only), not cached."""
        hist = self.bundle.histories
        cf_row = int(hist.cf_rows[row]) if segment == V.SEGMENT_TRAINABLE else None
        vector = self._compute_one(segment, hist.liked(row), weights, cf_row, model.exact_model)
        vector.setflags(write=False)
        return vector

    def default_weights(self, segment: str) -> Mapping[str, float]:
        """``hybrid.for_segment(segment)``, built once per segment (not to be changed)."""
        defaults = self._defaults.get(segment)
        if defaults is None:
            defaults = self._defaults[segment] = self.bundle.hybrid.for_segment(segment)
        return defaults

    def _weights(
        self, segment: str, requested: Mapping[str, float] | None
    ) -> tuple[Mapping[str, float], bool]:
        """:func:`segment_weights`, without a new dict of the defaults per request."""
        if requested is None:
            return self.default_weights(segment), True
        return segment_weights(self.bundle.hybrid, segment, requested)

    def _gated(self, row: int, model: ScoringModel) -> bool:
        """:meth:`stale` of one stored user (no live evidence): past the stale gate."""
        bundle = self.bundle
        if row < 0 or bundle.stale_model is None or bundle.hybrid.stale_seconds is None:
            return False
        return bool(self.stale(np.array([row], dtype=np.int64), model)[0])

    def _compute_one(
        self,
        segment: str,
        history: np.ndarray,
        weights: Mapping[str, float],
        cf_row: int | None,
        model: ScoringModel,
    ) -> np.ndarray:
        """:meth:`_compute` of one user as a new ``(n,)`` vector (:func:`score_user`), rounded
        in one compiled pass (:func:`.blend_kernel.round_row`, ``np.round``'s arithmetic)."""
        raw = score_user(
            model,
            segment,
            history,
            weights,
            self.bundle.hybrid.normalisation,
            cf_row,
            recency_decay=self.bundle.hybrid.recency_decay,
        )
        if raw.dtype == np.float32 and raw.flags.writeable and raw.flags.c_contiguous:
            round_row(raw, _ROUNDING)  # a new array: rounded in place
            return raw
        return np.round(raw, V.SCORE_DECIMALS).astype(np.float32, copy=False)

    @staticmethod
    def _has_live_positives(live: LiveFrame | None, position: int) -> bool:
        entry = None if live is None else live.users[position]
        if live is not None and live.fresh is not None:
            return live.fresh[position]
        return entry is not None and entry.liked.size > 0

    @staticmethod
    def _profile_key(user: str, live: LiveFrame | None, position: int, stale: bool = False) -> str:
        """:func:`profile_key` of batch position ``position`` under ``live``."""
        if live is None:
            return profile_key(user, None, 0, stale)
        entry = live.users[position]
        version = None if entry is None else entry.version
        return profile_key(user, version, live.popularity_version, stale)

    def history(self, row: int, live: LiveFrame | None, position: int) -> np.ndarray:
        """The scored history: the model's positives, then live positives not among them."""
        hist = self.bundle.histories
        stored = hist.liked(row) if row >= 0 else np.zeros(0, dtype=np.int64)
        entry = None if live is None else live.users[position]
        if entry is None or not entry.liked.size:
            return stored
        if live is not None and live.context is not None:  # the context items last (newest)
            stored = stored[~np.isin(stored, live.context)]
        liked = entry.liked
        if liked.size * stored.size <= _BROADCAST_LIMIT:  # small: ~5 us, where np.isin costs ~50
            extra = liked[(liked[:, None] != stored[None, :]).all(axis=1)]
        else:
            extra = liked[~np.isin(liked, stored)]
        return np.concatenate([stored.astype(np.int64), extra])

    def _unknown_scores(
        self, weights: dict[str, float], live: LiveFrame | None = None
    ) -> np.ndarray:
        """Scores of a user without history under request weights (same for everyone: memoised)."""
        if live is None:
            return self._unknown_vector(weights, self.bundle.model, 0)
        return self._unknown_vector(weights, live.model, live.popularity_version)

    def _unknown_vector(
        self, weights: Mapping[str, float], model: ScoringModel, popularity_version: int
    ) -> np.ndarray:
        """:meth:`_unknown_scores` on ``model`` (the live one at ``popularity_version``)."""
        key = (popularity_version, *sorted(weights.items()))
        vector = self._unknown_memo.get(key)
        if vector is None:
            empty = [np.zeros(0, np.int64)]
            vector = self._compute(V.SEGMENT_UNKNOWN, empty, weights, None, model)[0]
            vector.setflags(write=False)
            if len(self._unknown_memo) >= UNKNOWN_MEMO_SIZE:
                self._unknown_memo.clear()
            self._unknown_memo[key] = vector
        return vector

    def _compute(
        self,
        segment: str,
        histories: Sequence[np.ndarray],
        weights: Mapping[str, float],
        cf_rows: np.ndarray | None,
        model: ScoringModel | None = None,
    ) -> np.ndarray:
        """``score_users`` rounded to ``V.SCORE_DECIMALS`` decimals.

        A group of one is scored alone: the signals that multiply with BLAS (CF, fold-in) pad a
        single row themselves, so a user's scores are bit-identical whatever the batch around it.
        """
        raw = score_users(
            self.bundle.model if model is None else model,
            segment,
            histories,
            weights,
            self.bundle.hybrid.normalisation,
            cf_rows,
            recency_decay=self.bundle.hybrid.recency_decay,
        )
        if raw.dtype == np.float32 and raw.flags.writeable:  # a new array: rounded in place
            return np.round(raw, V.SCORE_DECIMALS, out=raw)
        return np.round(raw, V.SCORE_DECIMALS).astype(np.float32, copy=False)

    def route(
        self, users: Sequence[str], live: Sequence[LiveUser | None] | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """History rows (-1 = never seen) and segments of ``users`` (see
        :meth:`UserHistories.segment`: a known user without a positive interaction is ``unknown``
        but keeps their row, so their seen items are still excluded). A user without a CF row
        whose live events hold a positive is ``cold``: their new items are their profile."""
        hist = self.bundle.histories
        if len(users) == 1:  # one request: no generator
            rows = np.array([hist.index.get(users[0], -1)], dtype=np.int64)
        else:
            rows = np.fromiter(
                (hist.index.get(u, -1) for u in users), dtype=np.int64, count=len(users)
            )
        segments = [hist.segment(row) for row in rows.tolist()]
        if live is not None:
            for position, entry in enumerate(live):
                if (
                    entry is not None
                    and entry.liked.size
                    and segments[position] == V.SEGMENT_UNKNOWN
                ):
                    segments[position] = V.SEGMENT_COLD
        return rows, segments


def _log_lookup(segment: str, users: int, missing: int, is_default: bool) -> None:
    """The debug line of a profile-cache lookup (staging's logs): hits and users to compute."""
    log.debug(
        "scoring %d %s users: profile cache %d hit(s), %d to compute%s",
        users,
        segment,
        users - missing,
        missing,
        "" if is_default else " (request weights: not cached)",
    )
