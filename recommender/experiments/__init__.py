"""A/B experiments: deterministic assignment, recommendation ids, attribution, statistics.

No HTTP here; ``service`` wires :class:`ExperimentRunner` into ``/recommend`` and ``/events``.
"""

from recommender.experiments.assignment import assign, bucket
from recommender.experiments.ids import new_recommendation_id
from recommender.experiments.ledger import Attribution, ExperimentLedger
from recommender.experiments.runner import Choice, ExperimentRunner
from recommender.experiments.stats import VariantCounts, variant_table, verdict

__all__ = [
    "Attribution",
    "Choice",
    "ExperimentLedger",
    "ExperimentRunner",
    "VariantCounts",
    "assign",
    "bucket",
    "new_recommendation_id",
    "variant_table",
    "verdict",
]
