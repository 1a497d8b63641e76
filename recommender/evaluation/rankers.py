"""The table's rows as rankers: random, popularity, item-kNN, content-only, a CF model, the hybrid.

Every row except random scores through :func:`recommender.scoring.score_users`, the function the
serving engine calls, so a row measures what would be served (a single signal is the hybrid with
one weight).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from recommender import vocabulary as V
from recommender.evaluation.evaluator import Ranker
from recommender.evaluation.protocol import EvaluationSet
from recommender.scoring import (
    CandidateSearch,
    HybridConfig,
    ScoringModel,
    score_users,
    with_candidates,
)


def random_ranker(seed: int) -> Ranker:
    """Uniform random scores (a fresh seeded generator per call of the returned ranker's owner)."""
    rng = np.random.default_rng(seed)

    def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
        return rng.random((len(batch), batch.n_items)).astype(np.float32)

    return rank


def as_served(model: ScoringModel, batch: EvaluationSet) -> ScoringModel:
    """``model`` with its popularity history counted as ``batch``'s protocol serves it (the
    realistic protocol with live popularity, :func:`~recommender.evaluation.protocol.as_served`);
    ``model`` itself otherwise."""
    history = model.popularity_history
    if batch.live_period_days is None or history is None:
        return model
    served = history.as_served(batch.live_period_days, batch.live_weight)
    return dataclasses.replace(model, popularity_history=served)


def signal_ranker(model: ScoringModel, signal: str) -> Ranker:
    """One signal alone; None for history signals of the ``unknown`` segment."""

    def rank(batch: EvaluationSet, segment: str) -> np.ndarray | None:
        if segment == V.SEGMENT_UNKNOWN and signal not in (V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY):
            return None
        if signal == V.SIGNAL_CONTENT and model.embeddings is None:
            return None
        rows = batch.cf_rows if segment == V.SEGMENT_TRAINABLE else None
        scored_on = as_served(model, batch) if signal == V.SIGNAL_POPULARITY else model
        return score_users(
            scored_on,
            segment,
            batch.histories,
            {signal: 1.0},
            user_rows=rows,
            request_times=batch.request_times,
        )

    return rank


def stale_users(
    batch: EvaluationSet, segment: str, config: HybridConfig, model: ScoringModel | None = None
) -> np.ndarray:
    """``(b,)`` bool: users the stale gate of ``config`` applies to (their newest positive more
    than ``stale_after_hours`` before the request; never ``unknown`` users, who have none).
    Under live popularity (``batch.live_period_days``) only those whose period has counted no
    positive of ``model``'s popularity history before the request: as served, where live
    popularity scores every user on the live model, without the gate."""
    limit = config.stale_seconds
    if limit is None or segment == V.SEGMENT_UNKNOWN or batch.previous_gaps is None:
        return np.zeros(len(batch), dtype=bool)
    gaps = batch.previous_gaps
    stale = np.isfinite(gaps) & (gaps > limit)
    history = None if model is None else model.popularity_history
    if batch.live_period_days is not None and history is not None:
        stale &= ~history.counted_since_period(batch.request_times, batch.live_period_days)
    return stale


def hybrid_ranker(
    model: ScoringModel,
    config: HybridConfig,
    stale_model: ScoringModel | None = None,
    candidates: CandidateSearch | None = None,
) -> Ranker:
    """The tuned hybrid of ``config`` for each segment; users past the stale gate are scored on
    ``stale_model`` (``model`` with the gate's popularity, :func:`~recommender.scoring.
    with_popularity`) when given, as serving does. ``candidates``: the served ANN candidate
    stage (:func:`~recommender.scoring.candidates.build_search`), so that the row ranks as
    served."""
    if candidates is not None:
        model = with_candidates(model, candidates)
        stale_model = None if stale_model is None else with_candidates(stale_model, candidates)

    def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
        if stale_model is None:
            return plain(model, batch, segment)
        stale = stale_users(batch, segment, config, model)
        if not stale.any():
            return plain(model, batch, segment)
        out = np.empty((len(batch), batch.n_items), dtype=np.float32)
        for chosen, scored_on in ((~stale, model), (stale, stale_model)):
            positions = np.flatnonzero(chosen)
            if positions.size:
                out[positions] = plain(scored_on, batch.subset(positions), segment)
        return out

    def plain(scored_on: ScoringModel, batch: EvaluationSet, segment: str) -> np.ndarray:
        rows = batch.cf_rows if segment == V.SEGMENT_TRAINABLE else None
        return score_users(
            as_served(scored_on, batch),
            segment,
            batch.histories,
            config.for_segment(segment),
            config.normalisation,
            user_rows=rows,
            recency_decay=config.recency_decay,
            request_times=batch.request_times,
        )

    return rank


def baseline_rankers(model: ScoringModel, seed: int) -> dict[str, Ranker]:
    """random, popularity, item-kNN and content-only rows (CF factors of ``model`` unused)."""
    return {
        V.ROW_RANDOM: random_ranker(seed),
        V.ROW_POPULARITY: signal_ranker(model, V.SIGNAL_POPULARITY),
        V.ROW_ITEM_KNN: signal_ranker(model, V.SIGNAL_ITEM_SIMILARITY),
        V.ROW_CONTENT: signal_ranker(model, V.SIGNAL_CONTENT),
    }


SINGLE_SIGNAL_ROWS = (V.ROW_POPULARITY, V.ROW_ITEM_KNN, V.ROW_CONTENT)


def best_single_candidates(rows: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Each hybrid row of ``rows`` -> the single-signal rows it is compared with: popularity,
    item-kNN, content and its own CF model (``hybrid:als`` -> ``als``; a plain ``hybrid`` -> every
    CF model row present)."""
    out: dict[str, list[str]] = {}
    for row in rows:
        base, _, model = row.partition(":")
        if base != V.ROW_HYBRID:
            continue
        models = [model] if model else [r for r in rows if r in V.MODEL_TYPES]
        out[row] = [r for r in (*SINGLE_SIGNAL_ROWS, *models) if r in rows]
    return out
