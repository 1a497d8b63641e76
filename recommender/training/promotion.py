"""Choose the model ``build`` promotes: a configured default, replaced only on significant evidence.

"The best validation value wins" was noise on a small shop: on the Hasaki reviews BPR's hybrid
won by +0.006 NDCG@10 on ~500 validation users (well inside one standard error) while ALS's
hybrid was 0.014 better on test. So the first trained model of ``promotion.order`` (the default,
chosen on evidence other than any shop's test set: ``config/training.yaml``) is promoted unless
another candidate's paired per-user validation gain over it is significant by
:func:`~recommender.training.hybrid_tuning.significant_gain` (the rule of every other validation
choice) at ``promotion.min_z`` standard errors; among significant candidates the largest mean
gain wins. Test data is never looked at.

The per-user values are the served hybrid (weights, recency, fold-in λ, stale gate) on the
trainable users of the cross-fitted validation folds, under the realistic protocol (popularity as
of the last rebuild): every candidate is scored on the same users, so the gains are paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import EvaluationSettings
from recommender.evaluation.evaluator import per_user_metric
from recommender.evaluation.protocol import EvaluationSet, realistic_view
from recommender.evaluation.rankers import hybrid_ranker
from recommender.scoring import HybridConfig, ScoringModel
from recommender.training.hybrid_tuning import significant_gain

METRIC = "ndcg@10"


def validation_per_user(
    folds: Sequence[tuple[ScoringModel, ScoringModel | None, EvaluationSet]],
    config: HybridConfig,
    settings: EvaluationSettings,
    ties: np.ndarray,
) -> np.ndarray:
    """NDCG@10 of each trainable validation user under the served hybrid ``config``, folds
    concatenated in order; a fold is (served model, its stale-gate model or None, users)."""
    parts = [
        per_user_metric(
            hybrid_ranker(model, config, stale),
            realistic_view(
                users,
                settings.rebuild_period_days,
                settings.live_popularity,
                settings.live_event_weight,
            ),
            V.SEGMENT_TRAINABLE,
            METRIC,
            ties,
        )
        for model, stale, users in folds
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def _z(gain: np.ndarray) -> float | None:
    """Mean over standard error of a paired gain (None: fewer than two users or no spread)."""
    if gain.size < 2:
        return None
    error = float(gain.std(ddof=1) / np.sqrt(gain.size))
    return None if error == 0 else float(gain.mean()) / error


def choose_promoted(
    per_user: Mapping[str, np.ndarray], order: Sequence[str], min_z: float
) -> tuple[str, dict[str, Any]]:
    """The model to promote among ``per_user`` (model type -> paired per-user validation values)
    and a report of the decision (see the module docstring).

    The default is the first of ``order`` present; with none of them trained, the first of
    ``per_user``. ValueError when ``per_user`` is empty or its arrays are not paired.
    """
    if not per_user:
        raise ValueError("no trained model to promote")
    sizes = {m: v.shape for m, v in per_user.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"validation values are not paired (one value per user): {sizes}")
    default = next((m for m in order if m in per_user), next(iter(per_user)))
    base = np.asarray(per_user[default], dtype=np.float64)
    chosen, chosen_gain = default, 0.0
    candidates: dict[str, dict[str, Any]] = {}
    for model, values in per_user.items():
        gain = np.asarray(values, dtype=np.float64) - base
        mean = float(gain.mean()) if gain.size else 0.0
        significant = model != default and gain.size > 0 and significant_gain(gain, min_z)
        z = _z(gain)
        candidates[model] = {
            METRIC: round(float(np.mean(values)) if gain.size else 0.0, 6),
            "gain": round(mean, 6),
            "z": None if z is None else round(z, 3),
            "significant": significant,
        }
        if significant and mean > chosen_gain:
            chosen, chosen_gain = model, mean
    report = {
        "rule": "default unless a paired validation gain is significant",
        "order": list(order),
        "default": default,
        "min_z": min_z,
        "users": int(base.size),
        "chosen": chosen,
        "candidates": candidates,
    }
    return chosen, report
