"""The evaluation report: JSON (with the protocol text) and a readable table.

Report layout::

    {"protocol": str, "stage": "test", "data_version", "embedding_version", "ks",
     "bootstrap_samples", "segments": {segment: {"users": int, "rows": {row: {"users",
        "metrics": {"ndcg@10": {"mean", "low", "high"}, ...},
        "coverage": {"@10": x}, "diversity": {"@10": x}}}}},
     ...extra}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from recommender import vocabulary as V
from recommender.evaluation.protocol import PROTOCOL_TEXT

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


def build_report(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    stage: str,
    data_version: str,
    embedding_version: str | None,
    ks: Sequence[int],
    bootstrap_samples: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap ``{segment: {row: summary}}`` with the protocol and the versions it was measured on."""
    segments = {
        segment: {
            "users": max((int(r.get("users", 0)) for r in rows.values()), default=0),
            "rows": {name: dict(summary) for name, summary in rows.items()},
        }
        for segment, rows in table.items()
    }
    return {
        "protocol": PROTOCOL_TEXT,
        "stage": stage,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_version": data_version,
        "embedding_version": embedding_version,
        "ks": list(ks),
        "bootstrap_samples": bootstrap_samples,
        "segments": segments,
        **dict(extra or {}),
    }


def model_report(report: Mapping[str, Any], model_type: str) -> dict[str, Any]:
    """The multi-model report seen from one model: its hybrid row becomes ``hybrid``."""
    own = f"{V.ROW_HYBRID}:{model_type}"
    out = dict(report)
    segments: dict[str, Any] = {}
    for segment, body in report["segments"].items():
        rows = {}
        for name, summary in body["rows"].items():
            if name == own:
                rows[V.ROW_HYBRID] = summary
            elif not name.startswith(f"{V.ROW_HYBRID}:"):
                rows[name] = summary
        segments[segment] = {"users": body["users"], "rows": rows}
    out["segments"] = segments
    out["model_type"] = model_type
    if isinstance(report.get("hybrid"), Mapping) and model_type in report["hybrid"]:
        out["hybrid"] = report["hybrid"][model_type]
    return out


def metrics_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Compact means for the registry: ``{segment: {row: {"ndcg@10": x}}}`` + the gate value."""
    out: dict[str, Any] = {"stage": report.get("stage")}
    for segment, body in report["segments"].items():
        out[segment] = {
            row: {name: round(v["mean"], 6) for name, v in summary["metrics"].items()}
            for row, summary in body["rows"].items()
        }
    hybrid = out.get(V.SEGMENT_TRAINABLE, {}).get(V.ROW_HYBRID, {})
    out[V.GATE_METRIC] = hybrid.get("ndcg@10")
    return out


def _row_sort_key(name: str) -> tuple[int, str]:
    base = name.split(":")[0]
    return (ROW_ORDER.index(base) if base in ROW_ORDER else len(ROW_ORDER), name)


def format_table(report: Mapping[str, Any], k: int = 10) -> str:
    """A fixed-width table of HR/NDCG/MRR@k (with 95% intervals), coverage and diversity."""
    lines = [f"stage={report.get('stage')} data_version={report.get('data_version')} K={k}"]
    header = (
        f"{'segment':<10} {'row':<14} {'users':>6}  {'HR@' + str(k):<21} "
        f"{'NDCG@' + str(k):<21} {'MRR@' + str(k):<21} {'cov':>5} {'div':>5}"
    )
    lines += [header, "-" * len(header)]
    for segment, body in report["segments"].items():
        for row in sorted(body["rows"], key=_row_sort_key):
            s = body["rows"][row]
            cells = []
            for metric in ("hr", "ndcg", "mrr"):
                v = s["metrics"].get(f"{metric}@{k}")
                cells.append(
                    f"{v['mean']:.3f} [{v['low']:.3f},{v['high']:.3f}]" if v else "n/a".ljust(21)
                )
            cov = s.get("coverage", {}).get(f"@{k}")
            div = s.get("diversity", {}).get(f"@{k}")
            lines.append(
                f"{segment:<10} {row:<14} {s['users']:>6}  {cells[0]:<21} {cells[1]:<21} "
                f"{cells[2]:<21} {_fmt(cov):>5} {_fmt(div):>5}"
            )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
