"""Rank, score and summarise: one table row per (segment, ranker).

A *ranker* is any callable ``(EvaluationSet, segment) -> (b, n) scores`` (or ``None`` when it does
not apply to the segment, e.g. CF for users with no history). Users are processed in batches so
that 50K users × 2K items never sit in memory at once. Each row is ranked once per segment; its
slices (same-session / later) and the hybrid's paired difference with its best single signal
are cut from the same per-user values, so they cost no extra ranking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import EvaluationSettings
from recommender.evaluation import metrics as M
from recommender.evaluation.protocol import (
    PROTOCOL_EXACT,
    PROTOCOL_REALISTIC,
    SLICES,
    EvaluationSet,
    realistic_view,
    top_k_items,
)

Ranker = Callable[[EvaluationSet, str], "np.ndarray | None"]
PROTOCOLS = (PROTOCOL_REALISTIC, PROTOCOL_EXACT)
METRICS = ("hr", "ndcg", "mrr")
BATCH_USERS = 1024


@dataclass(frozen=True)
class RankingResult:
    """Per-user metric values and the top-K lists of one ranker on one segment."""

    per_user: dict[str, np.ndarray]  # "ndcg@10" -> (b,)
    top_k: np.ndarray  # (b, max K)
    diversity: dict[int, np.ndarray] | None = None  # K -> (b,) intra-list diversity, when known

    def take(self, positions: np.ndarray) -> RankingResult:
        """The users at ``positions`` only (a slice of the segment)."""
        return RankingResult(
            per_user={name: values[positions] for name, values in self.per_user.items()},
            top_k=self.top_k[positions],
            diversity=None
            if self.diversity is None
            else {k: values[positions] for k, values in self.diversity.items()},
        )


def tie_order(n_items: int, seed: int) -> np.ndarray:
    """The fixed random item permutation used to break score ties (same for every ranker)."""
    return np.random.default_rng(seed).permutation(n_items)


def rank_segment(
    ranker: Ranker,
    eval_set: EvaluationSet,
    segment: str,
    ks: Sequence[int],
    ties: np.ndarray,
) -> RankingResult | None:
    """Rank ``eval_set`` (already restricted to ``segment``'s users); per-user metrics."""
    k_max = max(ks)
    lists: list[np.ndarray] = []
    for begin in range(0, len(eval_set), BATCH_USERS):
        batch = eval_set.subset(np.arange(begin, min(begin + BATCH_USERS, len(eval_set))))
        scores = ranker(batch, segment)
        if scores is None:
            return None
        exclude = None if segment == V.SEGMENT_UNKNOWN else batch.seen
        lists.append(top_k_items(scores, k_max, exclude, ties))
    top_k = np.vstack(lists) if lists else np.zeros((0, k_max), dtype=np.int64)
    hits = M.hits_matrix(top_k, eval_set.targets)
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        per_user[f"hr@{k}"] = M.hit_rate(hits, k)
        per_user[f"ndcg@{k}"] = M.ndcg(hits, k, eval_set.targets)
        per_user[f"mrr@{k}"] = M.mrr(hits, k)
    return RankingResult(per_user=per_user, top_k=top_k)


def _intervals(
    per_user: Mapping[str, np.ndarray], bootstrap_samples: int, seed: int
) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "low", "high"}}``: one bootstrap draw of users shared by the metrics."""
    names = list(per_user)
    if not names:
        return {}
    matrix = np.vstack([np.asarray(per_user[name], dtype=np.float64) for name in names])
    bounds = M.bootstrap_intervals(matrix, bootstrap_samples, seed)
    return {
        name: {
            "mean": float(matrix[k].mean()) if matrix.shape[1] else 0.0,
            "low": bounds[k][0],
            "high": bounds[k][1],
        }
        for k, name in enumerate(names)
    }


def summarise(
    result: RankingResult,
    ks: Sequence[int],
    n_items: int,
    embeddings: np.ndarray | None,
    bootstrap_samples: int,
    seed: int,
) -> dict[str, object]:
    """Means with 95% bootstrap intervals, coverage@K and intra-list diversity@K."""
    summary: dict[str, object] = {"users": int(result.top_k.shape[0])}
    values = _intervals(result.per_user, bootstrap_samples, seed)
    summary["metrics"] = values
    summary["coverage"] = {
        f"@{k}": M.coverage(result.top_k[:, :k], n_items) if result.top_k.size else 0.0 for k in ks
    }
    per_user = result.diversity
    if per_user is None and embeddings is not None and result.top_k.size:
        per_user = per_user_diversity(result.top_k, ks, embeddings)
    if per_user is not None and result.top_k.size:
        summary["diversity"] = {f"@{k}": float(per_user[k].mean()) for k in ks}
    else:
        summary["diversity"] = {f"@{k}": None for k in ks}
    return summary


def per_user_diversity(
    top_k: np.ndarray, ks: Sequence[int], embeddings: np.ndarray
) -> dict[int, np.ndarray]:
    """``{k: (b,) intra-list diversity@k}``: computed once per row, then cut for each slice."""
    return {k: M.intra_list_diversity(top_k[:, :k], embeddings) for k in ks}


def paired_difference(
    a: np.ndarray, b: np.ndarray, bootstrap_samples: int, seed: int
) -> dict[str, float]:
    """Mean of the per-user differences ``a - b`` with its 95% percentile bootstrap interval
    (users resampled, so the two rows stay paired)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    low, high = M.bootstrap_interval(diff, bootstrap_samples, seed)
    return {"mean": float(diff.mean()) if diff.size else 0.0, "low": low, "high": high}


def vs_best_single(
    hybrid: RankingResult,
    singles: Mapping[str, RankingResult],
    bootstrap_samples: int,
    seed: int,
) -> dict[str, dict[str, object]]:
    """Per metric: the single-signal row with the best mean (first in ``singles`` order on a
    tie) and the paired difference ``hybrid - best``; empty without singles or users."""
    if not singles or hybrid.top_k.shape[0] == 0:
        return {}
    best: dict[str, str] = {}
    differences: dict[str, np.ndarray] = {}
    for metric, values in hybrid.per_user.items():
        means = {name: float(r.per_user[metric].mean()) for name, r in singles.items()}
        best[metric] = max(means, key=lambda name: means[name])  # the first of equal means
        differences[metric] = values - singles[best[metric]].per_user[metric]
    intervals = _intervals(differences, bootstrap_samples, seed)
    return {
        metric: {"row": best[metric], "difference": intervals[metric]} for metric in differences
    }


def evaluate_rankers(
    rankers: Mapping[str, Ranker],
    eval_set: EvaluationSet,
    segments: Sequence[str],
    ks: Sequence[int],
    embeddings: np.ndarray | None,
    bootstrap_samples: int,
    seed: int,
    same_session_hours: float | None = None,
    best_single_of: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, dict[str, object]]]:
    """``{segment: {row: summary}}`` for every ranker that applies to the segment.

    With ``same_session_hours`` each summary also has ``"slices": {slice: summary}`` (see
    :meth:`EvaluationSet.slice_indices`). ``best_single_of`` maps a hybrid row to the
    single-signal rows it is compared with: its summary (and each slice's) gains
    ``"vs_best_single": {metric: {"row", "difference": {"mean", "low", "high"}}}``.
    """
    ties = tie_order(eval_set.n_items, seed)
    table: dict[str, dict[str, dict[str, object]]] = {}
    for segment in segments:
        users = eval_set.subset(eval_set.segment_indices(segment))
        table[segment] = {}
        if len(users) == 0:
            continue
        results: dict[str, RankingResult] = {}
        for name, ranker in rankers.items():
            result = rank_segment(ranker, users, segment, ks, ties)
            if result is not None:
                if embeddings is not None and result.top_k.size:
                    diversity = per_user_diversity(result.top_k, ks, embeddings)
                    result = dataclasses.replace(result, diversity=diversity)
                results[name] = result
        parts: dict[str, np.ndarray | None] = {"": None}
        if same_session_hours is not None:
            parts.update({s: users.slice_indices(s, same_session_hours) for s in SLICES})
        for name, result in results.items():
            singles = [c for c in (best_single_of or {}).get(name, ()) if c in results]
            summaries: dict[str, dict[str, object]] = {}
            for part, positions in parts.items():
                cut = result if positions is None else result.take(positions)
                summary = summarise(cut, ks, eval_set.n_items, embeddings, bootstrap_samples, seed)
                if singles:
                    summary["vs_best_single"] = vs_best_single(
                        cut,
                        {
                            c: results[c] if positions is None else results[c].take(positions)
                            for c in singles
                        },
                        bootstrap_samples,
                        seed,
                    )
                summaries[part] = summary
            row = summaries.pop("")
            if summaries:
                row["slices"] = summaries
            table[segment][name] = row
    return table


def evaluate_protocols(
    rankers: Mapping[str, Ranker],
    eval_set: EvaluationSet,
    segments: Sequence[str],
    settings: EvaluationSettings,
    embeddings: np.ndarray | None,
    best_single_of: Mapping[str, Sequence[str]] | None = None,
    protocols: Sequence[str] = PROTOCOLS,
) -> dict[str, dict[str, dict[str, dict[str, object]]]]:
    """``{"realistic": table, "exact": table}``: :func:`evaluate_rankers` with popularity as of the
    rebuild period's start (``settings.rebuild_period_days``) and as of each exact request time,
    both with the same-session / later slices and the hybrids' paired differences; ``protocols``
    picks some of them (a build scores each in its own process)."""

    def run(users: EvaluationSet) -> dict[str, dict[str, dict[str, object]]]:
        return evaluate_rankers(
            rankers,
            users,
            segments,
            settings.ks,
            embeddings,
            settings.bootstrap_samples,
            settings.seed,
            settings.same_session_hours,
            best_single_of,
        )

    views = {
        PROTOCOL_REALISTIC: lambda: realistic_view(
            eval_set,
            settings.rebuild_period_days,
            settings.live_popularity,
            settings.live_event_weight,
        ),
        PROTOCOL_EXACT: lambda: eval_set,
    }
    return {protocol: run(views[protocol]()) for protocol in protocols}


def mean_metric(
    ranker: Ranker, eval_set: EvaluationSet, segment: str, metric: str, ties: np.ndarray
) -> float:
    """Mean of one metric (e.g. ``"ndcg@10"``) for ``ranker`` on ``segment``; tuning's objective."""
    values = per_user_metric(ranker, eval_set, segment, metric, ties)
    return float(values.mean()) if len(values) else 0.0


def per_user_metric(
    ranker: Ranker, eval_set: EvaluationSet, segment: str, metric: str, ties: np.ndarray
) -> np.ndarray:
    """One metric per user of ``segment`` (in ``eval_set``'s order; empty when the segment is, or
    the ranker has nothing for it): what a paired comparison of two tuning points needs."""
    users = eval_set.subset(eval_set.segment_indices(segment))
    if len(users) == 0:
        return np.zeros(0)
    k = int(metric.split("@")[1])
    result = rank_segment(ranker, users, segment, [k], ties)
    return result.per_user[metric] if result is not None else np.zeros(0)
