"""The one evaluation protocol, shared by tuning, reports and the quality gate.

Temporal leave-last-positive-out (``prepare`` labels each trainable user's latest positive ``test``
and the one before ``val``), full ranking over the whole catalogue, items the user already has in
the history splits excluded.

- validation stage: models fit on ``train`` only; history = ``train``; target = ``val``.
- test stage: models refit on ``train + val``; history = ``train + val``; target = ``test``.

Segments of the users that have a target in the stage:

- ``trainable``: users with a CF row and at least one prior positive, scored by the CF path
  (their own row of ``U``).
- ``cold``: users whose prior positive history is exactly one item, scored by the cold path
  *without* their CF row (fold-in + item-kNN + content + popularity), as serving scores a visitor
  who has just interacted with one product.
- ``unknown``: every user with a target, scored with no history at all (popularity / quality);
  nothing is excluded because an unknown visitor has nothing to exclude.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.matrix import item_codes
from recommender.data.processed import ProcessedData, unix_seconds

_NO_ITEMS = np.zeros(0, dtype=np.int64)  # concatenate() of an empty batch
_SECONDS_PER_DAY = 86400

# slices of every segment by the time since the user's previous positive (see slice_indices)
SLICE_SAME_SESSION = "same_session"
SLICE_LATER = "later"
SLICES = (SLICE_SAME_SESSION, SLICE_LATER)

# the two protocols every table is reported under; realistic is the headline
PROTOCOL_REALISTIC = "realistic"
PROTOCOL_EXACT = "exact"

STAGE_SPLITS: dict[str, tuple[tuple[str, ...], str]] = {
    V.STAGE_VALIDATION: ((V.SPLIT_TRAIN,), V.SPLIT_VAL),
    V.STAGE_TEST: ((V.SPLIT_TRAIN, V.SPLIT_VAL), V.SPLIT_TEST),
}

PROTOCOL_TEXT = (
    "Temporal leave-last-positive-out: each trainable user's latest positive interaction is the "
    "test item and the one before it the validation item. Hyperparameters and hybrid weights are "
    "tuned on validation (models fit on train, history = train); reported numbers are on test "
    "(models refit on train+val, history = train+val). Every user is ranked against the full "
    "catalogue with the items already in their history excluded; all users with a target are "
    "evaluated (no sampling). HR@K equals Recall@K (one held-out item). Segments: trainable = "
    "users with a CF row and >= 1 prior positive, scored with their CF row; cold = users whose "
    "prior history is exactly one item, scored by the cold path without their CF row (fold-in, "
    "item-kNN, content, popularity); unknown = all users, scored with no history (popularity, "
    "quality, nothing excluded). Non-CF signals (item-kNN, quality = smoothed mean rating) are "
    "computed from the stage's history splits only; popularity is taken as of each user's "
    "held-out interaction (every positive strictly before it, other users' held-out positives "
    "of the stage included, decayed by the half-life chosen on validation), as serving takes it "
    "as of now. Hybrid weights are tuned on "
    "2-fold cross-fitted validation (each fold's models also see the other fold's val rows, "
    "never a test row), together with a recency decay of history items (the k-th newest weighs "
    "decay**k in item-kNN, content and fold-in). Ties are broken by a fixed random item order. "
    "Intervals are 95% percentile bootstrap over users. Two protocols: exact = popularity as of "
    "the minute of each held-out interaction, every positive counted once; realistic (the "
    "headline) = as a service rebuilt every evaluation.rebuild_period_days (periods counted from "
    "1970-01-01 UTC) serves it: with evaluation.live_popularity (a service fed by events) "
    "popularity as of the held-out interaction with the positives since the rebuild counted "
    "evaluation.live_event_weight each (a live event's weight), and the stale gate only where no "
    "positive came since the rebuild (serving drops it under live popularity); without it "
    "popularity as of the rebuild. Item-kNN, CF, quality and content are fit on the stage's "
    "history splits in both. Slices of every segment: "
    "same_session = the held-out item came <= evaluation.same_session_hours after the user's "
    "previous positive, later = more than that; users with no previous positive are in neither. "
    "Each hybrid row is compared with the best single-signal row of its segment (popularity, "
    "item-kNN, content or its own CF model, best by the test mean): the paired per-user "
    "difference with its 95% percentile bootstrap interval."
)


def history_splits(stage: str) -> tuple[str, ...]:
    """Splits that form the training data and the history of ``stage``."""
    return STAGE_SPLITS[stage][0]


def popularity_splits(stage: str) -> tuple[str, ...]:
    """Splits whose positives count towards ``stage``'s time-aware popularity: the history
    splits and the target split, each positive only for requests after it. Why: a service
    counts every positive before "now", other users' held-out ones included (their last
    positive, under leave-last-out, is often before this user's); without them the test
    popularity missed 1,785 of Hasaki's 6,570 positives. The user's own target is at the
    request, so never before it."""
    splits, target = STAGE_SPLITS[stage]
    return (*splits, target)


@dataclass(frozen=True)
class EvaluationSet:
    """Users with a target in one stage, with their histories (all arrays are item indices)."""

    stage: str
    user_ids: list[str]
    targets: list[np.ndarray]
    histories: list[np.ndarray]  # prior positives (fold-in, item-kNN, content)
    weights: list[np.ndarray]  # weight column of ``histories`` (fold-in confidences)
    seen: list[np.ndarray]  # every prior interaction, excluded from the ranking
    cf_rows: np.ndarray  # (b,) CF row of each user, -1 without one
    n_items: int
    request_times: np.ndarray  # (b,) Unix seconds of the target: "now" for time-aware popularity
    # (b,) seconds from the user's newest prior positive to the target (inf: none); None: unknown
    previous_gaps: np.ndarray | None = None
    # the realistic protocol as served with live events (:func:`as_served`): rebuild period
    # (days) and the weight of a positive counted since its start; None: popularity as it is
    live_period_days: float | None = None
    live_weight: float = 1.0

    def __len__(self) -> int:
        return len(self.user_ids)

    def segment_indices(self, segment: str) -> np.ndarray:
        """Positions of the users in ``segment`` (see the module docstring)."""
        lengths = np.fromiter((len(h) for h in self.histories), dtype=np.int64, count=len(self))
        if segment == V.SEGMENT_TRAINABLE:
            return np.flatnonzero((self.cf_rows >= 0) & (lengths >= 1))
        if segment == V.SEGMENT_COLD:
            return np.flatnonzero(lengths == 1)
        if segment == V.SEGMENT_UNKNOWN:
            return np.arange(len(self))
        raise ValueError(f"unknown segment {segment!r}; expected one of {V.SEGMENTS}")

    def subset(self, positions: np.ndarray) -> EvaluationSet:
        """The users at ``positions``, in that order."""
        pick = [int(p) for p in positions]
        return EvaluationSet(
            stage=self.stage,
            user_ids=[self.user_ids[p] for p in pick],
            targets=[self.targets[p] for p in pick],
            histories=[self.histories[p] for p in pick],
            weights=[self.weights[p] for p in pick],
            seen=[self.seen[p] for p in pick],
            cf_rows=self.cf_rows[pick] if pick else np.zeros(0, dtype=np.int64),
            n_items=self.n_items,
            request_times=self.request_times[pick] if pick else np.zeros(0, dtype=np.int64),
            previous_gaps=None
            if self.previous_gaps is None
            else (self.previous_gaps[pick] if pick else np.zeros(0, dtype=np.float64)),
            live_period_days=self.live_period_days,
            live_weight=self.live_weight,
        )

    def slice_indices(self, slice_name: str, same_session_hours: float) -> np.ndarray:
        """Positions of the users in ``slice_name``: ``same_session`` when the target came at most
        ``same_session_hours`` after the user's previous positive, ``later`` when more; users
        without a previous positive are in neither (empty when the gaps are unknown)."""
        if slice_name not in SLICES:
            raise ValueError(f"unknown slice {slice_name!r}; expected one of {SLICES}")
        if self.previous_gaps is None:
            return np.zeros(0, dtype=np.int64)
        limit = same_session_hours * 3600.0
        gaps = self.previous_gaps
        if slice_name == SLICE_SAME_SESSION:
            return np.flatnonzero(gaps <= limit)
        return np.flatnonzero((gaps > limit) & np.isfinite(gaps))


def rebuild_start(times: np.ndarray, period_days: float) -> np.ndarray:
    """Start (Unix seconds) of the rebuild period containing each of ``times``: periods of
    ``period_days`` counted from 1970-01-01 00:00 UTC (1 day: UTC midnight)."""
    if not period_days > 0:
        raise ValueError(f"rebuild period must be > 0 days, got {period_days!r}")
    period = period_days * _SECONDS_PER_DAY
    times = np.asarray(times, dtype=np.int64)
    return (np.floor(times / period) * period).astype(np.int64)


def as_of_rebuild(eval_set: EvaluationSet, period_days: float) -> EvaluationSet:
    """``eval_set`` with each request time moved back to the start of its rebuild period: the
    realistic protocol, where popularity is as of the last scheduled build. Histories, targets
    and slices are untouched (the service's event path keeps a user's own history live)."""
    return dataclasses.replace(
        eval_set, request_times=rebuild_start(eval_set.request_times, period_days)
    )


def as_served(eval_set: EvaluationSet, period_days: float, live_weight: float) -> EvaluationSet:
    """``eval_set`` scored as a service rebuilt every ``period_days`` and fed by live events
    serves it: popularity as of the request, the positives since the period start counted with
    ``live_weight`` (``events.popularity_weights``: a live event's weight, where the build counts
    each positive once), and the stale gate only for users with no positive counted since the
    period start (once live popularity counts an event the service scores every user on the live
    model, without the gate: ``serving/user_scorer.py``). Applied by the rankers
    (:mod:`recommender.evaluation.rankers`) to the model's popularity history."""
    if not period_days > 0:
        raise ValueError(f"rebuild period must be > 0 days, got {period_days!r}")
    return dataclasses.replace(eval_set, live_period_days=period_days, live_weight=live_weight)


def realistic_view(
    eval_set: EvaluationSet, period_days: float, live_popularity: bool, live_weight: float
) -> EvaluationSet:
    """``eval_set`` under the realistic protocol: :func:`as_served` with live popularity (a
    service receiving events), else :func:`as_of_rebuild` (popularity frozen at each build)."""
    if live_popularity:
        return as_served(eval_set, period_days, live_weight)
    return as_of_rebuild(eval_set, period_days)


def _group(
    frame: pd.DataFrame, codes: np.ndarray, users: list[str], values: np.ndarray | None = None
) -> list[np.ndarray]:
    """Per user of ``users`` the item codes (or ``values``) of its rows in ``frame``, time order."""
    position = {uid: k for k, uid in enumerate(users)}
    owner = frame[V.USER_ID].astype(str).map(position)
    keep = owner.notna().to_numpy()
    owner_idx = owner[keep].to_numpy(dtype=np.int64)
    stamp = unix_seconds(frame)[keep]
    payload = (codes if values is None else values)[keep]
    order = np.lexsort((stamp, owner_idx))
    owner_idx, payload = owner_idx[order], payload[order]
    bounds = np.searchsorted(owner_idx, np.arange(len(users) + 1))
    return [payload[bounds[k] : bounds[k + 1]] for k in range(len(users))]


def build_evaluation_set(data: ProcessedData, stage: str) -> EvaluationSet:
    """Targets, histories and CF rows of every user with a positive target in ``stage``."""
    if stage not in STAGE_SPLITS:
        raise ValueError(f"unknown stage {stage!r}; expected one of {V.STAGES}")
    splits, target_split = STAGE_SPLITS[stage]
    frame = data.interactions
    positive = frame[V.IS_POSITIVE].astype(bool)
    target_rows = frame.loc[(frame[V.SPLIT] == target_split) & positive]
    order = {uid: k for k, uid in enumerate(data.user_ids)}
    users = sorted(
        set(target_rows[V.USER_ID].astype(str)), key=lambda u: (order.get(u, 1 << 62), u)
    )
    prior = frame.loc[frame[V.SPLIT].isin(list(splits))]
    prior_pos = prior.loc[prior[V.IS_POSITIVE].astype(bool)]
    pos_codes = item_codes(data, prior_pos)
    pos_weights = pd.to_numeric(prior_pos[V.WEIGHT], errors="coerce").fillna(1.0).to_numpy()
    cf_index = data.trainable_index
    target_codes = item_codes(data, target_rows)
    target_times = _group(target_rows, target_codes, users, unix_seconds(target_rows))
    prior_times = _group(prior_pos, pos_codes, users, unix_seconds(prior_pos))
    request_times = np.array([t.min() for t in target_times], dtype=np.int64)
    newest_prior = np.array(
        [float(t.max()) if t.size else -np.inf for t in prior_times], dtype=np.float64
    )
    return EvaluationSet(
        stage=stage,
        user_ids=users,
        targets=_group(target_rows, target_codes, users),
        histories=_group(prior_pos, pos_codes, users),
        weights=_group(prior_pos, pos_codes, users, pos_weights),
        seen=_group(prior, item_codes(data, prior), users),
        cf_rows=np.array([cf_index.get(u, -1) for u in users], dtype=np.int64),
        n_items=len(data.item_ids),
        request_times=request_times,
        previous_gaps=request_times.astype(np.float64) - newest_prior,
    )


def sample_users(eval_set: EvaluationSet, max_users: int, seed: int) -> EvaluationSet:
    """``eval_set`` itself when it has at most ``max_users`` users (or ``max_users`` is 0), else a
    seeded sample of ``max_users`` of them in their original order: scoring every user of a 1M-user
    shop against 50K products costs minutes per ranker and barely narrows the intervals."""
    if max_users <= 0 or len(eval_set) <= max_users:
        return eval_set
    rng = np.random.default_rng(seed)
    return eval_set.subset(np.sort(rng.choice(len(eval_set), size=max_users, replace=False)))


# rows ranked at once inside top_k_items: bounds its working copies (~32 MB of float64 each)
_RANK_BLOCK_ELEMENTS = 1 << 22
# catalogues of at least this many items rank through segment maxima (_top_k_segmented)
_SEGMENTED_MIN_ITEMS = 4096
_SEGMENT = 64
_MAX_CANDIDATES_PER_ROW = 4096


def top_k_items(
    scores: np.ndarray, k: int, exclude: list[np.ndarray] | None, tie_order: np.ndarray
) -> np.ndarray:
    """Indices ``(b, k)`` of the ``k`` best items per row, best first, ``exclude`` never returned
    unless fewer than ``k`` items remain.

    ``tie_order`` is a fixed permutation of the items: equal scores are ordered by it, so an item's
    position in the catalogue (often sorted by popularity upstream) cannot break ties in its favour.
    NaN scores rank as ``-inf``.

    Each row's k-th best score is found by ``np.partition`` on the unpermuted scores (in their own
    float32/float64 dtype, which compares exactly as float64). Where that score decides no tie
    (every item scoring it is in the top k), the top k are simply the items at or above it; the
    rows where it does (more items score it than places are left) take
    :func:`_top_k_permuted`, the former whole-matrix method, so results equal it row for row.
    """
    b, n = scores.shape
    k = min(k, n)
    if b == 0 or k <= 0:
        return np.zeros((b, max(k, 0)), dtype=tie_order.dtype)
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[tie_order] = np.arange(n)
    step = max(1, _RANK_BLOCK_ELEMENTS // n)
    blocks = []
    for begin in range(0, b, step):
        block = scores[begin : begin + step]
        excluded = None if exclude is None else exclude[begin : begin + step]
        if n >= _SEGMENTED_MIN_ITEMS:
            blocks.append(_top_k_segmented(block, k, excluded, tie_order, rank_of))
        else:
            blocks.append(_top_k_block(block, k, excluded, tie_order, rank_of))
    return np.vstack(blocks)


def _exclusion_pairs(exclude: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, items) of every excluded item."""
    rows = np.repeat(np.arange(len(exclude)), [len(e) for e in exclude])
    cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude] or [_NO_ITEMS])
    return rows, cols


def _top_k_segmented(
    scores: np.ndarray,
    k: int,
    exclude: list[np.ndarray] | None,
    tie_order: np.ndarray,
    rank_of: np.ndarray,
) -> np.ndarray:
    """:func:`top_k_items` of one block of rows of a large catalogue, without copying it.

    Each row is cut into segments of ``_SEGMENT`` items; with ``e`` excluded items, the
    ``(k + e)``-th largest segment maximum ``L`` has at least ``k`` eligible items at or above it,
    so the top k are among the few items scoring ``>= L``: only those are sorted. Rows where that
    does not hold cheaply (NaN, too few segments, too many candidates, a tie at the k-th place
    beyond the top k) take :func:`_top_k_block`, which gives the same answer the slow way.
    """
    b, n = scores.shape
    whole = n // _SEGMENT * _SEGMENT
    maxima = scores[:, :whole].reshape(b, -1, _SEGMENT).max(axis=2)
    if whole < n:
        maxima = np.hstack([maxima, scores[:, whole:].max(axis=1, keepdims=True)])
    maxima = np.sort(maxima, axis=1)  # NaN last
    depth = np.full(b, k, dtype=np.int64)
    if exclude is not None:
        depth += np.array([len(e) for e in exclude], dtype=np.int64)
    slow = (depth > maxima.shape[1]) | np.isnan(maxima[:, -1])
    column = np.clip(maxima.shape[1] - depth, 0, None)
    level = maxima[np.arange(b), column].astype(np.float64)
    level[slow] = np.nan  # compares false: no candidates
    rows, cols = np.nonzero(scores >= level[:, None])
    if exclude is not None:
        ex_rows, ex_cols = _exclusion_pairs(exclude)
        keep = ~np.isin(rows * n + cols, ex_rows * n + ex_cols)
        rows, cols = rows[keep], cols[keep]
    counts = np.bincount(rows, minlength=b)
    slow |= (counts < k) | (counts > _MAX_CANDIDATES_PER_ROW)
    keep = ~slow[rows]
    rows, cols = rows[keep], cols[keep]
    values = scores[rows, cols].astype(np.float64)
    order = np.lexsort((rank_of[cols], -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.searchsorted(rows, np.arange(b))
    place = np.arange(rows.size) - starts[rows]
    kth = np.full(b, np.nan)
    kth[rows[place == k - 1]] = values[place == k - 1]
    beyond = place == k
    slow[rows[beyond][values[beyond] == kth[rows[beyond]]]] = True  # a tie crosses the cut
    best = np.zeros((b, k), dtype=tie_order.dtype)
    taken = (place < k) & ~slow[rows]
    best[~slow] = cols[taken].reshape(-1, k)
    if slow.any():
        picked = np.flatnonzero(slow)
        rest = None if exclude is None else [exclude[p] for p in picked]
        best[slow] = _top_k_block(scores[picked], k, rest, tie_order, rank_of)
    return best


def _working_copy(scores: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
    """A float copy of ``scores`` with NaN and the excluded items at ``-inf``."""
    dtype = scores.dtype if scores.dtype in (np.float32, np.float64) else np.float64
    work = np.array(scores, dtype=dtype, copy=True)
    np.copyto(work, -np.inf, where=np.isnan(work))
    if exclude is not None:
        rows, cols = _exclusion_pairs(exclude)
        work[rows, cols] = -np.inf
    return work


def _top_k_block(
    scores: np.ndarray,
    k: int,
    exclude: list[np.ndarray] | None,
    tie_order: np.ndarray,
    rank_of: np.ndarray,
) -> np.ndarray:
    """:func:`top_k_items` of one block of rows."""
    work = _working_copy(scores, exclude)
    b, n = work.shape
    kth = np.partition(work, n - k, axis=1)[:, n - k] if k < n else work.min(axis=1)
    above = work > kth[:, None]
    at_kth = work == kth[:, None]
    places = k - np.count_nonzero(above, axis=1)
    contested = np.count_nonzero(at_kth, axis=1) > places
    at_kth[contested] = False
    rows, cols = np.nonzero(above | at_kth)
    order = np.lexsort((rank_of[cols], -work[rows, cols], rows))
    best = np.zeros((b, k), dtype=tie_order.dtype)
    clear = np.flatnonzero(~contested)
    best[clear] = cols[order][np.isin(rows[order], clear)].reshape(-1, k)
    if contested.any():
        best[contested] = _top_k_permuted(work[contested], k, tie_order)
    return best


def _top_k_permuted(work: np.ndarray, k: int, tie_order: np.ndarray) -> np.ndarray:
    """Top ``k`` of rows whose k-th score is tied beyond the top k: ``np.argpartition`` over the
    scores in ``tie_order`` (as float64), the method every ranking used before, kept for these
    rows so that which of the tied items enter the top k stays exactly what it was."""
    b, n = work.shape
    permuted = np.asarray(work, dtype=np.float64)[:, tie_order]
    if k < n:
        part = np.argpartition(-permuted, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (b, 1))
    vals = np.take_along_axis(permuted, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return tie_order[np.take_along_axis(part, order, axis=1)]
