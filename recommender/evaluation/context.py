"""Context-aware answers under the evaluation protocol: the previous item as ``context_items``.

The storefront sends what is in front of the shopper (the cart, the product on screen) as
``context_items``; the engine makes them the newest items of the user's history for every signal
and excludes them like seen items. This module measures that on the *same-session* slice of the
test stage (the held-out item came at most ``evaluation.same_session_hours`` after the user's
previous positive), passing the previous positive as the context:

- ``known``: every same-session user with a CF row. ``hybrid`` is the full-history hybrid the
  evaluation table reports (their CF row); ``hybrid + context`` is what the engine serves with
  the previous item as context: the history with that item newest and, when the model folds a
  trainable user's CF vector in from live evidence (``live_fold_in``, as for live events), the CF
  vector folded in from that history instead of the stored row.
- ``anonymous``: the same users as visitors without any history. ``popularity`` is what such a
  visitor gets today; ``context`` is the cold hybrid of the previous item alone (what the engine
  serves an unknown user with that context), the item itself excluded.

Every row is scored with :func:`~recommender.scoring.score_users` (the engine's function) under
both protocols (realistic: popularity as of the rebuild period's start; exact), with 95%
percentile bootstrap intervals over users and paired differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import EvaluationSettings
from recommender.evaluation import metrics as M
from recommender.evaluation.evaluator import paired_difference, tie_order
from recommender.evaluation.protocol import (
    PROTOCOL_EXACT,
    PROTOCOL_REALISTIC,
    SLICE_SAME_SESSION,
    EvaluationSet,
    realistic_view,
    top_k_items,
)
from recommender.evaluation.rankers import as_served
from recommender.scoring import HybridConfig, ScoringModel, score_users

METRIC = "ndcg@10"
ANONYMOUS_TARGET = 1.5  # context for a visitor without history: >= 1.5x popularity (issue 13)
_EMPTY = np.zeros(0, dtype=np.int64)
ROW_FULL = "hybrid (full history)"
ROW_CONTEXT = "hybrid + previous item as context"
ROW_NEW_WITHOUT = "previous item not in the model, no context"
ROW_NEW_CONTEXT = "previous item not in the model, sent as context"
ROW_POPULARITY = "popularity (no history)"
ROW_ANONYMOUS_CONTEXT = "previous item as context"
# informational: the CF signal alone, the stored row against the refold the engine serves a
# trainable user whose context item is new to the model (always refolded, whatever live_fold_in)
ROW_CF_FULL = "CF only, stored row (full history)"
ROW_CF_REFOLD = "CF only, previous item not in the model, refolded with it"


def with_context(
    histories: Sequence[np.ndarray], context: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Each history with its context items moved to (or appended at) the end, the newest
    position: the merge the engine applies to ``context_items``."""
    out = []
    for history, items in zip(histories, context, strict=True):
        history = np.asarray(history, dtype=np.int64)
        out.append(np.concatenate([history[~np.isin(history, items)], items]))
    return out


def previous_items(eval_set: EvaluationSet) -> list[np.ndarray]:
    """Each user's newest prior positive (histories are in time order), as a 1-item context."""
    return [np.asarray(h[-1:], dtype=np.int64) for h in eval_set.histories]


@dataclass(frozen=True)
class ContextRows:
    """Per-user NDCG@10 / HR@10 of every row of one protocol (same users in every row)."""

    known: dict[str, dict[str, np.ndarray]]
    anonymous: dict[str, dict[str, np.ndarray]]


def _per_user(
    scores: np.ndarray, eval_set: EvaluationSet, exclude: list[np.ndarray] | None, ties: np.ndarray
) -> dict[str, np.ndarray]:
    top = top_k_items(scores, 10, exclude, ties)
    hits = M.hits_matrix(top, eval_set.targets)
    return {"ndcg@10": M.ndcg(hits, 10, eval_set.targets), "hr@10": M.hit_rate(hits, 10)}


def served_with_context(
    model: ScoringModel,
    hybrid: HybridConfig,
    users: EvaluationSet,
    stored: Sequence[np.ndarray],
    context: Sequence[np.ndarray],
    fold_trainable: bool,
) -> np.ndarray:
    """``(b, n)`` scores the engine serves known users whose model history is ``stored`` when
    ``context`` is sent: the history with the context newest; the stored CF row unless the
    context holds an item beyond ``stored`` and the model folds live evidence in
    (``fold_trainable``), then the CF vector folded in from that history
    (:attr:`~recommender.scoring.ScoringModel.refold_model`: an ALS model's own user step)."""
    norm, decay, times = hybrid.normalisation, hybrid.recency_decay, users.request_times
    weights = hybrid.for_segment(V.SEGMENT_TRAINABLE)
    merged = with_context(stored, context)
    fresh = np.array(
        [fold_trainable and not np.isin(c, s).all() for s, c in zip(stored, context, strict=True)],
        dtype=bool,
    )
    out = np.empty((len(users), model.n_items), dtype=np.float32)
    for refold, segment in ((False, V.SEGMENT_TRAINABLE), (True, V.SEGMENT_COLD)):
        where = np.flatnonzero(fresh == refold)
        if where.size:
            rows = None if refold else users.cf_rows[where]
            out[where] = score_users(
                model.refold_model if refold else model,
                segment,
                [merged[i] for i in where],
                weights,
                norm,
                rows,
                decay,
                times[where],
            )
    return out


def _score_rows(
    model: ScoringModel,
    hybrid: HybridConfig,
    users: EvaluationSet,
    fold_trainable: bool,
    ties: np.ndarray,
) -> ContextRows:
    model = as_served(model, users)  # popularity as the protocol of ``users`` serves it
    norm, decay, times = hybrid.normalisation, hybrid.recency_decay, users.request_times
    context = previous_items(users)
    trainable = hybrid.for_segment(V.SEGMENT_TRAINABLE)
    full = score_users(
        model, V.SEGMENT_TRAINABLE, users.histories, trainable, norm, users.cf_rows, decay, times
    )
    seen = [np.union1d(s, c) for s, c in zip(users.seen, context, strict=True)]
    known_context = served_with_context(
        model, hybrid, users, users.histories, context, fold_trainable
    )
    # the previous item after the build: the model's history lacks it (its CF row cannot be
    # used, it was fit with it: the vector is folded in from the history without it)
    before = [h[:-1] for h in users.histories]
    without = score_users(model, V.SEGMENT_COLD, before, trainable, norm, None, decay, times)
    new_context = served_with_context(model, hybrid, users, before, context, fold_trainable)
    cf_only = HybridConfig(
        weights={V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 1.0}},
        normalisation=norm,
        recency_decay=decay,
    )
    cf_full = score_users(
        model, V.SEGMENT_TRAINABLE, users.histories, {V.SIGNAL_CF: 1.0}, norm, users.cf_rows
    )
    cf_refold = served_with_context(model, cf_only, users, before, context, True)
    known = {
        ROW_FULL: _per_user(full, users, users.seen, ties),
        ROW_CONTEXT: _per_user(known_context, users, seen, ties),
        ROW_NEW_WITHOUT: _per_user(
            without,
            users,
            [s[~np.isin(s, c)] for s, c in zip(users.seen, context, strict=True)],
            ties,
        ),
        ROW_NEW_CONTEXT: _per_user(new_context, users, seen, ties),
        ROW_CF_FULL: _per_user(cf_full, users, users.seen, ties),
        ROW_CF_REFOLD: _per_user(cf_refold, users, seen, ties),
    }
    empty = [_EMPTY] * len(users)
    popularity = score_users(
        model, V.SEGMENT_UNKNOWN, empty, {V.SIGNAL_POPULARITY: 1.0}, norm, request_times=times
    )
    cold = hybrid.for_segment(V.SEGMENT_COLD)
    visitor = score_users(model, V.SEGMENT_COLD, context, cold, norm, None, decay, times)
    anonymous = {
        ROW_POPULARITY: _per_user(popularity, users, None, ties),
        ROW_ANONYMOUS_CONTEXT: _per_user(visitor, users, context, ties),
    }
    return ContextRows(known=known, anonymous=anonymous)


def _summary(values: np.ndarray, samples: int, seed: int) -> dict[str, float]:
    low, high = M.bootstrap_interval(values, samples, seed)
    return {"mean": float(values.mean()) if values.size else 0.0, "low": low, "high": high}


def _ratio(a: np.ndarray, b: np.ndarray, samples: int, seed: int) -> dict[str, float]:
    """mean(a) / mean(b) with a paired percentile bootstrap interval (users resampled)."""
    rng = np.random.default_rng(seed)
    n = a.size
    mean_b = float(b.mean()) if n else 0.0
    point = float(a.mean()) / mean_b if mean_b > 0 else float("inf")
    if not n or samples <= 0:
        return {"mean": point, "low": point, "high": point}
    draws = rng.integers(0, n, size=(samples, n))
    den = b[draws].mean(axis=1)
    ratios = np.divide(a[draws].mean(axis=1), den, out=np.full(samples, np.inf), where=den > 0)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"mean": point, "low": float(low), "high": float(high)}


def evaluate_context(
    model: ScoringModel,
    hybrid: HybridConfig,
    test: EvaluationSet,
    settings: EvaluationSettings,
    fold_trainable: bool,
) -> dict[str, Any]:
    """The context report of both protocols: per row the users and NDCG@10 / HR@10 with 95%
    intervals, the paired differences and the two checks (``passed`` per protocol)."""
    samples, seed = settings.bootstrap_samples, settings.seed
    ties = tie_order(test.n_items, seed)
    same = test.slice_indices(SLICE_SAME_SESSION, settings.same_session_hours)
    same = same[(test.cf_rows[same] >= 0)]
    users = test.subset(same)
    report: dict[str, Any] = {
        "slice": SLICE_SAME_SESSION,
        "same_session_hours": settings.same_session_hours,
        "rebuild_period_days": settings.rebuild_period_days,
        "users": len(users),
        "fold_trainable": fold_trainable,
        "protocols": {},
    }
    protocols = {
        PROTOCOL_REALISTIC: realistic_view(
            users,
            settings.rebuild_period_days,
            settings.live_popularity,
            settings.live_event_weight,
        ),
        PROTOCOL_EXACT: users,
    }
    for name, frame in protocols.items():
        rows = _score_rows(model, hybrid, frame, fold_trainable, ties)
        out: dict[str, Any] = {}
        for group, group_rows in (("known", rows.known), ("anonymous", rows.anonymous)):
            out[group] = {
                row: {metric: _summary(values, samples, seed) for metric, values in per.items()}
                for row, per in group_rows.items()
            }
        base, served = rows.known[ROW_FULL][METRIC], rows.known[ROW_CONTEXT][METRIC]
        pop = rows.anonymous[ROW_POPULARITY][METRIC]
        ctx = rows.anonymous[ROW_ANONYMOUS_CONTEXT][METRIC]
        known_diff = paired_difference(served, base, samples, seed)
        out["cf_refold_vs_stored_row"] = paired_difference(
            rows.known[ROW_CF_REFOLD][METRIC], rows.known[ROW_CF_FULL][METRIC], samples, seed
        )
        out["context_gain_for_a_new_item"] = paired_difference(
            rows.known[ROW_NEW_CONTEXT][METRIC], rows.known[ROW_NEW_WITHOUT][METRIC], samples, seed
        )
        ratio = _ratio(ctx, pop, samples, seed)
        new_diff = paired_difference(rows.known[ROW_NEW_CONTEXT][METRIC], base, samples, seed)
        out["checks"] = {
            "known": {
                "target": "hybrid + previous item as context >= full-history hybrid (NDCG@10)",
                "difference": known_diff,
                "passed": known_diff["mean"] >= 0.0,
            },
            "known_new_item": {
                "target": "previous item not in the model, sent as context >= full-history "
                "hybrid (NDCG@10)",
                "difference": new_diff,
                "passed": new_diff["mean"] >= 0.0,
            },
            "anonymous": {
                "target": f"context >= {ANONYMOUS_TARGET}x popularity (NDCG@10)",
                "difference": paired_difference(ctx, pop, samples, seed),
                "ratio": ratio,
                "passed": ratio["mean"] >= ANONYMOUS_TARGET,
            },
        }
        report["protocols"][name] = out
    return report


def format_context_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables plus one PASS/MISS line per check and protocol."""

    def interval(value: dict[str, float], signed: bool = False) -> str:
        fmt = "{:+.3f}" if signed else "{:.3f}"
        low, high = fmt.format(value["low"]), fmt.format(value["high"])
        return f"{fmt.format(value['mean'])} [{low}, {high}]"

    lines = [
        f"same-session slice (<= {report['same_session_hours']:g} h after the previous positive), "
        f"{report['users']} test users; context = the previous positive",
        "",
        "| protocol | visitor | row | NDCG@10 | HR@10 |",
        "|---|---|---|---|---|",
    ]
    for protocol, out in report["protocols"].items():
        for group in ("known", "anonymous"):
            for row, metrics in out[group].items():
                lines.append(
                    f"| {protocol} | {group} | {row} | {interval(metrics['ndcg@10'])} | "
                    f"{interval(metrics['hr@10'])} |"
                )
    lines.append("")
    for protocol, out in report["protocols"].items():
        gain = out["context_gain_for_a_new_item"]
        lines.append(
            f"{protocol}: previous item not in the model, context − no context "
            f"{interval(gain, signed=True)} (informational)"
        )
        lines.append(
            f"{protocol}: CF only, refolded with the new item − stored row "
            f"{interval(out['cf_refold_vs_stored_row'], signed=True)} (informational)"
        )
    for protocol, out in report["protocols"].items():
        checks = out["checks"]
        known, anonymous = checks["known"], checks["anonymous"]
        lines.append(
            f"{'PASS' if known['passed'] else 'MISS'} {protocol} known: context − full history "
            f"{interval(known['difference'], signed=True)} (target >= 0)"
        )
        new = checks["known_new_item"]
        lines.append(
            f"{'PASS' if new['passed'] else 'MISS'} {protocol} known, previous item not in the "
            f"model: context − full history {interval(new['difference'], signed=True)} "
            "(target >= 0)"
        )
        lines.append(
            f"{'PASS' if anonymous['passed'] else 'MISS'} {protocol} anonymous: context / "
            f"popularity {anonymous['ratio']['mean']:.2f}x [{anonymous['ratio']['low']:.2f}, "
            f"{anonymous['ratio']['high']:.2f}] (target >= {ANONYMOUS_TARGET:g}x), difference "
            f"{interval(anonymous['difference'], signed=True)}"
        )
    return "\n".join(lines)
