"""Evaluation: one protocol (temporal leave-last-positive-out, full catalogue ranking, history
excluded), metrics with bootstrap intervals, segment × row tables and the JSON/text report.

Every table is reported under two protocols (realistic = popularity as of the rebuild period's
start, the headline; exact = as of each held-out interaction), each row with its same-session /
later slices and each hybrid with its paired difference to its best single signal.

Offers :func:`build_evaluation_set` / :class:`EvaluationSet`, :func:`as_of_rebuild`,
:data:`PROTOCOL_TEXT`, the metric functions in :mod:`recommender.evaluation.metrics`,
:func:`evaluate_rankers` / :func:`evaluate_protocols`, the row rankers
(:func:`baseline_rankers`, :func:`signal_ranker`, :func:`hybrid_ranker`), :func:`stage_signals`,
:func:`evaluate_registered`, :func:`build_report`, :func:`format_table` and
:func:`metrics_summary`. Evaluation never imports :mod:`recommender.training` (training imports
evaluation); ``tests/recommender/test_import_direction.py`` pins that.
"""

from recommender.evaluation.evaluator import evaluate_protocols, evaluate_rankers
from recommender.evaluation.protocol import (
    PROTOCOL_TEXT,
    EvaluationSet,
    as_of_rebuild,
    build_evaluation_set,
    top_k_items,
)
from recommender.evaluation.rankers import baseline_rankers, hybrid_ranker, signal_ranker
from recommender.evaluation.registered import evaluate_registered
from recommender.evaluation.report import build_report, format_table, metrics_summary
from recommender.evaluation.side_signals import load_aligned_embeddings, stage_signals

__all__ = [
    "PROTOCOL_TEXT",
    "EvaluationSet",
    "as_of_rebuild",
    "baseline_rankers",
    "build_evaluation_set",
    "build_report",
    "evaluate_protocols",
    "evaluate_rankers",
    "evaluate_registered",
    "format_table",
    "hybrid_ranker",
    "load_aligned_embeddings",
    "metrics_summary",
    "signal_ranker",
    "stage_signals",
    "top_k_items",
]
