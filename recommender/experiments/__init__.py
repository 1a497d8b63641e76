"""A/B experiments: deterministic assignment, recommendation ids, attribution, statistics.

No HTTP here; ``service`` wires :class:`ExperimentRunner` into ``/recommend`` and ``/events``.
"""

from recommender.experiments.assignment import assign, bucket
from recommender.experiments.factory import open_ledger
from recommender.experiments.ids import new_recommendation_id
from recommender.experiments.ledger import Attribution, ExperimentLedger, LedgerBase
from recommender.experiments.runner import Choice, ExperimentRunner
from recommender.experiments.stats import VariantCounts, variant_table, verdict

__all__ = [
    "Attribution",
    "Choice",
    "ExperimentLedger",
    "ExperimentRunner",
    "LedgerBase",
    "VariantCounts",
    "assign",
    "bucket",
    "new_recommendation_id",
    "open_ledger",
    "variant_table",
    "verdict",
]
