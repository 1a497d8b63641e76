"""Tune the hybrid's per-segment weights on the validation split.

The search space is the simplex over the signals a segment has ({cf, content, item_similarity,
popularity, quality}; unknown users only popularity/quality), for each normalisation. It starts
from the best *single* signal and does coordinate ascent: move the weights toward one signal's
vertex, ``w ← (1 − t)·w + t·e_s``, keep the move when validation NDCG@10 rises. The single
signals are points of the space and a move is only kept when it improves, so on validation the
tuned hybrid is never worse than its best component, by construction.

The objective uses exactly the scores serving computes: :func:`recommender.scoring.compute_signals`
+ :func:`recommender.scoring.normalise`, summed with the weights — the definition of
:func:`recommender.scoring.combine` inside :func:`recommender.scoring.score_users` (a test checks
the equality). Normalised signals are computed once per segment, so each trial is one weighted sum
and one ranking.

The cold segment is tuned on the population it is tested on: users whose history is ONE item,
the newest one before the target (:func:`cold_tuning_set`, ``hybrid.cold_population``). The
evaluation cold segment of the *validation* stage holds only users with exactly one positive
before their val item — i.e. users with >= 3 positives, a few hundred on Hasaki — while the test
cold segment is users with exactly 2 positives; weights tuned on that small, different group
(item-kNN/popularity heavy on one run, CF/content heavy on another) did not transfer to test.
``last_item`` instead scores every validation user from the newest history item alone (twice the
users on Hasaki, and the same "one item → next item" task); in a nested check on validation
(tune on half the users, score the other half) it transferred better than ``exact``.

The recency decay of history items (``HybridConfig.recency_decay``, see
:func:`recommender.scoring.recency_weights`) is chosen after the weights, by :func:`_tune_recency`:
on the Hasaki reviews ~44% of held-out items follow the previous one within 24 h, so the newest
history items predict the next one best.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import HybridTuningSettings
from recommender.evaluation import metrics as M
from recommender.evaluation.evaluator import mean_metric, tie_order
from recommender.evaluation.protocol import EvaluationSet, top_k_items
from recommender.evaluation.rankers import as_served
from recommender.scoring import (
    HybridConfig,
    ScoringModel,
    compute_signals,
    normalise,
    score_users,
    with_fold_in_regularization,
)
from recommender.training.progress import grid_bar

log = logging.getLogger(__name__)

OBJECTIVE = "ndcg@10"
_K = 10


@dataclass(frozen=True)
class HybridTuning:
    """The tuned hybrid and what validation said about it."""

    config: HybridConfig
    fold_in_regularization: float
    validation: dict[str, dict[str, object]]  # segment -> {"hybrid", "single": {signal: ndcg}}


def segment_signals(model: ScoringModel, segment: str) -> list[str]:
    """Signals that carry information for ``segment`` with this model."""
    if segment == V.SEGMENT_UNKNOWN:
        return [V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY]
    names = [V.SIGNAL_CF, V.SIGNAL_ITEM_SIMILARITY, V.SIGNAL_POPULARITY, V.SIGNAL_QUALITY]
    if model.embeddings is not None:
        names.insert(2, V.SIGNAL_CONTENT)
    return names


def cold_tuning_set(users: EvaluationSet, population: str) -> EvaluationSet:
    """The validation users the cold segment is tuned on (see the module docstring).

    ``exact``: the evaluation cold segment (history of exactly one item). ``last_item``: every user
    with a history, cut to its newest item (the history's weights too; ``seen`` stays whole, so
    the older items are still excluded from the ranking as the protocol excludes train items).
    """
    if population == "exact":
        return users.subset(users.segment_indices(V.SEGMENT_COLD))
    if population != "last_item":
        raise ValueError(f"unknown cold population {population!r}; expected exact or last_item")
    kept = users.subset(np.flatnonzero([len(h) > 0 for h in users.histories]))
    return dataclasses.replace(
        kept,
        histories=[h[-1:] for h in kept.histories],
        weights=[w[-1:] for w in kept.weights],
    )


def _sample(
    eval_set: EvaluationSet, segment: str, max_users: int, seed: int, cold_population: str
) -> EvaluationSet:
    if segment == V.SEGMENT_COLD:
        eval_set = cold_tuning_set(eval_set, cold_population)
    positions = eval_set.segment_indices(segment)
    if positions.size > max_users:
        positions = np.sort(np.random.default_rng(seed).choice(positions, max_users, replace=False))
    return eval_set.subset(positions)


class _Objective:
    """NDCG@10 of ``Σ w_s · normalised_s`` on a fixed user sample (cached normalised signals)."""

    def __init__(
        self,
        model: ScoringModel,
        users: EvaluationSet,
        segment: str,
        signals: Sequence[str],
        method: str,
        ties: np.ndarray,
        recency_decay: float = 1.0,
    ) -> None:
        rows = users.cf_rows if segment == V.SEGMENT_TRAINABLE else None
        raw = compute_signals(
            as_served(model, users),  # popularity as the users' protocol serves it
            segment,
            users.histories,
            list(signals),
            rows,
            recency_decay,
            users.request_times,
        )
        self.signals = [s for s in signals if s in raw]
        self.normalised = {s: normalise(raw[s], method) for s in self.signals}
        self.users, self.segment, self.ties = users, segment, ties
        self.exclude = None if segment == V.SEGMENT_UNKNOWN else users.seen

    def per_user(self, weights: dict[str, float]) -> np.ndarray:
        """NDCG@10 of each sampled user under ``weights``."""
        total = np.zeros((len(self.users), self.users.n_items), dtype=np.float32)
        for name, weight in weights.items():
            if weight > 0:
                total += np.float32(weight) * self.normalised[name]
        top = top_k_items(total, _K, self.exclude, self.ties)
        hits = M.hits_matrix(top, self.users.targets)
        return M.ndcg(hits, _K, self.users.targets)

    def __call__(self, weights: dict[str, float]) -> float:
        return float(self.per_user(weights).mean())


def _ascend(
    objective: _Objective | _Pooled,
    steps: Sequence[float],
    rounds: int,
    min_z: float = 0.0,
    starts: int = 1,
) -> tuple[dict[str, float], float, dict[str, float]]:
    """Coordinate ascent from each of the ``starts`` best single signals; the best end point wins.

    A move is kept only when the paired per-user gain over the current weights is positive and
    at least ``min_z`` standard errors: validation sets are small (hundreds of users), so unproven
    moves tend not to transfer. Several starts because the search is local: on Hasaki's cold path
    the best mixture sits near item-kNN even when CF is the best single signal.
    """
    singles_per_user = {s: objective.per_user({s: 1.0}) for s in objective.signals}
    singles = {s: float(v.mean()) for s, v in singles_per_user.items()}
    ranked = sorted(objective.signals, key=lambda s: (-singles[s], objective.signals.index(s)))
    best: dict[str, float] | None = None
    best_users = singles_per_user[ranked[0]]
    for start in ranked[: max(1, starts)]:
        weights = {s: float(s == start) for s in objective.signals}
        users = singles_per_user[start]
        weights, users = _climb(objective, weights, users, steps, rounds, min_z)
        if best is None or users.mean() > best_users.mean() + 1e-12:
            best, best_users = weights, users
    assert best is not None
    return best, float(best_users.mean()), singles


def significant_gain(gain: np.ndarray, min_z: float) -> bool:
    """Whether a paired per-user ``gain`` is positive and at least ``min_z`` standard errors (one
    user: positive is enough): the rule every validation choice of the hybrid follows."""
    error = gain.std(ddof=1) / np.sqrt(gain.size) if gain.size > 1 else 0.0
    return bool(gain.mean() > 1e-9 and gain.mean() >= min_z * error)


def _climb(
    objective: _Objective | _Pooled,
    best: dict[str, float],
    best_users: np.ndarray,
    steps: Sequence[float],
    rounds: int,
    min_z: float,
) -> tuple[dict[str, float], np.ndarray]:
    """Steepest ascent: each round tries every move and keeps the best significant one."""
    for _ in range(rounds):
        chosen: tuple[dict[str, float], np.ndarray] | None = None
        for signal in objective.signals:
            for t in steps:
                trial = {s: (1.0 - t) * w + t * float(s == signal) for s, w in best.items()}
                users = objective.per_user(trial)
                significant = significant_gain(users - best_users, min_z)
                if significant and (chosen is None or users.mean() > chosen[1].mean()):
                    chosen = (trial, users)
        if chosen is None:
            break
        best, best_users = chosen
    return best, best_users


class _Pooled:
    """One objective over several cross-fitted folds: per-user values are concatenated."""

    def __init__(self, parts: Sequence[_Objective]) -> None:
        self.parts = list(parts)
        self.signals = self.parts[0].signals

    def per_user(self, weights: dict[str, float]) -> np.ndarray:
        return np.concatenate([part.per_user(weights) for part in self.parts])

    def __call__(self, weights: dict[str, float]) -> float:
        return float(self.per_user(weights).mean())


Fold = tuple[ScoringModel, EvaluationSet]
Weights = dict[str, dict[str, float]]
Samples = Sequence[tuple[ScoringModel, dict[str, EvaluationSet]]]
_Found = tuple[dict[str, float], float, dict[str, float], int]  # weights, value, singles, users


def _choose_fold_in(
    samples: Samples, candidates: Sequence[float], ties: np.ndarray
) -> float | None:
    """Fold-in λ with the best CF-only NDCG@10 on the cold tuning users, pooled over the folds."""
    cold = [(m, users[V.SEGMENT_COLD]) for m, users in samples if len(users[V.SEGMENT_COLD])]
    if not cold or not candidates:
        return None
    scored = []
    for reg in grid_bar(candidates, "hybrid fold-in grid"):
        values, count = 0.0, 0
        for model, users in cold:
            trial = with_fold_in_regularization(model, float(reg))

            def ranker(batch: EvaluationSet, segment: str, m: ScoringModel = trial) -> np.ndarray:
                return score_users(m, segment, batch.histories, {V.SIGNAL_CF: 1.0})

            n = len(users)
            values += mean_metric(ranker, users, V.SEGMENT_COLD, OBJECTIVE, ties) * n
            count += n
        scored.append((values / count, float(reg)))
    return max(scored, key=lambda pair: pair[0])[1]


def tune_hybrid(folds: Sequence[Fold], settings: HybridTuningSettings, seed: int) -> HybridTuning:
    """Per-segment weights + one normalisation (+ the fold-in λ) maximising validation NDCG@10.

    ``folds`` are (model fit without the fold's validation targets, validation set of the fold)
    pairs — see :mod:`recommender.training.crossfit`; per-user results are pooled over folds.
    """
    n_items = folds[0][1].n_items
    ties = tie_order(n_items, seed)
    per_fold = max(1, settings.tuning_users(n_items) // len(folds))
    samples = [
        (
            model,
            {
                seg: _sample(ev, seg, per_fold, seed + k, settings.cold_population)
                for seg in V.SEGMENTS
            },
        )
        for k, (model, ev) in enumerate(folds)
    ]
    own = folds[0][0].fold_in_regularization
    candidates = sorted({own, *settings.fold_in_regularization})
    fold_in = _choose_fold_in(samples, candidates, ties)
    fold_in = own if fold_in is None else fold_in
    samples = [(with_fold_in_regularization(m, fold_in), s) for m, s in samples]
    best: tuple[float, str, Weights, dict[str, dict[str, object]]] | None = None
    for method in settings.normalisations:
        weights: Weights = {}
        report: dict[str, dict[str, object]] = {}
        total = 0.0
        for segment in grid_bar(V.SEGMENTS, f"hybrid weights ({method})", unit="segment"):
            found = _search(samples, segment, method, ties, settings, 1.0)
            if found is None:
                continue
            w, value, singles, n_users = found
            weights[segment] = {s: round(x, 6) for s, x in w.items() if x > 1e-9}
            report[segment] = {"hybrid": value, "single": singles, "users": n_users}
            if segment != V.SEGMENT_UNKNOWN:  # unknown ignores the normalisation choice
                total += value * n_users
        log.info("hybrid tuning (%s): %s", method, {s: r["hybrid"] for s, r in report.items()})
        if best is None or total > best[0] + 1e-12:
            best = (total, method, weights, report)
    if best is None:  # no validation users at all: the documented defaults
        return HybridTuning(HybridConfig(), fold_in, {})
    _, chosen, weights, report = best
    decay = _tune_recency(samples, chosen, ties, settings, weights, report)
    for segment in report:
        report[segment]["fold_in_regularization"] = fold_in
        report[segment]["recency_decay"] = decay
    config = HybridConfig(weights=weights, normalisation=chosen, recency_decay=decay)
    return HybridTuning(config, fold_in, report)


def _tune_recency(
    samples: Samples,
    method: str,
    ties: np.ndarray,
    settings: HybridTuningSettings,
    weights: Weights,
    report: dict[str, dict[str, object]],
) -> float:
    """The recency decay (1 = none) for the tuned ``weights``; updates ``weights``/``report``.

    Cheap two-step search, so that the decay grid does not multiply the weight search: (1) score
    the weights tuned without decay under each candidate decay (one ranking per decay) and keep
    the best pooled NDCG@10 (1 wins ties); (2) when a decay < 1 wins, re-run the weight search at
    that decay and keep, per segment, whichever of the two weightings validates better. Only
    segments with histories of two or more items are affected.
    """
    segments = [s for s in report if _uses_recency(samples, s)]
    candidates = sorted({float(d) for d in settings.recency_decays} - {1.0}, reverse=True)
    if not segments or not candidates:
        return 1.0

    def pooled(segment: str, decay: float) -> _Pooled:
        signals = segment_signals(samples[0][0], segment)
        parts = [
            _Objective(model, users[segment], segment, signals, method, ties, decay)
            for model, users in samples
            if len(users[segment])
        ]
        return _Pooled(parts)

    users_of = {s: sum(len(users[s]) for _, users in samples) for s in segments}
    base = sum(cast(float, report[s]["hybrid"]) * users_of[s] for s in segments)
    chosen, chosen_total, fixed = 1.0, base, {}
    for decay in grid_bar(candidates, "hybrid recency grid", unit="decay"):
        values = {s: pooled(s, decay)(weights[s]) for s in segments}
        total = sum(values[s] * users_of[s] for s in segments)
        log.info("hybrid recency %.2f with the tuned weights: %s", decay, values)
        if total > chosen_total + 1e-12:
            chosen, chosen_total, fixed = decay, total, values
    if chosen == 1.0:
        return 1.0
    for segment in segments:
        report[segment]["hybrid"] = fixed[segment]
        found = _search(samples, segment, method, ties, settings, chosen)
        if found is not None and found[1] > fixed[segment] + 1e-12:
            w, value, singles, _ = found
            weights[segment] = {s: round(x, 6) for s, x in w.items() if x > 1e-9}
            report[segment].update(hybrid=value, single=singles)
    log.info("hybrid recency decay %.2f: %s", chosen, {s: report[s]["hybrid"] for s in segments})
    return chosen


def _uses_recency(samples: Samples, seg: str) -> bool:
    """Whether any sampled user of ``seg`` has two or more history items (else decay is moot)."""
    return seg != V.SEGMENT_UNKNOWN and any(
        len(h) > 1 for _, users in samples for h in users[seg].histories
    )


def _search(
    samples: Samples,
    segment: str,
    method: str,
    ties: np.ndarray,
    settings: HybridTuningSettings,
    recency_decay: float,
) -> _Found | None:
    """Coordinate ascent of one segment's weights pooled over the folds (None: no users)."""
    signals = segment_signals(samples[0][0], segment)
    parts = [
        _Objective(model, users[segment], segment, signals, method, ties, recency_decay)
        for model, users in samples
        if len(users[segment])
    ]
    if not parts:
        return None
    w, value, singles = _ascend(
        _Pooled(parts), settings.steps, settings.rounds, settings.min_z, settings.starts
    )
    return w, value, singles, sum(len(part.users) for part in parts)
