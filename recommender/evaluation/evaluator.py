"""Rank, score and summarise: one table row per (segment, ranker).

A *ranker* is any callable ``(EvaluationSet, segment) -> (b, n) scores`` (or ``None`` when it does
not apply to the segment, e.g. CF for users with no history). Users are processed in batches so
that 50K users × 2K items never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender import vocabulary as V
from recommender.evaluation import metrics as M
from recommender.evaluation.protocol import EvaluationSet, top_k_items

Ranker = Callable[[EvaluationSet, str], "np.ndarray | None"]
METRICS = ("hr", "ndcg", "mrr")
BATCH_USERS = 1024


@dataclass(frozen=True)
class RankingResult:
    """Per-user metric values and the top-K lists of one ranker on one segment."""

    per_user: dict[str, np.ndarray]  # "ndcg@10" -> (b,)
    top_k: np.ndarray  # (b, max K)


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
    values: dict[str, dict[str, float]] = {}
    for name, per_user in result.per_user.items():
        low, high = M.bootstrap_interval(per_user, bootstrap_samples, seed)
        values[name] = {
            "mean": float(per_user.mean()) if per_user.size else 0.0,
            "low": low,
            "high": high,
        }
    summary["metrics"] = values
    summary["coverage"] = {
        f"@{k}": M.coverage(result.top_k[:, :k], n_items) if result.top_k.size else 0.0 for k in ks
    }
    if embeddings is not None and result.top_k.size:
        summary["diversity"] = {
            f"@{k}": float(M.intra_list_diversity(result.top_k[:, :k], embeddings).mean())
            for k in ks
        }
    else:
        summary["diversity"] = {f"@{k}": None for k in ks}
    return summary


def evaluate_rankers(
    rankers: Mapping[str, Ranker],
    eval_set: EvaluationSet,
    segments: Sequence[str],
    ks: Sequence[int],
    embeddings: np.ndarray | None,
    bootstrap_samples: int,
    seed: int,
) -> dict[str, dict[str, dict[str, object]]]:
    """``{segment: {row: summary}}`` for every ranker that applies to the segment."""
    ties = tie_order(eval_set.n_items, seed)
    table: dict[str, dict[str, dict[str, object]]] = {}
    for segment in segments:
        users = eval_set.subset(eval_set.segment_indices(segment))
        table[segment] = {}
        if len(users) == 0:
            continue
        for name, ranker in rankers.items():
            result = rank_segment(ranker, users, segment, ks, ties)
            if result is not None:
                table[segment][name] = summarise(
                    result, ks, eval_set.n_items, embeddings, bootstrap_samples, seed
                )
    return table


def mean_metric(
    ranker: Ranker, eval_set: EvaluationSet, segment: str, metric: str, ties: np.ndarray
) -> float:
    """Mean of one metric (e.g. ``"ndcg@10"``) for ``ranker`` on ``segment``; tuning's objective."""
    users = eval_set.subset(eval_set.segment_indices(segment))
    if len(users) == 0:
        return 0.0
    k = int(metric.split("@")[1])
    result = rank_segment(ranker, users, segment, [k], ties)
    return float(result.per_user[metric].mean()) if result is not None else 0.0
