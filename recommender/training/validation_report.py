"""The served hybrid on validation under the headline (realistic) protocol, per segment and slice.

Why: the choices of a build (tuning protocol, half-lives, gates, promotion) must be compared on
validation numbers that mean what the test table's headline means. The weight search reports
its objective under ``tuning.protocol`` and promotion only the trainable users; this report scores
the final hybrid (weights, recency, fold-in, stale gate) and popularity alone on the cross-fitted
validation folds, realistic view, for the trainable users and the cold tuning population
(``hybrid.cold_population``: every user cut to its newest item, the test's one-item task), and
the *later* slice's paired gain over popularity. Test data is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import EvaluationSettings
from recommender.evaluation.evaluator import per_user_metric
from recommender.evaluation.protocol import SLICE_LATER, EvaluationSet, realistic_view
from recommender.evaluation.rankers import hybrid_ranker, signal_ranker
from recommender.scoring import HybridConfig, ScoringModel
from recommender.training.hybrid_tuning import cold_tuning_set

METRIC = "ndcg@10"
Fold = tuple[ScoringModel, ScoringModel | None, EvaluationSet]  # served, stale-gate model, users


def _segment_users(users: EvaluationSet, segment: str, cold_population: str) -> EvaluationSet:
    """The validation users ``segment`` is reported on (cold: its tuning population)."""
    if segment == V.SEGMENT_COLD:
        users = cold_tuning_set(users, cold_population)
    return users.subset(users.segment_indices(segment))


def realistic_validation(
    folds: Sequence[Fold],
    config: HybridConfig,
    settings: EvaluationSettings,
    cold_population: str,
    ties: np.ndarray,
    trainable_hybrid: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """``{segment: {"users", "hybrid", "popularity", "later": {"users", "hybrid", "popularity",
    "gain", "z"}}}`` for trainable and cold, pooled over ``folds`` (means of NDCG@10).

    ``trainable_hybrid``: the hybrid's per-user values of the trainable users, folds concatenated
    (:func:`~recommender.training.promotion.validation_per_user`, already computed for promotion
    on the same users): not ranked again."""
    report: dict[str, dict[str, Any]] = {}
    for segment in (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD):
        given = trainable_hybrid if segment == V.SEGMENT_TRAINABLE else None
        hybrid, popularity, later = [], [], []
        for model, stale, users in folds:
            view = realistic_view(
                _segment_users(users, segment, cold_population),
                settings.rebuild_period_days,
                settings.live_popularity,
                settings.live_event_weight,
            )
            if len(view) == 0:
                continue
            if given is None:
                ranker = hybrid_ranker(model, config, stale)
                hybrid.append(per_user_metric(ranker, view, segment, METRIC, ties))
            pop = signal_ranker(model, V.SIGNAL_POPULARITY)
            popularity.append(per_user_metric(pop, view, segment, METRIC, ties))
            later.append(view.slice_indices(SLICE_LATER, settings.same_session_hours))
        if not popularity:
            continue
        p = np.concatenate(popularity)
        h = np.concatenate(hybrid) if given is None else given
        if h.shape != p.shape:
            raise ValueError(f"{segment}: {h.size} hybrid values for {p.size} validation users")
        offsets = np.cumsum([0] + [len(v) for v in popularity[:-1]])
        cut = np.concatenate([o + s for o, s in zip(offsets, later, strict=True)]).astype(int)
        gain = h[cut] - p[cut]
        error = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else 0.0
        report[segment] = {
            "users": int(h.size),
            "hybrid": round(float(h.mean()), 6),
            "popularity": round(float(p.mean()), 6),
            "later": {
                "users": int(cut.size),
                "hybrid": round(float(h[cut].mean()), 6) if cut.size else 0.0,
                "popularity": round(float(p[cut].mean()), 6) if cut.size else 0.0,
                "gain": round(float(gain.mean()), 6) if cut.size else 0.0,
                "z": round(float(gain.mean()) / error, 2) if error > 0 else None,
            },
        }
    return report


def summary_line(report: dict[str, dict[str, Any]]) -> str:
    """One progress line of :func:`realistic_validation`'s report."""
    parts = []
    for segment, body in report.items():
        later = body["later"]
        parts.append(
            f"{segment} {body['hybrid']:.4f} (popularity {body['popularity']:.4f}, "
            f"{body['users']} users), later {later['gain']:+.4f} vs popularity "
            f"(z {later['z']}, {later['users']} users)"
        )
    return "; ".join(parts)
