"""Per-user hybrid score vectors: route a user to a segment, score a batch with ``score_users``.

A user's vector under the model's default weights is their *profile*; profiles live in the
user-profile cache (``4·n`` bytes each). Users without history share the bundle's precomputed
vector (or a memoised one per request weighting). Scores are rounded to ``V.SCORE_DECIMALS``
decimals so that no BLAS rounding difference can reorder near-ties.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np

from recommender import vocabulary as V
from recommender.scoring import score_users
from recommender.serving.bundle import ModelBundle
from recommender.serving.caches import CountingCache
from recommender.serving.reranker import segment_weights

UNKNOWN_MEMO_SIZE = 256  # distinct request weightings remembered for users without history
log = logging.getLogger(__name__)


class UserScorer:
    """Segments and score matrices of users for one bundle, through its user-profile cache."""

    def __init__(self, bundle: ModelBundle, cache: CountingCache) -> None:
        self.bundle = bundle
        self.cache = cache
        self._unknown_memo: dict[tuple, np.ndarray] = {}

    def score(
        self,
        users: Sequence[str],
        rows: np.ndarray,
        segments: list[str],
        requested: Mapping[str, float] | None,
        count: bool = True,
    ) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
        """(b, n) rounded hybrid scores and the weights used per segment.

        Default-weight profiles come from / go to the cache (``count=False``: warm-up, not
        counted as hits or misses); one ``score_users`` call per segment for the rest.
        """
        bundle, hist = self.bundle, self.bundle.histories
        scores = np.empty((len(users), bundle.n_items), dtype=np.float32)
        used: dict[str, dict[str, float]] = {}
        groups: dict[str, list[int]] = {}
        for position, segment in enumerate(segments):
            groups.setdefault(segment, []).append(position)
        profiles = self.cache
        debug = log.isEnabledFor(logging.DEBUG)
        for segment, positions in groups.items():
            began = time.perf_counter() if debug else 0.0
            weights, is_default = segment_weights(bundle.hybrid, segment, requested)
            used[segment] = weights
            if segment == V.SEGMENT_UNKNOWN:
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
            missing = positions
            if is_default:
                missing = []
                for position in positions:
                    cached = profiles.get(users[position], count)
                    if cached is None:
                        missing.append(position)
                    else:
                        scores[position] = cached
            if debug:
                log.debug(
                    "scoring %d %s users: profile cache %d hit(s), %d to compute%s",
                    len(positions),
                    segment,
                    len(positions) - len(missing),
                    len(missing),
                    "" if is_default else " (request weights: not cached)",
                )
            if not missing:
                continue
            histories = [hist.liked(rows[p]) for p in missing]
            cf_rows = hist.cf_rows[rows[missing]] if segment == V.SEGMENT_TRAINABLE else None
            computed = self._compute(segment, histories, weights, cf_rows)
            scores[missing] = computed
            if is_default:
                for i, position in enumerate(missing):
                    vector = computed[i].copy()
                    vector.setflags(write=False)
                    profiles.put(users[position], vector)
            if debug:
                log.debug(
                    "computed %d %s profiles in %.2f ms",
                    len(missing),
                    segment,
                    (time.perf_counter() - began) * 1000,
                )
        return scores, used

    def _unknown_scores(self, weights: dict[str, float]) -> np.ndarray:
        """Scores of a user without history under request weights (same for everyone: memoised)."""
        key = tuple(sorted(weights.items()))
        vector = self._unknown_memo.get(key)
        if vector is None:
            vector = self._compute(V.SEGMENT_UNKNOWN, [np.zeros(0, np.int64)], weights, None)[0]
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
    ) -> np.ndarray:
        """``score_users`` rounded; a group of one is scored as two identical rows.

        BLAS multiplies a single row with gemv and several with gemm, whose roundings differ in the
        last bits; padding keeps a user's scores bit-identical whatever the batch around it.
        """
        single = len(histories) == 1
        if single:
            histories = [histories[0], histories[0]]
            cf_rows = None if cf_rows is None else np.repeat(cf_rows, 2)
        raw = score_users(
            self.bundle.model,
            segment,
            histories,
            weights,
            self.bundle.hybrid.normalisation,
            cf_rows,
            recency_decay=self.bundle.hybrid.recency_decay,
        )
        if single:
            raw = raw[:1]
        return np.round(raw, V.SCORE_DECIMALS).astype(np.float32, copy=False)

    def route(self, users: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """History rows (-1 = never seen) and segments of ``users`` (see
        :meth:`UserHistories.segment`: a known user without a positive interaction is ``unknown``
        but keeps their row, so their seen items are still excluded)."""
        hist = self.bundle.histories
        rows = np.fromiter((hist.index.get(u, -1) for u in users), dtype=np.int64, count=len(users))
        return rows, [hist.segment(int(row)) for row in rows]
