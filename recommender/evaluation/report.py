"""The evaluation report: JSON (with the protocol text) and a readable table.

Report layout::

    {"protocol": str, "stage": "test", "data_version", "embedding_version", "ks",
     "bootstrap_samples", "headline_protocol": "realistic" | "exact", "rebuild_period_days",
     "same_session_hours",
     "segments": {segment: {"users": int, "rows": {row: SUMMARY}}},        # the headline
     "exact_segments": {...same shape...},  # exact-time popularity, with a realistic headline
     ...extra}

    SUMMARY = {"users", "metrics": {"ndcg@10": {"mean", "low", "high"}, ...},
               "coverage": {"@10": x}, "diversity": {"@10": x},
               "vs_best_single": {"ndcg@10": {"row", "difference": {"mean", "low", "high"}}},
               "slices": {"same_session" | "later": SUMMARY without "slices"}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from recommender import vocabulary as V
from recommender.evaluation.protocol import (
    PROTOCOL_EXACT,
    PROTOCOL_REALISTIC,
    PROTOCOL_TEXT,
    SLICE_LATER,
    SLICE_SAME_SESSION,
)

EXACT_SEGMENTS = "exact_segments"
SLICE_NAMES = (SLICE_SAME_SESSION, SLICE_LATER)

ROW_ORDER = (
    V.ROW_RANDOM,
    V.ROW_POPULARITY,
    V.ROW_ITEM_KNN,
    V.ROW_CONTENT,
    V.MODEL_ALS,
    V.MODEL_BPR,
    V.MODEL_EASE,
    V.ROW_HYBRID,
)


def _segments(table: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    return {
        segment: {
            "users": max((int(r.get("users", 0)) for r in rows.values()), default=0),
            "rows": {name: dict(summary) for name, summary in rows.items()},
        }
        for segment, rows in table.items()
    }


def build_report(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    stage: str,
    data_version: str,
    embedding_version: str | None,
    ks: Sequence[int],
    bootstrap_samples: int,
    extra: Mapping[str, Any] | None = None,
    *,
    exact_table: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    rebuild_period_days: float | None = None,
    same_session_hours: float | None = None,
    live_popularity: bool | None = None,
    live_event_weight: float | None = None,
) -> dict[str, Any]:
    """Wrap ``{segment: {row: summary}}`` with the protocol and the versions it was measured on.

    With ``exact_table`` the headline ``table`` is the realistic protocol's (a service rebuilt
    every ``rebuild_period_days``; ``live_popularity``: fed by events, its popularity live with
    ``live_event_weight`` per positive since the rebuild; else popularity as of the rebuild) and
    the exact-time table is kept as ``exact_segments``; without it the headline is the
    exact-time table.
    """
    report: dict[str, Any] = {
        "protocol": PROTOCOL_TEXT,
        "stage": stage,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_version": data_version,
        "embedding_version": embedding_version,
        "ks": list(ks),
        "bootstrap_samples": bootstrap_samples,
        "headline_protocol": PROTOCOL_EXACT if exact_table is None else PROTOCOL_REALISTIC,
        "rebuild_period_days": None if exact_table is None else rebuild_period_days,
        "live_popularity": None if exact_table is None else live_popularity,
        "live_event_weight": None
        if exact_table is None or not live_popularity
        else live_event_weight,
        "same_session_hours": same_session_hours,
        "segments": _segments(table),
    }
    if exact_table is not None:
        report[EXACT_SEGMENTS] = _segments(exact_table)
    report.update(extra or {})
    return report


def _one_model(segments: Mapping[str, Any], model_type: str) -> dict[str, Any]:
    own = f"{V.ROW_HYBRID}:{model_type}"
    out: dict[str, Any] = {}
    for segment, body in segments.items():
        rows = {}
        for name, summary in body["rows"].items():
            if name == own:
                rows[V.ROW_HYBRID] = summary
            elif not name.startswith(f"{V.ROW_HYBRID}:"):
                rows[name] = summary
        out[segment] = {"users": body["users"], "rows": rows}
    return out


def model_report(report: Mapping[str, Any], model_type: str) -> dict[str, Any]:
    """The multi-model report seen from one model: its hybrid row becomes ``hybrid``."""
    out = dict(report)
    out["segments"] = _one_model(report["segments"], model_type)
    if EXACT_SEGMENTS in report:
        out[EXACT_SEGMENTS] = _one_model(report[EXACT_SEGMENTS], model_type)
    out["model_type"] = model_type
    if isinstance(report.get("hybrid"), Mapping) and model_type in report["hybrid"]:
        out["hybrid"] = report["hybrid"][model_type]
    return out


def _means(segments: Mapping[str, Any]) -> dict[str, Any]:
    """``{segment: {row: {metric: mean}}}`` plus ``slices`` and ``vs_best_single`` of each row."""
    out: dict[str, Any] = {}
    slices: dict[str, Any] = {}
    paired: dict[str, Any] = {}
    for segment, body in segments.items():
        out[segment] = {}
        for row, summary in body["rows"].items():
            out[segment][row] = {k: round(v["mean"], 6) for k, v in summary["metrics"].items()}
            if summary.get("slices"):
                slices.setdefault(segment, {})[row] = {
                    name: {
                        "users": part["users"],
                        **{k: round(v["mean"], 6) for k, v in part["metrics"].items()},
                    }
                    for name, part in summary["slices"].items()
                }
            if summary.get("vs_best_single"):
                paired.setdefault(segment, {})[row] = {
                    metric: {"row": d["row"], **_rounded(d["difference"])}
                    for metric, d in summary["vs_best_single"].items()
                }
    if slices:
        out["slices"] = slices
    if paired:
        out["vs_best_single"] = paired
    return out


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(x, 6) for k, x in values.items()}


def metrics_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Compact means for the registry: ``{segment: {row: {"ndcg@10": x}}}`` of the headline
    protocol (realistic when the report has both), its slices and paired differences, the
    exact-time means under ``exact``, and the gate value (the headline trainable hybrid)."""
    out: dict[str, Any] = {
        "stage": report.get("stage"),
        "protocol": report.get("headline_protocol", PROTOCOL_EXACT),
        "rebuild_period_days": report.get("rebuild_period_days"),
        "live_popularity": report.get("live_popularity"),
        "same_session_hours": report.get("same_session_hours"),
    }
    out.update(_means(report["segments"]))
    if EXACT_SEGMENTS in report:
        exact = _means(report[EXACT_SEGMENTS])
        # the exact-time gate value, to compare with models registered before the realistic one
        exact[V.GATE_METRIC] = _gate(exact)
        out[PROTOCOL_EXACT] = exact
    out[V.GATE_METRIC] = _gate(out)
    return out


def _gate(means: Mapping[str, Any]) -> float | None:
    value = means.get(V.SEGMENT_TRAINABLE, {}).get(V.ROW_HYBRID, {}).get("ndcg@10")
    return None if value is None else float(value)


def _row_sort_key(name: str) -> tuple[int, str]:
    base = name.split(":")[0]
    return (ROW_ORDER.index(base) if base in ROW_ORDER else len(ROW_ORDER), name)


def format_table(report: Mapping[str, Any], k: int = 10) -> str:
    """The headline table, then the exact-time one when the report has both (see
    :func:`format_segments`)."""
    headline = report.get("headline_protocol", PROTOCOL_EXACT)
    if headline == PROTOCOL_REALISTIC:
        period = report.get("rebuild_period_days")
        every = f"{'?' if period is None else f'{period:g}'} day(s)"
        if report.get("live_popularity"):
            weight = report.get("live_event_weight")
            title = (
                f"realistic protocol (headline): a service rebuilt every {every} and fed by "
                "events: popularity live (each positive since the rebuild counts "
                f"{'?' if weight is None else f'{weight:g}'}), the stale gate as served"
            )
        else:
            title = f"realistic protocol (headline): popularity as of the rebuild every {every}"
    else:
        title = "exact-time protocol: popularity as of each held-out interaction"
    lines = [
        f"stage={report.get('stage')} data_version={report.get('data_version')} K={k}",
        "",
        title,
        format_segments(report["segments"], k, report.get("same_session_hours")),
    ]
    if EXACT_SEGMENTS in report:
        lines += [
            "",
            "exact-time protocol: popularity as of each held-out interaction",
            format_segments(report[EXACT_SEGMENTS], k, report.get("same_session_hours")),
        ]
    return "\n".join(lines)


def format_segments(segments: Mapping[str, Any], k: int, hours: float | None = None) -> str:
    """A fixed-width table of HR/NDCG/MRR@k (95% intervals), coverage, diversity and NDCG@k of the
    same-session / later slices; then each hybrid row's paired difference with its best single
    signal (all users and each slice)."""
    key = f"ndcg@{k}"
    header = (
        f"{'segment':<10} {'row':<14} {'users':>6}  {'HR@' + str(k):<21} "
        f"{'NDCG@' + str(k):<21} {'MRR@' + str(k):<21} {'cov':>5} {'div':>5}  "
        f"{'same-session NDCG@' + str(k):<27} {'later NDCG@' + str(k):<27}"
    )
    lines = [header, "-" * len(header)]
    paired: list[str] = []
    for segment, body in segments.items():
        for row in sorted(body["rows"], key=_row_sort_key):
            s = body["rows"][row]
            cells = []
            for metric in ("hr", "ndcg", "mrr"):
                v = s["metrics"].get(f"{metric}@{k}")
                cells.append(_interval(v) if v else "n/a")
            cov = s.get("coverage", {}).get(f"@{k}")
            div = s.get("diversity", {}).get(f"@{k}")
            parts = s.get("slices") or {}
            slice_cells = [
                _slice_cell(parts.get(n), key) for n in (SLICE_SAME_SESSION, SLICE_LATER)
            ]
            lines.append(
                f"{segment:<10} {row:<14} {s['users']:>6}  {cells[0]:<21} {cells[1]:<21} "
                f"{cells[2]:<21} {_fmt(cov):>5} {_fmt(div):>5}  {slice_cells[0]:<27} "
                f"{slice_cells[1]:<27}"
            )
            if s.get("vs_best_single", {}).get(key):
                paired.append(_paired_line(segment, row, s, parts, key))
    if paired:
        lines += [
            "",
            f"hybrid - its best single signal, {key}, paired per user, 95% CI"
            + ("" if hours is None else f" (same-session: <= {hours:g} h after previous positive)"),
            f"{'segment':<10} {'row':<14} {'all':<36} {'same-session':<36} {'later':<36}",
            *paired,
        ]
    return "\n".join(lines)


def _interval(v: Mapping[str, float], signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(v['mean'])} [{fmt.format(v['low'])},{fmt.format(v['high'])}]"


def _slice_cell(part: Mapping[str, Any] | None, key: str) -> str:
    if not part or not part.get("users"):
        return "n/a"
    return f"{_interval(part['metrics'][key])} n={part['users']}"


def _paired_cell(summary: Mapping[str, Any] | None, key: str) -> str:
    d = (summary or {}).get("vs_best_single", {}).get(key)
    if not d:
        return "n/a"
    return f"{_interval(d['difference'], signed=True)} vs {d['row']}"


def _paired_line(
    segment: str, row: str, s: Mapping[str, Any], parts: Mapping[str, Any], key: str
) -> str:
    cells = [_paired_cell(s, key)] + [
        _paired_cell(parts.get(name), key) for name in (SLICE_SAME_SESSION, SLICE_LATER)
    ]
    return f"{segment:<10} {row:<14} {cells[0]:<36} {cells[1]:<36} {cells[2]:<36}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
