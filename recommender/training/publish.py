"""Register the models of a :class:`TrainingRun` (and promote the validation winner)."""

from __future__ import annotations

from typing import Any

from recommender import vocabulary as V
from recommender.config.training import TrainingSettings
from recommender.evaluation.report import metrics_summary, model_report
from recommender.registry import ModelRecord, Registry
from recommender.training.pipeline import TrainedModel, TrainingRun


def model_metadata(
    run: TrainingRun, trained: TrainedModel, report: dict[str, Any]
) -> dict[str, Any]:
    """``metadata.json`` content beyond what :meth:`Registry.register` fills in itself."""
    return {
        "fold_in_regularization": trained.factors.fold_in_regularization,
        "item_knn": run.item_knn.model_dump(),
        "popularity": run.popularity.model_dump(),
        "hybrid": trained.hybrid.to_dict(),
        "metrics": metrics_summary(report),
        "validation": trained.validation,
        "training_seconds": round(trained.training_seconds, 3),
        "fit_seconds": round(trained.factors.training_seconds, 3),
        "confidence": "1 + alpha * weight" if trained.factors.model_type == V.MODEL_ALS else None,
    }


def register_run(
    registry: Registry, run: TrainingRun, settings: TrainingSettings
) -> dict[str, ModelRecord]:
    """Register every model of ``run`` as a candidate; returns ``{model_type: record}``."""
    records: dict[str, ModelRecord] = {}
    for model_type, trained in run.models.items():
        report = model_report(run.report, model_type)
        summary = metrics_summary(report)
        params = {"model_type": model_type, **trained.factors.params.model_dump()}
        records[model_type] = registry.register(
            model_type=model_type,
            user_factors=trained.factors.user_factors,
            item_factors=trained.factors.item_factors,
            params=params,
            metadata=model_metadata(run, trained, report),
            data_version=run.data_version,
            embedding_version=run.embedding_version,
            metrics=summary,
            extra_json={V.EVALUATION_FILE: report},
        )
    return records
