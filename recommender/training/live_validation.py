"""Validation that mirrors live serving: a time cut *inside* the build's own data.

Leave-last-out validation scores every user with signals fit on data up to the moment of their
held-out item (item-kNN, CF and popularity are all fresh). A served model is not: between builds
its factors and co-occurrences age while live events keep popularity and the user's history
fresh. On the Hasaki replay (``evaluate --replay``) the weights tuned on leave-last-out lost to
live popularity alone on the users with history, because they lean on the aged signals.

This module re-plays that situation on validation data only. It cuts the build's ``train + val``
interactions (never ``test``: the offline test table must stay untouched by this choice) at T',
the ``1 - hybrid.live_fraction`` quantile of their timestamps; the signals are fit on the rows
before T' (the model's own hyperparameters), and every positive after T' on an item new to its
user is one event, ranked with the user's positives before it (the model's and the "live"
ones), popularity as of the event (all positives before it: live popularity), and the segment
the live service would give the user (trainable: a CF row in the pre-T' fit; cold: positives
but no row). Two choices are made per model type from it:

- ``live_fold_in`` (:func:`choose_fold_in`): for trainable users with live positives, whether
  folding the CF vector in from the full history (``events.trainable_fold_in``) beats the stored
  row, compared on their events under the tuned trainable weights;
- a popularity floor per segment (:func:`choose_popularity_floor`): the tuned weights moved
  toward popularity, ``w <- (1 - p) w + p e_popularity`` (p = 1: popularity alone), with the
  ascent's own rule (kept only when the paired gain is >= ``min_z`` standard errors).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import (
    ALSParams,
    ItemKNNParams,
    PopularityParams,
    TrainingSettings,
)
from recommender.data.matrix import item_codes, user_item_matrix
from recommender.data.processed import ProcessedData, unix_seconds
from recommender.evaluation.protocol import EvaluationSet, history_splits
from recommender.evaluation.side_signals import (
    AlignedEmbeddings,
    scoring_model,
    stage_popularity,
    stage_signals,
)
from recommender.scoring import HybridConfig, Refold, ScoringModel
from recommender.training.hybrid_tuning import _Objective, _Pooled, segment_signals
from recommender.training.tuning import Params, fit_model

log = logging.getLogger(__name__)
LIVE_SEGMENTS = (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD)


@dataclass(frozen=True)
class LiveStream:
    """The build's train + val rows cut at ``cutoff``: the pre-T' data and the streamed events.

    ``events`` holds one row per scored event (target = the event's item, history = the user's
    positives before it, ``cf_rows`` = the pre-T' CF row or -1, ``request_times`` = its time);
    ``live_counts`` how many of each history's items came from the stream.
    """

    cutoff: float
    before: ProcessedData  # only rows before T', labelled train
    events: EvaluationSet
    live_counts: np.ndarray


@dataclass(frozen=True)
class LiveChoice:
    """What the live validation decided for one model type, and the values it decided on."""

    hybrid: HybridConfig
    live_fold_in: bool | None  # None: no trainable event with live positives to decide on
    report: dict[str, Any]
    refold: Refold | None = None  # how a trainable user's CF vector is refolded (None: as cold)


def live_stream(data: ProcessedData, fraction: float) -> LiveStream | None:
    """Cut ``data``'s train + val rows at the ``1 - fraction`` time quantile (None: nothing to
    stream, or ``fraction`` 0)."""
    frame = data.interactions
    frame = frame.loc[frame[V.SPLIT].isin(list(history_splits(V.STAGE_TEST)))]
    if fraction <= 0 or frame.empty:
        return None
    seconds = unix_seconds(frame)
    cutoff = float(np.quantile(seconds, 1.0 - fraction))
    early = seconds < cutoff
    before = frame.loc[early].assign(**{V.SPLIT: V.SPLIT_TRAIN})
    before_data = dataclasses.replace(data, interactions=before)
    order = np.argsort(seconds[~early], kind="stable")
    after = frame.loc[~early].iloc[order]
    codes_before, codes_after = item_codes(data, before), item_codes(data, after)
    positive_before = before[V.IS_POSITIVE].astype(bool).to_numpy()
    liked: dict[str, list[int]] = {}
    seen: dict[str, set[int]] = {}
    for user, item, positive in zip(
        before[V.USER_ID].astype(str), codes_before, positive_before, strict=True
    ):
        seen.setdefault(user, set()).add(int(item))
        if positive:
            liked.setdefault(user, []).append(int(item))
    # a CF row at T' by prepare's rule on the rows before T' (>= 2 interactions, >= 1 positive):
    # a user with a single interaction before T' is cold there, as in a model built at T'
    counts = before.groupby(before[V.USER_ID].astype(str)).size()
    trainable_then = {u for u, n in counts.items() if n >= 2 and liked.get(str(u))}
    cf_index = data.trainable_index
    users: list[str] = []
    targets: list[np.ndarray] = []
    histories: list[np.ndarray] = []
    seens: list[np.ndarray] = []
    cf_rows: list[int] = []
    times: list[float] = []
    live_counts: list[int] = []
    streamed: dict[str, int] = {}
    after_seconds = unix_seconds(after)
    for user, item, positive, moment in zip(
        after[V.USER_ID].astype(str),
        codes_after,
        after[V.IS_POSITIVE].astype(bool).to_numpy(),
        after_seconds,
        strict=True,
    ):
        item = int(item)
        user_seen = seen.setdefault(user, set())
        if positive and item not in user_seen and liked.get(user):
            row = cf_index.get(user, -1)
            users.append(user)
            targets.append(np.array([item], dtype=np.int64))
            histories.append(np.array(liked[user], dtype=np.int64))
            seens.append(np.array(sorted(user_seen), dtype=np.int64))
            cf_rows.append(row if row >= 0 and user in trainable_then else -1)
            times.append(float(moment))
            live_counts.append(streamed.get(user, 0))
        user_seen.add(item)
        if positive and item not in liked.setdefault(user, []):
            liked[user].append(item)
            streamed[user] = streamed.get(user, 0) + 1
    if not users:
        return None
    events = EvaluationSet(
        stage=V.STAGE_VALIDATION,
        user_ids=users,
        targets=targets,
        histories=histories,
        weights=[np.ones(len(h), dtype=np.float32) for h in histories],
        seen=seens,
        cf_rows=np.array(cf_rows, dtype=np.int64),
        n_items=len(data.item_ids),
        request_times=np.array(times, dtype=np.int64),
    )
    return LiveStream(cutoff, before_data, events, np.array(live_counts, dtype=np.int64))


def live_model(
    stream: LiveStream,
    data: ProcessedData,
    model_type: str,
    params: Params,
    item_knn: ItemKNNParams,
    popularity: PopularityParams,
    aligned: AlignedEmbeddings | None,
    fold_in_regularization: float,
) -> ScoringModel:
    """The signals as served at T': CF / item-kNN / quality fit before T'; popularity as of each
    event from every train + val positive before it (live popularity)."""
    side = stage_signals(stream.before, V.STAGE_VALIDATION, item_knn, aligned, popularity)
    live_pop = stage_popularity(data, history_splits(V.STAGE_TEST), popularity)
    side = dataclasses.replace(side, popularity_history=live_pop)
    factors = fit_model(model_type, user_item_matrix(stream.before, (V.SPLIT_TRAIN,)), params)
    return scoring_model(factors, side, fold_in_regularization)


def choose_fold_in(stored: np.ndarray, folded: np.ndarray) -> bool | None:
    """Fold the CF vector in from the full history when that scores better than the stored row
    on the same events (None: no event to compare on; the stored row wins ties)."""
    if stored.size == 0:
        return None
    return bool(folded.mean() > stored.mean() + 1e-12)


def choose_popularity_floor(values: Mapping[float, np.ndarray], min_z: float) -> float:
    """The popularity share ``p`` (0 = the tuned weights) with the best mean per-event NDCG among
    those whose paired gain over ``p = 0`` is positive and >= ``min_z`` standard errors."""
    base = values[0.0]
    chosen, chosen_mean = 0.0, float(base.mean()) if base.size else 0.0
    for share in sorted(values):
        if share == 0.0 or base.size < 2:
            continue
        gain = values[share] - base
        error = float(gain.std(ddof=1) / np.sqrt(gain.size))
        mean = float(values[share].mean())
        if gain.mean() > 1e-9 and gain.mean() >= min_z * error and mean > chosen_mean + 1e-12:
            chosen, chosen_mean = share, mean
    return chosen


def toward_popularity(weights: Mapping[str, float], share: float) -> dict[str, float]:
    """``(1 - share) * weights + share * e_popularity``, rounded like the tuned weights."""
    names = set(weights) | {V.SIGNAL_POPULARITY}
    moved = {
        s: (1.0 - share) * weights.get(s, 0.0) + share * float(s == V.SIGNAL_POPULARITY)
        for s in names
    }
    return {s: round(w, 6) for s, w in moved.items() if w > 1e-9}


def refold_candidates(model_type: str, params: object, boosts: Sequence[float]) -> list[Refold]:
    """The refolds live validation chooses from: ALS's user step with each newest-item boost
    (other model types refold like a cold user: none)."""
    if model_type != V.MODEL_ALS or not isinstance(params, ALSParams):
        return []
    return [Refold(float(params.regularization), float(params.alpha), float(b)) for b in boosts]


def choose_refold(
    candidates: Sequence[tuple[Refold | None, np.ndarray]],
) -> tuple[Refold | None, np.ndarray]:
    """The refold with the best mean per-event NDCG; an earlier candidate wins ties."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if candidate[1].mean() > best[1].mean() + 1e-12:
            best = candidate
    return best


def tune_live(
    stream: LiveStream | None,
    model: ScoringModel | None,
    hybrid: HybridConfig,
    settings: TrainingSettings,
    ties: np.ndarray,
    refolds: Sequence[Refold] = (),
) -> LiveChoice:
    """``live_fold_in``, the refold (one of ``refolds`` or the cold fold-in) and the
    per-segment popularity floors of ``hybrid`` (see module doc)."""
    if stream is None or model is None:
        return LiveChoice(hybrid, None, {"events": 0}, refolds[0] if refolds else None)
    tuning = settings.hybrid
    events, method, decay = stream.events, hybrid.normalisation, hybrid.recency_decay
    report: dict[str, Any] = {
        "cutoff": stream.cutoff,
        "fraction": tuning.live_fraction,
        "events": len(events),
    }

    def objective(
        positions: np.ndarray, segment: str, scored_as: str, on: ScoringModel = model
    ) -> _Objective:
        signals = segment_signals(on, segment)
        return _Objective(on, events.subset(positions), scored_as, signals, method, ties, decay)

    limit = tuning.live_users(events.n_items)
    trainable = _bounded(np.flatnonzero(events.cf_rows >= 0), limit, settings.seed)
    cold = _bounded(np.flatnonzero(events.cf_rows < 0), limit, settings.seed + 1)
    refold = trainable[stream.live_counts[trainable] > 0]
    stale = trainable[stream.live_counts[trainable] == 0]
    weights_t = hybrid.for_segment(V.SEGMENT_TRAINABLE)
    fold_in: bool | None = None
    chosen_refold = refolds[0] if refolds else None
    if refold.size:
        stored = objective(refold, V.SEGMENT_TRAINABLE, V.SEGMENT_TRAINABLE).per_user(weights_t)
        candidates: list[tuple[Refold | None, np.ndarray]] = [
            (
                r,
                objective(
                    refold, V.SEGMENT_TRAINABLE, V.SEGMENT_COLD, _refolding(model, r)
                ).per_user(weights_t),
            )
            for r in refolds
        ]
        cold_fold = objective(refold, V.SEGMENT_TRAINABLE, V.SEGMENT_COLD).per_user(weights_t)
        candidates.append((None, cold_fold))
        chosen_refold, folded = choose_refold(candidates)
        fold_in = choose_fold_in(stored, folded)
        report["fold_in"] = {
            "events": int(refold.size),
            "stored_row_ndcg@10": round(float(stored.mean()), 6),
            "fold_in_ndcg@10": round(float(folded.mean()), 6),
            "cold_fold_in_ndcg@10": round(float(cold_fold.mean()), 6),
            "refold_ndcg@10": {
                str(r.newest_boost): round(float(v.mean()), 6)
                for r, v in candidates
                if r is not None
            },
            "refold": None if chosen_refold is None else chosen_refold.to_dict(),
            "live_fold_in": fold_in,
        }
    refold_path = V.SEGMENT_COLD if fold_in else V.SEGMENT_TRAINABLE  # the CF path serving takes
    refold_model = _refolding(model, chosen_refold) if fold_in else model
    parts = {
        V.SEGMENT_TRAINABLE: [
            objective(stale, V.SEGMENT_TRAINABLE, V.SEGMENT_TRAINABLE) if stale.size else None,
            objective(refold, V.SEGMENT_TRAINABLE, refold_path, refold_model)
            if refold.size
            else None,
        ],
        V.SEGMENT_COLD: [objective(cold, V.SEGMENT_COLD, V.SEGMENT_COLD) if cold.size else None],
    }
    weights = {s: dict(w) for s, w in hybrid.weights.items()}
    shares = sorted({0.0, *tuning.live_popularity_shares})
    for segment in LIVE_SEGMENTS:
        present = [p for p in parts[segment] if p is not None]
        if not present:
            continue
        pooled = _Pooled(present)
        tuned = hybrid.for_segment(segment)
        values = {p: pooled.per_user(toward_popularity(tuned, p)) for p in shares}
        share = choose_popularity_floor(values, tuning.min_z)
        popularity_only = pooled.per_user({V.SIGNAL_POPULARITY: 1.0})
        if share > 0:
            weights[segment] = toward_popularity(tuned, share)
        report[segment] = {
            "events": int(values[0.0].size),
            "tuned_ndcg@10": round(float(values[0.0].mean()), 6),
            "popularity_ndcg@10": round(float(popularity_only.mean()), 6),
            "by_share": {str(p): round(float(v.mean()), 6) for p, v in values.items()},
            "popularity_share": share,
        }
    log.info("live validation: %s", report)
    chosen = dataclasses.replace(hybrid, weights=weights)
    return LiveChoice(chosen, fold_in, report, chosen_refold)


def _bounded(positions: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """``positions``, or a seeded sorted sample of ``limit`` of them (``limit`` 0: all). Why:
    each objective holds ``(users × n_items)`` float32 per signal; at 1M users × 50K products
    every live user made ~18 GB."""
    if not limit or positions.size <= limit:
        return positions
    return np.sort(np.random.default_rng(seed).choice(positions, limit, replace=False))


def _refolding(model: ScoringModel, refold: Refold | None) -> ScoringModel:
    """The model a trainable user's refold is scored on under ``refold`` (None: cold fold-in)."""
    return dataclasses.replace(model, refold=refold).refold_model
