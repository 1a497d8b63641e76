"""Serving engine (no HTTP): model bundle, engine, reranker, filters, caches, reload.

Offers :func:`load_bundle` / :class:`ModelBundle` (one immutable model version), :class:`Engine`
(``recommend``, ``recommend_batch``, ``recommend_chunks``, ``similar_items``, ``warm_up``),
:class:`RecommendOptions` (one request's validated options), :class:`Filters`,
:class:`ServingCaches`, and :class:`ModelHolder` (atomic hot reload + registry polling).
"""

from recommender.serving.bundle import ModelBundle, load_bundle
from recommender.serving.caches import CountingCache, ServingCaches, WarmupReport
from recommender.serving.catalogue import Catalogue
from recommender.serving.engine import Engine, Recommendation
from recommender.serving.filters import Filters, eligibility_mask
from recommender.serving.histories import UserHistories
from recommender.serving.holder import ModelHolder, ReloadResult, ServingState
from recommender.serving.live_feed import LiveFeed
from recommender.serving.live_state import LiveState, LiveUser
from recommender.serving.options import RecommendOptions
from recommender.serving.similarity import ItemNeighbours, SimilarItems
from recommender.serving.user_scorer import UserScorer

__all__ = [
    "Catalogue",
    "CountingCache",
    "Engine",
    "Filters",
    "ItemNeighbours",
    "LiveFeed",
    "LiveState",
    "LiveUser",
    "ModelBundle",
    "ModelHolder",
    "RecommendOptions",
    "Recommendation",
    "ReloadResult",
    "ServingCaches",
    "ServingState",
    "SimilarItems",
    "UserHistories",
    "UserScorer",
    "WarmupReport",
    "eligibility_mask",
    "load_bundle",
]
