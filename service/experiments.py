"""The service's side of A/B experiments: which options an answer uses and how it is tagged.

Every recommendation answer gets a fresh ``recommendation_id`` and its ``experiment`` /
``variant`` (``null`` outside any experiment); lists shown inside a running experiment are
recorded as impressions in the shared ledger (:mod:`recommender.experiments.ledger`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender import vocabulary as V
from recommender.experiments import Choice, ExperimentRunner, new_recommendation_id
from recommender.serving import Recommendation


def merged_options(request_options: Mapping[str, Any], choice: Choice | None) -> dict[str, Any]:
    """The request's options with the variant's settings filling what the request left unset
    (a request that names its own weights or rerank keeps them)."""
    out = dict(request_options)
    if choice is None:
        return out
    for name, value in ExperimentRunner.overrides(choice.variant).items():
        if out.get(name) is None:
            out[name] = value
    return out


def answer_tags(
    runner: ExperimentRunner | None, choice: Choice | None, result: Recommendation
) -> dict[str, Any]:
    """``recommendation_id``, ``experiment`` and ``variant`` of one user's answer (the last keys
    of its JSON); records the impression when the experiment is running."""
    rid = new_recommendation_id()
    if runner is not None and choice is not None and choice.record:
        ranked = result.ranked
        products = [str(ranked.source[i][V.PRODUCT_ID]) for i in ranked.indices]
        runner.ledger.record_impression(rid, choice.experiment, choice.variant.name, products)
    return {
        "recommendation_id": rid,
        "experiment": choice.experiment if choice else None,
        "variant": choice.variant.name if choice else None,
    }
