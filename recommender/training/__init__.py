"""Training: ALS / BPR via ``implicit``, validation tuning, the pipeline.

Offers :func:`fit_als`, :func:`fit_bpr` (uniform or popularity negative sampling), :func:`tune`
(grid search), :func:`tune_item_knn`, :func:`tune_popularity` (popularity half-life),
:func:`tune_hybrid` (per-segment hybrid weights), :func:`cross_fitted_data`,
:func:`run_training` / :class:`TrainingRun` (tune → refit → evaluate) and :func:`register_run`.
Training sits above evaluation (it evaluates what it tunes); what both need lives below them:
:mod:`recommender.data.matrix` (users × items matrices) and :mod:`recommender.scoring.factors`
(:class:`~recommender.scoring.factors.FactorModel`); both names are re-exported here.
"""

from recommender.data.matrix import user_item_matrix
from recommender.scoring.factors import FactorModel
from recommender.training.als import fit_als
from recommender.training.bpr import fit_bpr
from recommender.training.crossfit import cross_fitted_data
from recommender.training.hybrid_tuning import HybridTuning, tune_hybrid
from recommender.training.pipeline import TrainedModel, TrainingRun, run_training
from recommender.training.publish import register_run
from recommender.training.tuning import tune, tune_item_knn, tune_popularity

__all__ = [
    "FactorModel",
    "HybridTuning",
    "TrainedModel",
    "TrainingRun",
    "cross_fitted_data",
    "fit_als",
    "fit_bpr",
    "register_run",
    "run_training",
    "tune",
    "tune_hybrid",
    "tune_item_knn",
    "tune_popularity",
    "user_item_matrix",
]
