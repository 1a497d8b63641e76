"""Rank a chunk of users together: the batch path of ``/batch_recommend`` and ``recommend_batch``.

A chunk is scored with one ``score_users`` call per segment (one matrix product for the CF
scores of all its trainable users, one batched fold-in for its cold users) over histories
gathered from the CSR arrays at once (kept flat: :class:`~recommender.scoring.signals.
FlatHistories`). Rows scored over the catalogue are blended and ranked by compiled passes over
the chunk (:mod:`.batch_kernel`: filters, seen items, candidates, MMR and rounding, one call per
chunk, each row as the one-request kernels rank it) where the MMR cosine is precomputed; else
filters and seen items become ``-inf`` in the score matrix itself and the best ``width`` items
per row come from one float32 ``np.partition`` (a threshold per row) and a sort of the few
items at or above it. Under the ANN candidate stage a user's
scores are ``-inf`` outside their candidate union, so the chunk ranks the unions themselves
(:func:`union_candidates`: a ``(b, ~600)`` block instead of ``(b, 50,000)`` rows, whose partition
had been half of a 1,000-user batch at 50K products). Users without history under default
weights take the precomputed popularity order. Users whose answer depends on the same inputs
(segment, CF row, stored history: :func:`answer_keys`; ~40% of a demo-shop batch) are ranked
once per batch and share the ranking. The per-user steps left are the candidate stage's own (an
HNSW search and a gather per user) and building the answer objects.

Every step is the arithmetic of :meth:`Engine._rank <recommender.serving.engine.Engine>` on
the same rounded float32 scores: the threshold selects exactly the ``width`` smallest
``index·1e-11 − score`` keys the engine's ``argpartition`` selects, in the same order, so a
user ranks identically alone or in any chunk. Users with live events (their own history,
refolded CF) and ``explain`` requests go through the engine's general path; the batch path
does not read or fill the user-profile cache (a campaign's users rarely come back within the
cache's lifetime, and their profiles would evict the storefront's active users').
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender import vocabulary as V
from recommender.scoring import ScoringModel, compute_signals
from recommender.scoring.candidates import CandidateSearchFailed, candidate_unions
from recommender.scoring.signals import FlatHistories
from recommender.serving.batch_kernel import blend_rows, rank_rows
from recommender.serving.histories import UserIndex
from recommender.serving.live_state import trainable_fold_in
from recommender.serving.options import RecommendOptions
from recommender.serving.rank_kernel import NO_COSINE, NO_MASK
from recommender.serving.ranked import Ranked
from recommender.serving.reranker import segment_weights
from recommender.serving.user_scorer import LiveFrame

if TYPE_CHECKING:
    from recommender.serving.engine import Engine, Recommendation
    from recommender.serving.histories import UserHistories

log = logging.getLogger(__name__)
_SEGMENT_NAMES = (V.SEGMENT_UNKNOWN, V.SEGMENT_COLD, V.SEGMENT_TRAINABLE)  # codes 0, 1, 2
_ROUNDING = np.float32(10.0**V.SCORE_DECIMALS)  # np.round's factor (float32 scores)
_SCORE_SCALE = 10.0**V.SCORE_DECIMALS  # np.round's factor (the picks' float64 scores)


def route_codes(hist: UserHistories, users: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(history rows, segment codes) of ``users``: :meth:`UserHistories.segment` as array ops
    (0 unknown, 1 cold, 2 trainable; -1 row = never seen)."""
    index = hist.index
    if isinstance(index, UserIndex):
        rows = index.rows_of(users)
    else:
        rows = np.fromiter((index.get(u, -1) for u in users), dtype=np.int64, count=len(users))
    known = rows >= 0
    safe = np.where(known, rows, 0)
    codes = np.where(np.asarray(hist.has_liked)[safe], 1, 0)
    codes = np.where(np.asarray(hist.cf_rows)[safe] >= 0, 2, codes)
    return rows, np.where(known, codes, 0)


def liked_histories(hist: UserHistories, rows: np.ndarray) -> FlatHistories:
    """:meth:`UserHistories.liked` of every row (all known), gathered from the CSR arrays at
    once: one fancy index instead of a memmap slice per user, kept flat (a chunk's signals
    start from its flat entries: :class:`~recommender.scoring.signals.FlatHistories`)."""
    indptr = np.asarray(hist.indptr)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    ends = np.cumsum(lengths)
    entries = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    entries += np.repeat(starts - ends + lengths, lengths)
    items = np.asarray(hist.indices)[entries]
    if hist.positive is not None:
        keep = np.asarray(hist.positive)[entries]
        items = items[keep]
        kept = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
        lengths = kept[ends] - kept[ends - lengths]
    return FlatHistories(items, np.concatenate(([0], np.cumsum(lengths))))


def seen_coordinates(hist: UserHistories, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch positions, item indices) of every seen item of ``rows`` (-1 = unknown user)."""
    known = np.flatnonzero(rows >= 0)
    indptr = np.asarray(hist.indptr)
    starts = indptr[rows[known]]
    lengths = indptr[rows[known] + 1] - starts
    ends = np.cumsum(lengths)
    entries = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    entries += np.repeat(starts - ends + lengths, lengths)
    return np.repeat(known, lengths), np.asarray(hist.indices)[entries]


def top_candidates(
    scores: np.ndarray, width: int, tiebreak: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``width`` finite scores per row, best first, ties by item index: ``(b, width)``
    items and scores (``-inf`` and item 0 where a row has fewer).

    One float32 ``np.partition`` gives each row's ``width``-th best score (its threshold); the
    items at or above it come in index order from one ``flatnonzero``. Of the items *at* the
    threshold (ties) a row keeps the first, lowest-index, ones it needs to make ``width``, so every
    row keeps at most ``width`` items, which one stable argsort of their negated scores orders in
    a ``(b, width)`` block. That is the order of the engine's float64 key ``index·1e-11 − score``
    (``tiebreak``, kept for callers): distinct rounded scores differ by far more than the index
    offset, so these are exactly the ``width`` smallest keys of the row, in key order.
    """
    b, n = scores.shape
    if width < n:
        threshold = np.partition(scores, n - width, axis=1)[:, n - width]
        keep = scores >= threshold[:, None]
        if not np.isfinite(threshold).all():  # rows with fewer than width eligible items
            keep &= scores > -np.inf
    else:
        keep = scores > -np.inf
    flat = np.flatnonzero(keep)  # row by row, each row's items in index order
    if not flat.size:
        return np.zeros((b, width), dtype=np.int64), np.full((b, width), -np.inf, np.float32)
    rows = flat // n
    values = scores.reshape(-1)[flat]
    counts = np.bincount(rows, minlength=b)
    if width < n and counts.max() > width:  # ties at the threshold: the lowest indices first
        at_threshold = values == threshold[rows]
        ties_before = np.cumsum(at_threshold) - at_threshold  # ties in earlier entries
        firsts = np.cumsum(counts) - counts
        tie_rank = ties_before - ties_before[firsts[rows]]
        needed = width - (counts - np.bincount(rows, weights=at_threshold, minlength=b))
        chosen = ~at_threshold | (tie_rank < needed[rows])
        flat, rows, values = flat[chosen], rows[chosen], values[chosen]
        counts = np.bincount(rows, minlength=b)
    firsts = np.cumsum(counts) - counts
    block = np.full((b, width), np.inf, dtype=np.float32)
    block[rows, np.arange(flat.size) - firsts[rows]] = -values
    order = np.argsort(block, axis=1, kind="stable")
    picked = order < counts[:, None]  # the padding sorts last, past a row's count
    slots = np.where(picked, firsts[:, None] + order, 0)
    candidates = np.where(picked, flat[slots] - rows[slots] * n, 0)
    cand_scores = np.where(picked, values[slots], np.float32(-np.inf))
    return candidates, cand_scores


def chunk_scores(
    engine: Engine,
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: dict[str, float],
    cf_rows: np.ndarray | None,
) -> np.ndarray:
    """``UserScorer._compute`` (``score_users`` rounded) of one segment of a chunk, a new
    ``(b, n)`` array: the min-max blend and rounding of a single request
    (:func:`~recommender.scoring.hybrid.combine_row`, one compiled pass per signal over every
    row: :func:`.batch_kernel.blend_rows`) done in place on the first signal's matrix. Other
    normalisations and the ANN candidate stage go through ``_compute``."""
    hybrid = engine.bundle.hybrid
    if hybrid.normalisation != "minmax" or model.candidates is not None:
        return engine.scorer._compute(segment, histories, weights, cf_rows, model)
    wanted = [name for name, w in weights.items() if w > 0]
    signals = compute_signals(
        model, segment, histories, wanted, cf_rows, recency_decay=hybrid.recency_decay
    )
    static = model.static_normalised.get("minmax", {})
    terms = [(name, w) for name, w in weights.items() if w > 0 and name in signals]
    b = len(histories)
    if not terms:
        return np.zeros((b, model.n_items), dtype=np.float32)
    total: np.ndarray | None = None
    for position, (name, weight) in enumerate(terms):
        values = signals[name]
        normalised = static.get(name) if values.ndim == 1 else None
        if normalised is not None:
            values = normalised  # static: prenormalised once per model (never written)
        values = np.ascontiguousarray(values, dtype=np.float32)
        if total is None:  # a signal matrix of this call is the total, blended in place
            owned = values.ndim == 2 and values.flags.writeable
            total = values if owned else np.empty((b, model.n_items), dtype=np.float32)
        last = position + 1 == len(terms)
        blend_rows(
            total,
            values.reshape(1, -1) if values.ndim == 1 else values,
            np.float32(weight),
            values.ndim == 2 or normalised is None,
            position == 0,
            _ROUNDING if last else np.float32(0.0),
        )
    assert total is not None  # (terms is not empty)
    return total


def rank_chunk(
    engine: Engine, users: list[str], options: RecommendOptions, memo: Answers | None = None
) -> list[Recommendation]:
    """:meth:`Engine._rank` of a chunk without ``explain``: users with live events through the
    engine's general path, the others scored together (see the module docstring). ``memo``:
    the answers of the same batch's earlier chunks (:class:`Answers`)."""
    live = engine.live
    if live is None:
        return _rank_plain(engine, users, options, memo)
    entries = [live.user(u) for u in users]
    plain = [i for i, e in enumerate(entries) if e is None]
    if len(plain) == len(users):
        return _rank_plain(engine, users, options, memo)
    evented = [i for i, e in enumerate(entries) if e is not None]
    out: list[Recommendation | None] = [None] * len(users)
    for indices, ranked in (
        (plain, _rank_plain(engine, [users[i] for i in plain], options, memo) if plain else []),
        (evented, engine._rank_each([users[i] for i in evented], options)),
    ):
        for i, result in zip(indices, ranked, strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def union_candidates(
    unions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n: int,
    width: int,
    mask: np.ndarray | None,
    seen: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_candidates` of rows that are ``-inf`` outside a candidate union, from the unions
    themselves: flat ``(items, bounds, float32 scores)`` parts
    (:func:`~recommender.scoring.candidates.candidate_unions`), the users of each part after
    those of the one before, with ``mask`` and the ``seen`` (user, item) coordinates applied as
    ``-inf``. A user's union in index order is their dense row's finite entries in the same
    order, so the ``(b, longest union)`` block gives the same items and scores as the ``(b, n)``
    rows (padding: item 0, ``-inf``) at a fraction of the partition's work."""
    lengths = np.concatenate([np.diff(bounds) for _, bounds, _ in unions])
    b, total = lengths.size, int(lengths.sum())
    if not total:
        return np.zeros((b, width), dtype=np.int64), np.full((b, width), -np.inf, np.float32)
    items = np.concatenate([items for items, _, _ in unions]).astype(np.int64, copy=False)
    scores = np.concatenate([scores for _, _, scores in unions])  # a copy: ours to write
    rows = np.repeat(np.arange(b, dtype=np.int64), lengths)
    if mask is not None:
        scores[~mask[items]] = -np.inf
    if seen is not None and seen[0].size:
        keys = rows * n + items  # ascending: users in order, each union sorted
        wanted = seen[0].astype(np.int64) * n + seen[1]
        at = np.minimum(np.searchsorted(keys, wanted), total - 1)
        scores[at[keys[at] == wanted]] = -np.inf
    columns = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    c = int(lengths.max())
    block = np.full((b, c), -np.inf, dtype=np.float32)
    block[rows, columns] = scores
    block_items = np.zeros((b, c), dtype=np.int64)
    block_items[rows, columns] = items
    positions, values = top_candidates(block, width, np.zeros(0))
    picked = np.take_along_axis(block_items, positions, axis=1)
    return np.where(values > -np.inf, picked, 0), values


def _unions_or_exact(
    engine: Engine,
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: dict[str, float],
    cf_rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray:
    """A candidate-stage model's rounded union scores (``UserScorer._compute`` without the
    ``(b, n)`` rows), or, when an index cannot answer, the exact ``(b, n)`` scores (as
    :func:`~recommender.scoring.score_users` falls back)."""
    hybrid = engine.bundle.hybrid
    try:
        items, bounds, scores = candidate_unions(
            model,
            segment,
            histories,
            weights,
            hybrid.normalisation,
            cf_rows,
            recency_decay=hybrid.recency_decay,
            search_threads=engine.settings.batch.search_threads,
        )
    except CandidateSearchFailed as exc:  # never fail a request for the optimisation
        log.warning("ANN candidate search failed (%s): scoring exactly", exc)
        return chunk_scores(engine, model.exact_model, segment, histories, weights, cf_rows)
    # the engine's rounding, on the same float32 values
    return items, bounds, np.round(scores, V.SCORE_DECIMALS, out=scores)


class Answers:
    """The answers of one batch's chunks by :func:`answer_keys`, reused by its later chunks
    while they would rank the same way: the same live popularity and catalogue versions, and
    no stale gate (whose clock moves between chunks)."""

    def __init__(self) -> None:
        self.version: tuple[int, int] = (0, 0)
        self.ranked: dict[object, Recommendation] = {}

    def current(self, engine: Engine) -> dict[object, Recommendation] | None:
        """The answers that still hold for a chunk ranked now (None: a chunk keeps its own)."""
        if engine.bundle.stale_model is not None:
            return None
        version = self._version(engine)
        if version != self.version:
            self.version, self.ranked = version, {}
        return self.ranked

    def holds(self, engine: Engine) -> bool:
        """Whether the versions are still those of :meth:`current` (live popularity or the
        catalogue may move on another thread while a chunk is ranked)."""
        return self._version(engine) == self.version

    @staticmethod
    def _version(engine: Engine) -> tuple[int, int]:
        live = engine.live
        if live is None:
            return (0, 0)
        # the popularity frame brought up to date first, as the chunk's ranking reads it
        return (engine._live_frame_model()[0], live.catalogue_version)


def answer_keys(
    hist: UserHistories, rows: np.ndarray, codes: np.ndarray, gated: bool
) -> list[object]:
    """Per position, what its answer is a function of in a chunk without live events: the
    segment, the CF row (trainable), the stored history's entries (the liked items in time
    order and the seen items) and, when the stale gate is on (``gated``), the newest positive's
    time it reads; ``-1`` rows (never seen) share one key."""
    indptr, indices = np.asarray(hist.indptr), np.asarray(hist.indices)
    positive = None if hist.positive is None else np.asarray(hist.positive)
    safe = np.where(rows >= 0, rows, 0)
    cf_rows = np.where(codes == 2, np.asarray(hist.cf_rows)[safe], -1).tolist()
    newest = hist.newest_positive_seconds[safe].tolist() if gated else [0.0] * len(rows)
    starts, ends = indptr[safe].tolist(), indptr[safe + 1].tolist()
    keys: list[object] = []
    for row, code, cf_row, start, end, seconds in zip(
        rows.tolist(), codes.tolist(), cf_rows, starts, ends, newest, strict=True
    ):
        if row < 0:
            keys.append(None)
            continue
        liked = b"" if positive is None else positive[start:end].tobytes()
        keys.append((code, cf_row, seconds, indices[start:end].tobytes(), liked))
    return keys


def _rank_plain(
    engine: Engine, users: list[str], options: RecommendOptions, memo: Answers | None = None
) -> list[Recommendation]:
    """Rank users without live events (live popularity and catalogue still apply): each
    distinct :func:`answer_keys` once (users with the same stored history, e.g. one-time buyers
    of the same product, get the same answer; ``memo``: those of the batch's earlier chunks),
    each user their own :class:`Recommendation`."""
    from recommender.serving.engine import Recommendation

    hist = engine.bundle.histories
    rows, codes = route_codes(hist, users)
    known = None if memo is None else memo.current(engine)
    keys = answer_keys(hist, rows, codes, engine.bundle.stale_model is not None)
    first: dict[object, int] = {}
    for i, key in enumerate(keys):
        if key not in first and (known is None or key not in known):
            first[key] = i
    if len(first) == len(users):
        ranked = _rank_rows(engine, users, rows, codes, options)
    else:
        distinct = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        part = [users[i] for i in distinct.tolist()]
        ranked = _rank_rows(engine, part, rows[distinct], codes[distinct], options)
    if known is not None and memo is not None and not memo.holds(engine):
        return _rank_rows(engine, users, rows, codes, options)  # no answers of two versions
    answers = dict(zip(first, ranked, strict=True))
    if known is not None:
        known.update(answers)
        answers = known
    ranked_at = set(first.values())  # each other position: its own Recommendation (items)
    out = []
    for i, (user, key) in enumerate(zip(users, keys, strict=True)):
        answer = answers[key]
        out.append(
            answer if i in ranked_at else Recommendation(user, answer.segment, answer.ranked)
        )
    return out


def _rank_rows(
    engine: Engine,
    users: list[str],
    rows: np.ndarray,
    codes: np.ndarray,
    options: RecommendOptions,
) -> list[Recommendation]:
    """:func:`_rank_plain` of ``users`` routed to history ``rows`` and segment ``codes``."""
    bundle, hist, settings = engine.bundle, engine.bundle.histories, engine.settings
    live = engine.live
    model, unknown_scores, unknown_order = bundle.model, bundle.unknown_scores, bundle.unknown_order
    frame = None
    if live is not None:
        version, model, unknown_scores, unknown_order = engine._live_frame_model()
        fold = trainable_fold_in(settings.events.trainable_fold_in, bundle.info)
        frame = LiveFrame(model, unknown_scores, version, [None] * len(users), fold)
    n, b = model.n_items, len(users)
    mask = engine._eligible(options, live, n)
    topk = options.topk
    width = min(n, topk * settings.rerank.candidate_multiplier if options.rerank else topk)
    lam = engine._diversity(options, model)
    cosine = engine._cosine(model) if lam > 0 else NO_COSINE
    # rows scored over the catalogue are ranked as soon as they are scored, in one compiled pass
    # (.batch_kernel) where a single request's kernel ranks them, else by the numpy steps below
    compiled = None
    if cosine is not None:
        compiled = _CompiledRanking(hist, rows, mask, options, width, lam, cosine)
    dense: list[tuple[np.ndarray, np.ndarray]] = []  # (positions, scores) for the numpy steps
    union_rows: list[np.ndarray] = []  # candidate-stage rows and their unions
    unions: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    static_rows = np.zeros(b, dtype=bool)  # no history, default weights: the popularity order

    def scored(positions: np.ndarray, block: np.ndarray) -> None:
        """``block``: the rounded ``(p, n)`` scores of ``positions``, ours to write."""
        if compiled is not None:
            compiled.rank(positions, block)
        else:
            dense.append((positions, block))

    for code, segment in enumerate(_SEGMENT_NAMES):
        positions = np.flatnonzero(codes == code)
        if not positions.size:
            continue
        began = time.perf_counter()
        weights, is_default = segment_weights(bundle.hybrid, segment, options.weight_map)
        if code == 0:
            static_rows[positions] = is_default & (rows[positions] < 0)
            shared = positions[~static_rows[positions]]
            if shared.size:
                vector = (
                    unknown_scores if is_default else engine.scorer._unknown_scores(weights, frame)
                )
                scored(shared, np.broadcast_to(vector, (shared.size, n)).copy())
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "scored %d unknown users with %s weights (shared vector)",
                    positions.size,
                    "default" if is_default else "request",
                )
            continue
        histories = liked_histories(hist, rows[positions])
        cf_rows = np.asarray(hist.cf_rows)[rows[positions]] if code == 2 else None
        past_gate = engine.scorer.stale(rows[positions], model)
        for gated in (False, True):  # the stale gate's users on its model (UserScorer.score)
            part = np.flatnonzero(past_gate == gated)
            if not part.size:
                continue
            scored_on = bundle.stale_model if gated and bundle.stale_model is not None else model
            args = (
                segment,
                histories if part.size == positions.size else [histories[i] for i in part.tolist()],
                weights,
                None if cf_rows is None else cf_rows[part],
            )
            if scored_on.candidates is None:
                scored(positions[part], chunk_scores(engine, scored_on, *args))
                continue
            found = _unions_or_exact(engine, scored_on, *args)
            if isinstance(found, np.ndarray):
                scored(positions[part], found)
            else:
                union_rows.append(positions[part])
                unions.append(found)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch: scored %d %s users together in %.2f ms",
                positions.size,
                segment,
                (time.perf_counter() - began) * 1000,
            )
    candidates = np.zeros((b, width), dtype=np.int64)
    cand_scores = np.full((b, width), -np.inf, dtype=np.float32)
    if static_rows.any():
        items, values = engine._static_candidates(1, mask, width, unknown_order, frame)
        candidates[static_rows], cand_scores[static_rows] = items[0], values[0]
    for positions, keys in dense:
        if mask is not None:
            keys[:, ~mask] = -np.inf
        if options.exclude_seen:
            at, items = seen_coordinates(hist, rows[positions])
            keys[at, items] = -np.inf
        candidates[positions], cand_scores[positions] = top_candidates(
            keys, width, engine._tiebreak[:n]
        )
    if unions:
        ranked_rows = np.concatenate(union_rows)
        seen = seen_coordinates(hist, rows[ranked_rows]) if options.exclude_seen else None
        candidates[ranked_rows], cand_scores[ranked_rows] = union_candidates(
            unions, n, width, mask, seen
        )
    short = np.zeros(b, dtype=bool)
    if model.candidates is not None:  # too few ANN candidates left: those users one by one
        short = engine._short(cand_scores, topk, width) & ~static_rows
        if compiled is not None:  # compiled rows: picks fewer than min(topk, width) candidates
            short = np.where(compiled.done, compiled.counts < min(topk, width), short)
    return _results(
        engine, users, options, (codes, candidates, cand_scores, short), compiled, model
    )


class _CompiledRanking:
    """A chunk's rows ranked by :func:`.batch_kernel.rank_rows` as their scores come: each
    user's picks and rounded scores at their position in the chunk."""

    def __init__(
        self,
        hist: UserHistories,
        rows: np.ndarray,
        mask: np.ndarray | None,
        options: RecommendOptions,
        width: int,
        lam: float,
        cosine: np.ndarray,
    ) -> None:
        b, topk = len(rows), options.topk
        self.chosen = np.empty((b, topk), dtype=np.int64)
        self.rounded = np.empty((b, topk), dtype=np.float64)
        self.counts = np.zeros(b, dtype=np.int64)
        self.done = np.zeros(b, dtype=bool)
        self._rows = rows if options.exclude_seen else np.full(b, -1, dtype=np.int64)
        self._mask = NO_MASK if mask is None else mask
        self._indptr, self._indices = np.asarray(hist.indptr), np.asarray(hist.indices)
        self._width, self._topk, self._lam, self._cosine = width, topk, np.float32(lam), cosine

    def rank(self, positions: np.ndarray, block: np.ndarray) -> None:
        """Rank ``block``, the rounded ``(p, n)`` float32 scores of ``positions`` (written)."""
        p = positions.size
        chosen = np.empty((p, self._topk), dtype=np.int64)
        rounded = np.empty((p, self._topk), dtype=np.float64)
        counts = np.empty(p, dtype=np.int64)
        rank_rows(
            np.ascontiguousarray(block, dtype=np.float32),
            np.ascontiguousarray(self._rows[positions], dtype=np.int64),
            self._mask,
            self._indptr,
            self._indices,
            self._width,
            self._topk,
            self._lam,
            self._cosine,
            _SCORE_SCALE,
            chosen,
            rounded,
            counts,
        )
        self.chosen[positions], self.rounded[positions] = chosen, rounded
        self.counts[positions], self.done[positions] = counts, True


def _results(
    engine: Engine,
    users: list[str],
    options: RecommendOptions,
    ranked: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    compiled: _CompiledRanking | None,
    model: ScoringModel,
) -> list[Recommendation]:
    """The chunk's answers: compiled rows as ranked, the others' candidates through MMR
    (:meth:`Engine._pick`), users left with too few candidates (``short``) one by one.
    ``ranked``: the segment codes, and the candidates, their scores and ``short`` per row."""
    from recommender.serving.engine import Recommendation, _LiveRecords

    codes, candidates, cand_scores, short = ranked
    b, topk = len(users), options.topk
    if compiled is not None:
        chosen_items = compiled.chosen.tolist()  # one list per row, for the whole chunk
        chosen_scores = compiled.rounded.tolist()
        at = np.flatnonzero(~compiled.done)
    else:
        chosen_items, chosen_scores = [[]] * b, [[]] * b
        at = np.arange(b)
    if at.size:
        picks = engine._pick(candidates[at], cand_scores[at], options, model)
        for position, items_row, scores_row, count in zip(at.tolist(), *picks, strict=True):
            if len(items_row) > count:
                items_row, scores_row = items_row[:count], scores_row[:count]
            chosen_items[position], chosen_scores[position] = items_row, scores_row
    if compiled is not None:  # most compiled rows hold topk picks: only the others are cut
        for position in np.flatnonzero(compiled.done & (compiled.counts < topk)).tolist():
            count = int(compiled.counts[position])
            chosen_items[position] = chosen_items[position][:count]
            chosen_scores[position] = chosen_scores[position][:count]
    live = engine.live
    records = engine.bundle.catalogue.records
    names = [_SEGMENT_NAMES[c] for c in codes.tolist()]
    if live is not None and live.has_catalogue_changes:
        live_records = _LiveRecords(live)
        sources: Sequence[Any] = [{i: live_records[i] for i in row} for row in chosen_items]
    else:
        sources = [records] * b
    results = [
        Recommendation(user, segment, Ranked(items_row, scores_row, source))
        for user, segment, items_row, scores_row, source in zip(
            users, names, chosen_items, chosen_scores, sources, strict=True
        )
    ]
    for position in np.flatnonzero(short).tolist():  # exact, as a single request falls back
        results[position] = engine._rank_each([users[position]], options)[0]
    return results
