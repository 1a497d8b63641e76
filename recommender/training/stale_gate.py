"""Choose the stale gate's popularity half-life on validation (:class:`HybridConfig` docstring).

On the Hasaki reviews the tuned popularity (half-life ~3.5 days) is the best single signal, but
it is tuned on every user, and most of its value is on same-day basket items: for users whose
newest positive is more than a day old, popularity with a half-life of 14-30 days ranks their
next item better on validation and on test (realistic protocol, later slice: 0.102 -> 0.116 for
popularity alone). The gate keeps the tuned weights and only swaps the popularity vector for
those users, so it adds one parameter, chosen here on the cross-fitted validation folds.

A candidate half-life is kept only when its paired per-user gain over no gate, pooled over the
folds and the trainable and cold validation users past the gate, is positive and at least
``min_z`` standard errors (the rule of the weight search): the stale users are a few hundred.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import HybridTuningSettings
from recommender.data.processed import ProcessedData
from recommender.evaluation.protocol import EvaluationSet
from recommender.evaluation.rankers import as_served, stale_users
from recommender.evaluation.side_signals import stale_model
from recommender.scoring import HybridConfig, ScoringModel, compute_signals, normalise
from recommender.training.hybrid_tuning import (
    _Objective,
    _sample,
    segment_signals,
    significant_gain,
)

log = logging.getLogger(__name__)
GATED_SEGMENTS = (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD)


def tune_stale_gate(
    folds: Sequence[tuple[ScoringModel, EvaluationSet, ProcessedData]],
    config: HybridConfig,
    settings: HybridTuningSettings,
    seed: int,
    ties: np.ndarray,
) -> tuple[HybridConfig, dict[str, Any]]:
    """``config`` with the stale gate chosen on ``folds`` (model, validation set, fold data),
    or unchanged when no candidate half-life validates (see the module docstring)."""
    hours = settings.stale_after_hours
    report: dict[str, Any] = {"after_hours": hours, "gated": False}
    if hours <= 0 or not settings.stale_half_lives:
        return config, report
    gated = dataclasses.replace(config, stale_after_hours=float(hours))
    weighted = [
        s for s in GATED_SEGMENTS if config.for_segment(s).get(V.SIGNAL_POPULARITY, 0.0) > 0
    ]
    if not weighted:  # popularity weighs nothing for users with history: the gate cannot matter
        report["skipped"] = "no popularity weight in the trainable or cold weights"
        return config, report
    n_items = folds[0][1].n_items
    per_fold = max(1, settings.tuning_users(n_items) // len(folds))
    parts: list[tuple[_Objective, int, str]] = []  # objective, fold, segment
    for k, (model, users, _) in enumerate(folds):
        for segment in weighted:
            sample = _sample(users, segment, per_fold, seed + k, settings.cold_population)
            stale = np.flatnonzero(stale_users(sample, segment, gated, model))
            if stale.size:
                signals = segment_signals(model, segment)
                objective = _Objective(
                    model,
                    sample.subset(stale),
                    segment,
                    signals,
                    config.normalisation,
                    ties,
                    config.recency_decay,
                )
                parts.append((objective, k, segment))
    report["users"] = sum(len(objective.users) for objective, _, _ in parts)
    if report["users"] < 2:
        return config, report

    def values() -> np.ndarray:
        return np.concatenate([o.per_user(config.for_segment(s)) for o, _, s in parts])

    base = values()
    own = [objective.normalised[V.SIGNAL_POPULARITY] for objective, _, _ in parts]
    report["ungated_ndcg@10"] = round(float(base.mean()), 6)
    report["by_half_life"] = {}
    chosen: float | None = None
    chosen_mean = float(base.mean())
    found = False
    for half_life in settings.stale_half_lives:
        # only popularity changes: swap it into each objective (one history per fold)
        slow = [stale_model(m, data, V.STAGE_VALIDATION, half_life) for m, _, data in folds]
        for objective, k, _ in parts:
            raw = compute_signals(
                as_served(slow[k], objective.users),
                objective.segment,
                objective.users.histories,
                [V.SIGNAL_POPULARITY],
                request_times=objective.users.request_times,
            )[V.SIGNAL_POPULARITY]
            objective.normalised[V.SIGNAL_POPULARITY] = normalise(raw, config.normalisation)
        trial = values()
        mean = float(trial.mean())
        report["by_half_life"][str(half_life)] = round(mean, 6)
        if significant_gain(trial - base, settings.min_z) and mean > chosen_mean + 1e-12:
            chosen, chosen_mean, found = half_life, mean, True
    for (objective, _, _), popularity in zip(parts, own, strict=True):
        objective.normalised[V.SIGNAL_POPULARITY] = popularity
    log.info("stale gate (%s h): %s", hours, report)
    if not found:
        return config, report
    report["gated"] = True
    report["half_life_days"] = chosen
    report["gated_ndcg@10"] = round(chosen_mean, 6)
    return dataclasses.replace(gated, stale_popularity_half_life_days=chosen), report
