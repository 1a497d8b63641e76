"""Tune on validation, refit, evaluate on test: the body of ``train`` and ``build``.

1. validation stage: choose item-kNN shrinkage and the popularity half-life, grid-search each CF
   model on ``train`` (NDCG@10 of trainable users), then tune the hybrid's per-segment weights
   and the fold-in λ on cross-fitted validation folds (:mod:`recommender.training.crossfit`);
2. test stage: refit the chosen hyperparameters on ``train + val`` and evaluate every row (random,
   popularity, item-kNN, content, each CF model, each model's hybrid) on ``test``;
3. deployment: refit the same hyperparameters once more on *all* interactions (train + val +
   test, ``deployed_fit: all`` in ``training.yaml``) and register those factors, so each trainable
   user's newest positive reaches the served model. The registry keeps the metrics of the
   train + val fit (``metrics.fit: "train+val"``, ``deployed_fit: "all"``): the test split cannot
   score a model that saw it.

The CF rows are the same trainable users in every fit (``trainable_user_mapping.json``): a user is
trainable by the preparation's rule (>= 2 interactions, >= 1 positive), so a user whose only
positive was the test item has a CF row in both fits and gets that item into it in the deployed one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams, PopularityParams, TrainingSettings
from recommender.data.matrix import user_item_matrix
from recommender.data.processed import ProcessedData
from recommender.errors import EmptyDataError
from recommender.evaluation.evaluator import PROTOCOLS, Ranker, evaluate_protocols, tie_order
from recommender.evaluation.protocol import (
    PROTOCOL_EXACT,
    PROTOCOL_REALISTIC,
    EvaluationSet,
    build_evaluation_set,
    history_splits,
    realistic_view,
    sample_users,
)
from recommender.evaluation.rankers import (
    baseline_rankers,
    best_single_candidates,
    hybrid_ranker,
    random_ranker,
    signal_ranker,
)
from recommender.evaluation.report import build_report
from recommender.evaluation.side_signals import (
    AlignedEmbeddings,
    load_aligned_embeddings,
    scoring_model,
    stage_signals,
    stale_model,
)
from recommender.scoring import HybridConfig, Refold
from recommender.scoring.candidates import build_search
from recommender.scoring.factors import FactorModel
from recommender.training.budget import BuildBudget
from recommender.training.crossfit import cross_fitted_data
from recommender.training.hybrid_tuning import tune_hybrid
from recommender.training.live_validation import (
    LiveStream,
    live_model,
    live_stream,
    refold_candidates,
    tune_live,
)
from recommender.training.matched_validation import matched_users, stratum_shares
from recommender.training.parallel import parallel_map
from recommender.training.progress import done_line
from recommender.training.promotion import choose_promoted, validation_per_user
from recommender.training.search import StudyResult
from recommender.training.stale_gate import tune_stale_gate
from recommender.training.tuning import fit_model, search_item_knn, search_popularity, tune
from recommender.training.validation_report import realistic_validation, summary_line

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainedModel:
    """One model type after tuning and refitting on train + val."""

    factors: FactorModel  # refit on train + val, fold-in λ as tuned: what test evaluated
    hybrid: HybridConfig
    validation: dict[str, Any]  # grid scores, best CF score, hybrid tuning per segment
    training_seconds: float  # grid search + hybrid tuning + refit
    deployed: FactorModel | None = None  # refit on every split; None when deployed_fit is train+val
    # live validation's choice for events.trainable_fold_in (None: nothing to decide it on)
    live_fold_in: bool | None = None
    study: StudyResult | None = None  # tuning.method optuna: the model's search (study.json)
    # how a trainable user's CF vector is refolded from live evidence (None: as a cold user)
    refold: Refold | None = None
    # the served hybrid's NDCG@10 per trainable validation user (cross-fitted folds, realistic
    # protocol; paired across model types): what promotion compares (training/promotion.py)
    promotion_values: np.ndarray | None = None

    @property
    def served(self) -> FactorModel:
        """The factors to register: the all-data refit when there is one."""
        return self.factors if self.deployed is None else self.deployed

    @property
    def deployed_fit(self) -> str:
        """``all`` or ``train+val``: which interactions the registered factors were fit on."""
        return V.FIT_TRAIN_VAL if self.deployed is None else V.FIT_ALL


@dataclass(frozen=True)
class TrainingRun:
    """Everything ``train`` produced: models, the test report and the promoted model."""

    data_version: str
    embedding_version: str | None
    item_knn: ItemKNNParams
    popularity: PopularityParams
    models: dict[str, TrainedModel]
    best: str
    report: dict[str, Any]
    data_cutoff: float | None = None  # newest interaction (UTC seconds) the model was built from
    events_seq: int = 0  # last event-store sequence the data was prepared from (0: none read)
    # the side signals' Optuna studies ("item_knn", "popularity"); empty with tuning.method grid
    side_studies: dict[str, StudyResult] = dataclasses.field(default_factory=dict)

    def study_json(self, model_type: str) -> dict[str, Any]:
        """``study.json`` of ``model_type``: its own study and the side studies, every trial."""
        studies = dict(self.side_studies)
        own = self.models[model_type].study
        if own is not None:
            studies[model_type] = own
        return {name: study.to_dict() for name, study in studies.items()}


def hybrid_row(model_type: str) -> str:
    """Row name of ``model_type``'s hybrid in a multi-model report."""
    return f"{V.ROW_HYBRID}:{model_type}"


def check_trainable(data: ProcessedData) -> None:
    """EmptyDataError unless there are trainable users and test targets."""
    if not data.trainable_user_ids:
        raise EmptyDataError(
            f"{data.directory}: no trainable users (users with >= 2 interactions and a positive); "
            "collaborative filtering cannot be trained. Serving can still use popularity and "
            "content; add interaction data and re-run prepare."
        )
    splits = set(data.interactions[V.SPLIT].unique())
    if V.SPLIT_TEST not in splits:
        raise EmptyDataError(
            f"{data.directory}: no '{V.SPLIT_TEST}' interactions, so nothing can be evaluated. "
            "Re-run prepare on data with users that have >= 2 positive interactions."
        )


def run_training(
    data: ProcessedData,
    settings: TrainingSettings,
    model_types: Sequence[str] = V.MODEL_TYPES,
    progress: Progress = lambda _: None,
    embeddings: AlignedEmbeddings | None | bool = True,
    started: float | None = None,
) -> TrainingRun:
    """Tune, refit and evaluate ``model_types`` on ``data``; ``embeddings=True`` loads them.

    ``started``: ``time.perf_counter()`` when the build began (default: now), from which
    ``tuning.build_budget_seconds`` counts."""
    budget = BuildBudget(settings.tuning.build_budget_seconds, started)
    check_trainable(data)
    aligned = load_aligned_embeddings(data) if embeddings is True else embeddings or None
    seed = settings.seed
    limit, sample_seed = settings.evaluation.max_users, settings.evaluation.seed
    trial_limit = settings.evaluation.tuning_users(len(data.item_ids))
    test = sample_users(build_evaluation_set(data, V.STAGE_TEST), limit, sample_seed)
    population = validation_population(test, settings)
    validation = tuning_protocol_view(
        population(
            sample_users(build_evaluation_set(data, V.STAGE_VALIDATION), trial_limit, sample_seed),
            sample_seed,
        ),
        settings,
    )
    ties = tie_order(len(data.item_ids), seed)
    progress(
        f"validation users {len(validation)}, test users {len(test)} "
        f"(trainable {len(test.segment_indices(V.SEGMENT_TRAINABLE))}, "
        f"cold {len(test.segment_indices(V.SEGMENT_COLD))})"
    )
    clock = time.perf_counter()
    item_knn, knn_study = search_item_knn(
        data, validation, budget.for_study(settings, "item_knn"), ties, progress
    )
    popularity, popularity_study = search_popularity(
        data, validation, budget.for_study(settings, "popularity"), ties, progress
    )
    side_studies = {
        name: study
        for name, study in (("item_knn", knn_study), ("popularity", popularity_study))
        if study is not None
    }
    progress(f"item-kNN and popularity tuned in {time.perf_counter() - clock:.1f}s")
    clock = time.perf_counter()
    train_matrix = user_item_matrix(data, history_splits(V.STAGE_VALIDATION))
    variants = cross_fitted_data(data, settings.hybrid.folds, seed)
    fold_inputs = [
        (
            user_item_matrix(variant, history_splits(V.STAGE_VALIDATION)),
            stage_signals(variant, V.STAGE_VALIDATION, item_knn, aligned, popularity),
            tuning_protocol_view(
                population(
                    sample_users(
                        build_evaluation_set(variant, V.STAGE_VALIDATION), limit, sample_seed
                    ),
                    sample_seed + 1 + fold,
                ),
                settings,
            ),
        )
        for fold, variant in enumerate(variants)
    ]
    full_matrix = user_item_matrix(data, history_splits(V.STAGE_TEST))
    stream = tuning_protocol_stream(live_stream(data, settings.hybrid.live_fraction), settings)
    progress(
        f"signals of {len(fold_inputs)} cross-fitted folds in {time.perf_counter() - clock:.1f}s"
    )

    def train_one(model_type: str, progress: Progress) -> TrainedModel:
        """Tune ``model_type`` (search, hybrid, live validation) and refit it on train + val."""
        started = time.perf_counter()
        progress(f"tuning {model_type} on validation")
        tuned = tune(model_type, train_matrix, validation, cf_settings, ties, progress)
        fitted = [fit_model(model_type, matrix, tuned.params) for matrix, _, _ in fold_inputs]
        folds = [
            (scoring_model(factors, side), ev)
            for factors, (_, side, ev) in zip(fitted, fold_inputs, strict=True)
        ]
        grid_done = time.perf_counter()
        hybrid = tune_hybrid(folds, settings.hybrid, seed)
        progress(
            f"  {model_type}: best {tuned.params.model_dump()} (validation ndcg@10 "
            f"{tuned.score:.4f}; grid {grid_done - started:.1f}s); hybrid "
            f"{hybrid.config.to_dict()} ({time.perf_counter() - grid_done:.1f}s)"
        )
        live_started = time.perf_counter()
        pre_cut = None
        if stream is not None:
            pre_cut = live_model(
                stream,
                data,
                model_type,
                tuned.params,
                item_knn,
                popularity,
                aligned,
                hybrid.fold_in_regularization,
            )
        refolds = refold_candidates(model_type, tuned.params, settings.hybrid.refold_newest_boosts)
        live = tune_live(stream, pre_cut, hybrid.config, settings, ties, refolds)
        progress(
            f"  {model_type}: live validation {_live_summary(live.report)}; hybrid "
            f"{live.hybrid.to_dict()} ({time.perf_counter() - live_started:.1f}s)"
        )
        reg = hybrid.fold_in_regularization
        gate_folds = [
            (scoring_model(factors, side, reg), ev, variant)
            for factors, (_, side, ev), variant in zip(fitted, fold_inputs, variants, strict=True)
        ]
        final, gate = tune_stale_gate(gate_folds, live.hybrid, settings.hybrid, seed, ties)
        progress(f"  {model_type}: stale gate {gate}")
        promotion_started = time.perf_counter()
        half_life = final.stale_popularity_half_life_days
        promotion_folds = [
            (
                model,
                None
                if final.stale_after_hours is None
                else stale_model(model, variant, V.STAGE_VALIDATION, half_life),
                ev,
            )
            for model, ev, variant in gate_folds
        ]
        promotion_values = validation_per_user(promotion_folds, final, settings.evaluation, ties)
        progress(
            f"  {model_type}: served hybrid on {promotion_values.size} trainable validation "
            f"users, ndcg@10 {promotion_values.mean() if promotion_values.size else 0.0:.4f} "
            f"({time.perf_counter() - promotion_started:.1f}s)"
        )
        report_started = time.perf_counter()
        realistic = realistic_validation(
            promotion_folds,
            final,
            settings.evaluation,
            settings.hybrid.cold_population,
            ties,
            promotion_values,
        )
        progress(
            f"  {model_type}: realistic validation: {summary_line(realistic)} "
            f"({time.perf_counter() - report_started:.1f}s)"
        )
        refit = fit_model(model_type, full_matrix, tuned.params)
        refit = dataclasses.replace(refit, fold_in_regularization=hybrid.fold_in_regularization)
        trained = TrainedModel(
            factors=refit,
            hybrid=final,
            validation={
                "cf_ndcg@10": tuned.score,
                "grid": [dataclasses.asdict(p) for p in tuned.points],
                "study": None if tuned.study is None else tuned.study.summary(),
                "hybrid": hybrid.validation,
                "hybrid_before_live": hybrid.config.to_dict(),
                "live": live.report,
                "stale_gate": gate,
                "realistic": realistic,
            },
            training_seconds=time.perf_counter() - started,
            live_fold_in=live.live_fold_in,
            study=tuned.study,
            refold=live.refold,
            promotion_values=promotion_values,
        )
        seconds = time.perf_counter() - started
        label = f"{model_type} (search, hybrid, live validation, refit)"
        progress(f"  {done_line(label, seconds)}")
        return trained

    types = _fitting_types(model_types, len(data.item_ids), settings, progress)
    cf_settings = budget.for_study(settings, "cf")  # before forking: one deadline for all
    trained_models = parallel_map(train_one, types, settings.model_workers, progress)
    models = dict(zip(types, trained_models, strict=True))
    best, promotion = choose_promoted(
        {m: _promotion_values(t) for m, t in models.items()},
        settings.promotion.order,
        settings.promotion.min_z,
    )
    progress(f"promotion: {_promotion_summary(promotion)}")
    progress(f"evaluating on test (promoted by validation: {best})")
    clock = time.perf_counter()
    test_side = stage_signals(data, V.STAGE_TEST, item_knn, aligned, popularity)
    base = scoring_model(None, test_side)
    rankers: dict[str, Ranker] = dict(baseline_rankers(base, seed))
    for model_type, trained in models.items():
        rankers[model_type] = signal_ranker(scoring_model(trained.factors, test_side), V.SIGNAL_CF)
    indexes: dict[str, Any] = {}  # the content index (+ neighbour table), built once for all
    for model_type, trained in models.items():
        served = scoring_model(trained.factors, test_side)
        gated = trained.hybrid.stale_after_hours is not None
        half_life = trained.hybrid.stale_popularity_half_life_days
        stale = stale_model(served, data, V.STAGE_TEST, half_life) if gated else None
        search = build_search(served, settings.evaluation.candidates, indexes)  # as served
        rankers[hybrid_row(model_type)] = hybrid_ranker(served, trained.hybrid, stale, search)
    ev = settings.evaluation
    best_single = best_single_candidates(list(rankers))

    def evaluate_protocol(protocol: str, _: Progress) -> dict[str, dict[str, dict[str, object]]]:
        # a fresh random row per protocol: its values do not depend on which process ran first
        rows = {**rankers, V.ROW_RANDOM: random_ranker(seed)}
        tables = evaluate_protocols(
            rows, test, V.SEGMENTS, ev, test_side.embeddings, best_single, (protocol,)
        )
        return tables[protocol]

    workers = settings.model_workers  # the two protocols side by side: half the wall time
    scored = parallel_map(evaluate_protocol, PROTOCOLS, workers, progress)
    tables = dict(zip(PROTOCOLS, scored, strict=True))
    progress(f"test evaluation in {time.perf_counter() - clock:.1f}s")
    if settings.deployed_fit == V.FIT_ALL:
        models = _refit_on_all(data, models, workers, progress)
    report = build_report(
        tables[PROTOCOL_REALISTIC],
        stage=V.STAGE_TEST,
        data_version=data.data_version,
        embedding_version=None if aligned is None else aligned.version,
        ks=ev.ks,
        bootstrap_samples=ev.bootstrap_samples,
        extra={
            "best_model": best,
            "promotion": promotion,
            "item_knn": item_knn.model_dump(),
            "popularity": popularity.model_dump(),
            "studies": {name: study.summary() for name, study in side_studies.items()},
            "hybrid": {m: t.hybrid.to_dict() for m, t in models.items()},
            "validation": {m: t.validation for m, t in models.items()},
            "training_seconds": {m: round(t.training_seconds, 2) for m, t in models.items()},
        },
        exact_table=tables[PROTOCOL_EXACT],
        rebuild_period_days=ev.rebuild_period_days,
        live_popularity=ev.live_popularity,
        live_event_weight=ev.live_event_weight,
        same_session_hours=ev.same_session_hours,
    )
    return TrainingRun(
        data_version=data.data_version,
        embedding_version=None if aligned is None else aligned.version,
        item_knn=item_knn,
        popularity=popularity,
        models=models,
        best=best,
        report=report,
        data_cutoff=data_cutoff(data),
        events_seq=int(data.stats.get("events", {}).get("latest_seq", 0) or 0),
        side_studies=side_studies,
    )


def data_cutoff(data: ProcessedData) -> float | None:
    """UTC seconds of the newest interaction in ``data`` (None when there is none)."""
    stamps = data.interactions[V.TIMESTAMP]
    if stamps.empty:
        return None
    newest = stamps.max()
    return float(newest.value) / 1e9  # naive UTC datetime64[ns] -> seconds since the epoch


def _refit_on_all(
    data: ProcessedData, models: dict[str, TrainedModel], workers: int, progress: Progress
) -> dict[str, TrainedModel]:
    """Each model refit with its chosen hyperparameters on every split (train + val + test), on
    up to ``workers`` processes."""
    matrix = user_item_matrix(data, V.SPLITS)

    def refit(model_type: str, progress: Progress) -> TrainedModel:
        trained = models[model_type]
        started = time.perf_counter()
        fitted = fit_model(model_type, matrix, trained.factors.params)
        fitted = dataclasses.replace(
            fitted, fold_in_regularization=trained.factors.fold_in_regularization
        )
        if fitted.user_factors.shape != trained.factors.user_factors.shape or (
            fitted.item_factors.shape != trained.factors.item_factors.shape
        ):  # pragma: no cover - the mapping contract: one CF row per trainable user in both fits
            raise AssertionError(
                f"{model_type}: deployed factors {fitted.user_factors.shape}/"
                f"{fitted.item_factors.shape} differ from the evaluated "
                f"{trained.factors.user_factors.shape}/{trained.factors.item_factors.shape}"
            )
        seconds = time.perf_counter() - started
        progress(f"  {model_type}: refit on all interactions for deployment in {seconds:.1f}s")
        return dataclasses.replace(
            trained, deployed=fitted, training_seconds=trained.training_seconds + seconds
        )

    return dict(zip(models, parallel_map(refit, list(models), workers, progress), strict=True))


def _live_summary(report: dict[str, Any]) -> str:
    """One line of the live validation: events, fold-in values, popularity shares."""
    parts = [f"{report.get('events', 0)} events"]
    fold = report.get("fold_in")
    if fold:
        parts.append(
            f"fold-in {fold['fold_in_ndcg@10']:.4f} vs stored row "
            f"{fold['stored_row_ndcg@10']:.4f} -> live_fold_in {fold['live_fold_in']}"
        )
        if fold.get("refold"):
            parts.append(f"refold: ALS user step, newest boost {fold['refold']['newest_boost']:g}")
    for segment in (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD):
        body = report.get(segment)
        if body:
            parts.append(
                f"{segment} tuned {body['tuned_ndcg@10']:.4f} popularity "
                f"{body['popularity_ndcg@10']:.4f} -> share {body['popularity_share']}"
            )
    return "; ".join(parts)


def _fitting_types(
    model_types: Sequence[str], n_items: int, settings: TrainingSettings, progress: Progress
) -> list[str]:
    """``model_types`` without EASE when the catalogue exceeds ``ease.max_items`` (logged)."""
    limit = settings.ease.max_items
    if V.MODEL_EASE not in model_types or n_items <= limit:
        return list(model_types)
    message = (
        f"skipping {V.MODEL_EASE}: {n_items} items > ease.max_items {limit} "
        "(config/training.yaml; its n x n fit and B grow with the square of the catalogue)"
    )
    log.info(message)
    progress(message)
    kept = [m for m in model_types if m != V.MODEL_EASE]
    if not kept:
        raise ValueError(f"{message}, and no other model type was asked for")
    return kept


def tuning_protocol_view(users: EvaluationSet, settings: TrainingSettings) -> EvaluationSet:
    """``users`` as the validation choices score them (``tuning.protocol``): request times moved
    to the start of their rebuild period for ``realistic``, untouched for ``exact``."""
    if settings.tuning.protocol == PROTOCOL_REALISTIC:
        ev = settings.evaluation
        return realistic_view(
            users, ev.rebuild_period_days, ev.live_popularity, ev.live_event_weight
        )
    return users


def validation_population(
    test: EvaluationSet, settings: TrainingSettings
) -> Callable[[EvaluationSet, int], EvaluationSet]:
    """How each validation population is drawn (``tuning.validation_population``): as it is, or
    resampled to the test users' stratum shares (histories and request times only, never a test
    item: :mod:`recommender.training.matched_validation`)."""
    if settings.tuning.validation_population != "matched":
        return lambda users, _seed: users
    shares = stratum_shares(test)
    return lambda users, seed: matched_users(users, shares, seed)


def tuning_protocol_stream(
    stream: LiveStream | None, settings: TrainingSettings
) -> LiveStream | None:
    """The live validation's events under ``tuning.protocol``, as :func:`tuning_protocol_view`
    scores the leave-last-out users: its popularity choice (the trainable/cold popularity floor)
    is then made on the popularity the reported protocol serves, like every other choice."""
    if stream is None:
        return None
    return dataclasses.replace(stream, events=tuning_protocol_view(stream.events, settings))


def _promotion_values(model: TrainedModel) -> np.ndarray:
    """The model's paired validation values (empty when it was built without them)."""
    return np.zeros(0) if model.promotion_values is None else model.promotion_values


def _promotion_summary(report: dict[str, Any]) -> str:
    """One line: the default, each candidate's validation value, gain and z, the choice."""
    parts = []
    for model, body in report["candidates"].items():
        z = "" if body["z"] is None else f", z {body['z']:+.2f}"
        parts.append(f"{model} {body['ndcg@10']:.4f} ({body['gain']:+.4f}{z})")
    return (
        f"default {report['default']}, {report['users']} trainable validation users, "
        f"min_z {report['min_z']:g}: " + "; ".join(parts) + f" -> {report['chosen']}"
    )
