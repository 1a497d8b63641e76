"""The replay's numbers: NDCG@K / HR@K per segment and variant, 95% bootstrap intervals, and the
paired differences the targets are stated in (live vs frozen, live vs live popularity).

One observation is one predicted event (a user may contribute several), so the bootstrap
resamples events. The per-event values come from :mod:`recommender.evaluation.metrics` (one
relevant item per event: HR@K = Recall@K).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.evaluation.metrics import bootstrap_interval, hit_rate, ndcg
from recommender.replay.stream import FROZEN, LIVE, LIVE_POPULARITY, VARIANTS, Observation

WITH_HISTORY = "with_history"  # trainable + cold: the users the 1.3x target is about
ALL = "all"
REPORT_SEGMENTS = (*V.SEGMENTS, WITH_HISTORY, ALL)
PROTOCOL = (
    "Prequential replay: the model is built (prepare, embed, tune, train, register) on the "
    "interactions before the cut-off T (the (1 - fraction) quantile of their timestamps); the "
    "interactions from T on are streamed in time order as events through the service's event "
    "store and live state, with the live clock at each event's timestamp. Before each positive "
    "event on an item new to its user, each variant ranks the full catalogue for that user "
    "(top-K, seen items excluded, no MMR) and the event's item is the one relevant item. "
    "Segments are the user's state at that moment (trainable: a CF row in the model; cold: a "
    "positive in the model or earlier in the stream, no CF row; unknown: neither). Intervals "
    "are 95% percentile bootstraps over events."
)


def per_event(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """``{"ndcg@k", "hr@k"}`` per event from 0-based ranks (-1: not in the top K)."""
    hits = np.zeros((ranks.size, k), dtype=bool)
    found = (ranks >= 0) & (ranks < k)
    hits[np.flatnonzero(found), ranks[found]] = True
    targets = [np.array([0])] * ranks.size  # one relevant item per event
    return {f"ndcg@{k}": ndcg(hits, k, targets), f"hr@{k}": hit_rate(hits, k)}


def _interval(values: np.ndarray, samples: int, seed: int) -> dict[str, float]:
    low, high = bootstrap_interval(values, samples, seed)
    mean = float(values.mean()) if values.size else 0.0
    return {"mean": round(mean, 6), "low": round(low, 6), "high": round(high, 6)}


def segment_of(observation: Observation, segment: str) -> bool:
    """Whether ``observation`` belongs to report segment ``segment``."""
    if segment == ALL:
        return True
    if segment == WITH_HISTORY:
        return observation.segment in (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD)
    return observation.segment == segment


def summarise(
    observations: Sequence[Observation], k: int = 10, samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """``{segment: {"events", "users", "new_item_events", "rows": {variant: {metric:
    interval}}, "live_vs_frozen", "live_vs_popularity"}}`` over :data:`REPORT_SEGMENTS` (empty
    segments left out)."""
    out: dict[str, Any] = {}
    for segment in REPORT_SEGMENTS:
        chosen = [o for o in observations if segment_of(o, segment)]
        if not chosen:
            continue
        values = {
            variant: per_event(np.array([o.ranks[variant] for o in chosen], np.int64), k)
            for variant in VARIANTS
        }
        rows = {
            variant: {m: _interval(v, samples, seed) for m, v in metrics.items()}
            for variant, metrics in values.items()
        }
        out[segment] = {
            "events": len(chosen),
            "users": len({o.user_id for o in chosen}),
            "new_item_events": sum(o.new_item for o in chosen),
            "rows": rows,
            "live_vs_frozen": _paired(values[LIVE], values[FROZEN], samples, seed),
            "live_vs_popularity": _paired(values[LIVE], values[LIVE_POPULARITY], samples, seed),
        }
    return out


def _paired(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], samples: int, seed: int
) -> dict[str, Any]:
    """Per metric: the mean difference a - b with its interval, and the ratio of the means."""
    out: dict[str, Any] = {}
    for metric in a:
        base = float(b[metric].mean())
        out[metric] = {
            "difference": _interval(a[metric] - b[metric], samples, seed),
            "ratio": None if base == 0 else round(float(a[metric].mean()) / base, 4),
        }
    return out


def format_replay_table(segments: Mapping[str, Any], k: int = 10) -> str:
    """A fixed-width table: one line per segment x variant, then the paired differences."""
    ndcg_key, hr_key = f"ndcg@{k}", f"hr@{k}"
    header = (
        f"{'segment':<13} {'events':>7} {'users':>6}  {'variant':<16} "
        f"{'NDCG@' + str(k):<22} {'HR@' + str(k):<22}"
    )
    lines = [header, "-" * len(header)]
    for segment, body in segments.items():
        for variant in VARIANTS:
            row = body["rows"][variant]
            lines.append(
                f"{segment:<13} {body['events']:>7} {body['users']:>6}  {variant:<16} "
                f"{_cell(row[ndcg_key]):<22} {_cell(row[hr_key]):<22}"
            )
    lines.append("")
    lines.append(
        f"{'segment':<13} {'live/frozen NDCG':>17}  {'live - frozen':<22} "
        f"{'live - live_popularity':<22}"
    )
    for segment, body in segments.items():
        ratio = body["live_vs_frozen"][ndcg_key]["ratio"]
        lines.append(
            f"{segment:<13} {'n/a' if ratio is None else f'{ratio:.2f}x':>17}  "
            f"{_cell(body['live_vs_frozen'][ndcg_key]['difference'], signed=True):<22} "
            f"{_cell(body['live_vs_popularity'][ndcg_key]['difference'], signed=True):<22}"
        )
    return "\n".join(lines)


def _cell(value: Mapping[str, float], signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(value['mean'])} [{fmt.format(value['low'])},{fmt.format(value['high'])}]"
