"""Training: users × items matrices, ALS / BPR via ``implicit``, validation tuning, the pipeline.

Offers :func:`user_item_matrix`, :func:`fit_als`, :func:`fit_bpr` (uniform or popularity negative
sampling), :class:`FactorModel`, :func:`tune` (grid search), :func:`tune_item_knn`,
:func:`tune_popularity` (popularity half-life), :func:`tune_hybrid` (per-segment hybrid weights),
:func:`cross_fitted_data`, :func:`run_training` / :class:`TrainingRun` (tune → refit → evaluate)
and :func:`register_run`.

Names are imported lazily: evaluation and training use each other's low-level modules, and a lazy
package keeps that free of import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "user_item_matrix": "matrix",
    "fit_als": "als",
    "fit_bpr": "bpr",
    "FactorModel": "factors",
    "tune": "tuning",
    "tune_item_knn": "tuning",
    "tune_popularity": "tuning",
    "tune_hybrid": "hybrid",
    "HybridTuning": "hybrid",
    "cross_fitted_data": "crossfit",
    "run_training": "pipeline",
    "TrainingRun": "pipeline",
    "TrainedModel": "pipeline",
    "register_run": "publish",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
