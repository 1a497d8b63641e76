"""Register the models of a :class:`TrainingRun` (and promote the one promotion.py chose).

The factors registered are :attr:`TrainedModel.served` (the all-data refit by default); the
metrics are those of the train + val fit that the test split evaluated, and every place that
shows them says so: ``metrics.fit`` / ``metrics.deployed_fit`` in ``registry.json``,
``deployed_fit`` in ``params.json`` and ``metadata.json`` (with ``data_cutoff``, the newest
interaction the model was built from, which ``events compact --model-cutoff`` relies on).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from recommender import vocabulary as V
from recommender.config.training import TrainingSettings
from recommender.evaluation.report import metrics_summary, model_report
from recommender.registry import ModelRecord, Registry
from recommender.training.pipeline import TrainedModel, TrainingRun


def fit_labels(trained: TrainedModel) -> dict[str, str]:
    """Which fit the metrics describe and which fit is registered."""
    return {"fit": V.FIT_TRAIN_VAL, "deployed_fit": trained.deployed_fit}


def model_metadata(
    run: TrainingRun, trained: TrainedModel, report: dict[str, Any]
) -> dict[str, Any]:
    """``metadata.json`` content beyond what :meth:`Registry.register` fills in itself."""
    return {
        **fit_labels(trained),
        "data_cutoff": run.data_cutoff,
        "data_cutoff_iso": _iso(run.data_cutoff),
        "events_seq": run.events_seq,
        "fold_in_regularization": trained.factors.fold_in_regularization,
        "item_knn": run.item_knn.model_dump(),
        "popularity": run.popularity.model_dump(),
        "hybrid": trained.hybrid.to_dict(),
        # the live validation's choice (training/live_validation.py); events.trainable_fold_in
        # overrides it when set; null when there was nothing to decide on
        "live_fold_in": trained.live_fold_in,
        # ALS: the user step a trainable user's CF vector is refolded with (scoring.Refold)
        "refold": None if trained.refold is None else trained.refold.to_dict(),
        "metrics": {**metrics_summary(report), **fit_labels(trained)},
        "validation": trained.validation,
        # the Optuna studies in brief (every trial: study.json beside the model)
        "studies": {name: body["summary"] for name, body in _study_summaries(run, trained)},
        "training_seconds": round(trained.training_seconds, 3),
        "fit_seconds": round(trained.served.training_seconds, 3),
        "confidence": "1 + alpha * weight" if trained.factors.model_type == V.MODEL_ALS else None,
    }


def register_run(
    registry: Registry, run: TrainingRun, settings: TrainingSettings
) -> dict[str, ModelRecord]:
    """Register every model of ``run`` as a candidate; returns ``{model_type: record}``."""
    records: dict[str, ModelRecord] = {}
    for model_type, trained in run.models.items():
        report = model_report(run.report, model_type)
        summary = {**metrics_summary(report), **fit_labels(trained)}
        params = {
            "model_type": model_type,
            **trained.served.params.model_dump(),
            "deployed_fit": trained.deployed_fit,
        }
        records[model_type] = registry.register(
            model_type=model_type,
            user_factors=trained.served.user_factors,
            item_factors=trained.served.item_factors,
            params=params,
            metadata=model_metadata(run, trained, report),
            data_version=run.data_version,
            embedding_version=run.embedding_version,
            metrics=summary,
            extra_json={V.EVALUATION_FILE: report, **_study_file(run, model_type)},
            item_item=trained.served.item_item,
        )
    return records


def _study_summaries(run: TrainingRun, trained: TrainedModel) -> list[tuple[str, dict[str, Any]]]:
    studies = dict(run.side_studies)
    if trained.study is not None:
        studies[trained.factors.model_type] = trained.study
    return [(name, {"summary": study.summary()}) for name, study in studies.items()]


def _study_file(run: TrainingRun, model_type: str) -> dict[str, Any]:
    """``{study.json: ...}`` when anything was searched with Optuna, else nothing."""
    body = run.study_json(model_type)
    return {V.STUDY_FILE: body} if body else {}


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
