"""Evaluation: one protocol (temporal leave-last-positive-out, full catalogue ranking, history
excluded), metrics with bootstrap intervals, segment × row tables and the JSON/text report.

Offers :func:`build_evaluation_set` / :class:`EvaluationSet`, :data:`PROTOCOL_TEXT`, the metric
functions in :mod:`recommender.evaluation.metrics`, :func:`evaluate_rankers`, the row rankers
(:func:`baseline_rankers`, :func:`signal_ranker`, :func:`hybrid_ranker`), :func:`stage_signals`,
:func:`evaluate_registered`, :func:`build_report`, :func:`format_table` and
:func:`metrics_summary`. Imported lazily (see :mod:`recommender.training`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluationSet": "protocol",
    "build_evaluation_set": "protocol",
    "PROTOCOL_TEXT": "protocol",
    "top_k_items": "protocol",
    "evaluate_rankers": "evaluator",
    "baseline_rankers": "rankers",
    "signal_ranker": "rankers",
    "hybrid_ranker": "rankers",
    "stage_signals": "context",
    "load_aligned_embeddings": "context",
    "evaluate_registered": "registered",
    "build_report": "report",
    "format_table": "report",
    "metrics_summary": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
