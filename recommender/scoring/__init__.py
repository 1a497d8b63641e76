"""Scoring: the signals and the hybrid shared by evaluation and serving.

Offers :class:`ScoringModel`, :func:`score_users` (:func:`score_user`: one user),
:func:`compute_signals`, :func:`signal_breakdown`, :func:`with_popularity`, :class:`HybridConfig`,
:func:`combine`, :func:`normalise`, :func:`validate_weights`, the signal functions
(:func:`recency_weights` for history decay), :func:`fit_item_knn`, :func:`popularity_scores`,
:class:`PopularityHistory` (popularity as of a moment), :func:`quality_scores`, and the ANN
candidate stage (:class:`CandidateSearch` over :class:`VectorIndex` es, :func:`with_candidates`).
"""

from recommender.scoring.ann import IndexParams, VectorIndex
from recommender.scoring.candidates import CandidateSearch, candidate_scores
from recommender.scoring.hybrid import (
    NORMALISATIONS,
    HybridConfig,
    combine,
    normalise,
    validate_weights,
)
from recommender.scoring.item_knn import fit_item_knn, session_items
from recommender.scoring.popularity import PopularityHistory, popularity_scores, quality_scores
from recommender.scoring.scorer import (
    Refold,
    ScoringModel,
    compute_signals,
    score_user,
    score_users,
    signal_breakdown,
    with_candidates,
    with_fold_in_regularization,
    with_popularity,
)
from recommender.scoring.signals import (
    cf_scores,
    content_scores,
    fold_in,
    item_gram,
    item_similarity_scores,
    recency_weights,
)

__all__ = [
    "NORMALISATIONS",
    "CandidateSearch",
    "IndexParams",
    "VectorIndex",
    "candidate_scores",
    "with_candidates",
    "HybridConfig",
    "PopularityHistory",
    "Refold",
    "ScoringModel",
    "cf_scores",
    "combine",
    "compute_signals",
    "content_scores",
    "fit_item_knn",
    "session_items",
    "fold_in",
    "item_gram",
    "item_similarity_scores",
    "normalise",
    "popularity_scores",
    "quality_scores",
    "recency_weights",
    "score_user",
    "score_users",
    "signal_breakdown",
    "validate_weights",
    "with_fold_in_regularization",
    "with_popularity",
]
