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
from recommender.serving import Recommendation, ServingState
from recommender.serving.variant_models import VariantModels


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


def serving_for(
    runner: ExperimentRunner | None,
    models: VariantModels | None,
    choice: Choice | None,
    default: ServingState,
) -> tuple[ServingState, Choice | None]:
    """The state that answers ``choice`` (its variant's model, else the default) and the choice
    as served: a variant whose model is not loaded falls back to control, with its reason."""
    model_id = choice.variant.model_id if choice is not None else None
    if runner is None or choice is None or model_id is None:
        return default, choice
    state = models.state_for(model_id, default) if models is not None else None
    if state is not None:
        return state, choice
    failure = models.failures.get(model_id) if models is not None else None
    if failure is None:
        reason = "not_loaded"
    elif failure.startswith("experiments.max_loaded_models"):
        reason = "limit"
    else:
        reason = "load_failed"
    return default, runner.fall_back(choice, reason)


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
