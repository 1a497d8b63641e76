"""Search of ALS / BPR / EASE, item-kNN and popularity hyperparameters on the validation split.

``tuning.method: optuna`` (the default): a budgeted, seeded TPE study per model over its
``search`` space (:mod:`recommender.training.search`); ALS and uniform BPR report validation
NDCG@10 every ``tuning.report_every`` iterations/epochs so hopeless trials are pruned.
``tuning.method: grid``: every point of the ``grid`` (the reference the benchmark compares to).
Each point overrides the defaults of ``config/training.yaml`` (``als.params``), is fit on
``train`` and scored by CF-only NDCG@10 of the validation ``trainable`` segment. Untuned ALS is
far below popularity on small review data (NDCG@10 0.035 vs 0.115 on Hasaki), so tuning is part
of every ``train``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender import vocabulary as V
from recommender.config.training import (
    ALSParams,
    BPRParams,
    EASEParams,
    ItemKNNParams,
    PopularityParams,
    TrainingSettings,
)
from recommender.data.matrix import all_users_matrix
from recommender.data.processed import ProcessedData
from recommender.evaluation.evaluator import mean_metric, per_user_metric
from recommender.evaluation.protocol import EvaluationSet, history_splits, popularity_splits
from recommender.evaluation.side_signals import stage_item_similarity, stage_popularity
from recommender.scoring import cf_scores, item_similarity_scores
from recommender.scoring.ease import ease_scores
from recommender.scoring.factors import FactorModel
from recommender.training.als import fit_als
from recommender.training.bpr import fit_bpr
from recommender.training.ease import fit_ease
from recommender.training.parallel import worker_threads
from recommender.training.progress import grid_bar
from recommender.training.search import Report, StudyResult, run_study

log = logging.getLogger(__name__)

OBJECTIVE = "ndcg@10"
Params = ALSParams | BPRParams | EASEParams
P = TypeVar("P", ItemKNNParams, PopularityParams)


@dataclass(frozen=True)
class GridPoint:
    """One fitted grid point and its validation score."""

    params: dict[str, Any]
    score: float
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    """The best grid point (its model, fit on train) and every point's score."""

    params: Params
    model: FactorModel | None  # the grid's best fit (an Optuna study keeps no fit)
    score: float
    points: list[GridPoint]
    study: StudyResult | None = None  # tuning.method optuna: every trial


def base_params(settings: TrainingSettings, model_type: str) -> Params:
    """The configured defaults of ``model_type``."""
    if model_type == V.MODEL_ALS:
        return settings.als.params
    if model_type == V.MODEL_BPR:
        return settings.bpr.params
    if model_type == V.MODEL_EASE:
        return settings.ease.params
    raise ValueError(f"unknown model type {model_type!r}; expected one of {V.MODEL_TYPES}")


def grid_points(base: Any, grid: Mapping[str, Sequence[Any]]) -> list[Any]:
    """Every combination of ``grid`` applied over ``base`` (validated by the pydantic model)."""
    unknown = set(grid) - set(type(base).model_fields)
    if unknown:
        raise ValueError(
            f"grid keys {sorted(unknown)} are not {type(base).__name__} fields "
            f"({', '.join(type(base).model_fields)}); fix config/training.yaml"
        )
    keys = list(grid)
    combos = itertools.product(*(grid[k] for k in keys)) if keys else [()]
    return [
        type(base).model_validate({**base.model_dump(), **dict(zip(keys, c, strict=True))})
        for c in combos
    ]


OnChunk = Callable[[int, np.ndarray, np.ndarray], None]


def fit_model(
    model_type: str,
    user_items: sp.csr_matrix,
    params: Params,
    threads: int = 0,
    on_chunk: OnChunk | None = None,
    every: int = 0,
) -> FactorModel:
    """Fit ``model_type`` with ``params`` on ``user_items`` (users × items).

    ``threads``: ALS/EASE threads (0 = ALS: all, EASE: 2); ``on_chunk`` every ``every``
    iterations (ALS) or epochs (uniform BPR): intermediate factors for pruning. In a forked
    training worker every fit takes one thread (:func:`worker_threads`).
    """
    threads = worker_threads(threads)
    if model_type == V.MODEL_ALS:
        assert isinstance(params, ALSParams)
        return fit_als(user_items, params, threads, on_chunk, every)
    if model_type == V.MODEL_EASE:
        assert isinstance(params, EASEParams)
        return fit_ease(user_items, params, threads or worker_threads(2))
    assert isinstance(params, BPRParams)
    return fit_bpr(user_items, params, on_chunk, every)


def model_starts(settings: TrainingSettings, model_type: str) -> list[dict[str, Any]]:
    """The configured start points of ``model_type``'s study."""
    starts = {
        V.MODEL_ALS: settings.als.starts,
        V.MODEL_BPR: settings.bpr.starts,
        V.MODEL_EASE: settings.ease.starts,
    }
    return [dict(point) for point in starts[model_type]]


def model_search(settings: TrainingSettings, model_type: str) -> dict[str, Any]:
    """The configured Optuna search space of ``model_type``."""
    spaces: dict[str, dict[str, Any]] = {
        V.MODEL_ALS: dict(settings.als.search),
        V.MODEL_BPR: dict(settings.bpr.search),
        V.MODEL_EASE: dict(settings.ease.search),
    }
    return spaces[model_type]


def model_grid(settings: TrainingSettings, model_type: str) -> dict[str, list[Any]]:
    """The configured validation grid of ``model_type``."""
    grids: dict[str, dict[str, list[Any]]] = {
        V.MODEL_ALS: dict(settings.als.grid),
        V.MODEL_BPR: dict(settings.bpr.grid),
        V.MODEL_EASE: dict(settings.ease.grid),
    }
    return grids[model_type]


def cf_ranker(model: FactorModel) -> Callable[[EvaluationSet, str], np.ndarray]:
    """Ranker scoring trainable users by their own CF row (EASE: ``x_u B`` of their history)."""

    def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
        if model.item_item is not None:
            return ease_scores(batch.histories, model.item_item)
        return cf_scores(model.user_factors[batch.cf_rows], model.item_factors)

    return rank


def tune(
    model_type: str,
    train_matrix: sp.csr_matrix,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> TuningResult:
    """Best params of ``model_type`` by validation NDCG@10 (ties: the earlier point)."""
    if settings.tuning.method == "optuna":
        return search_model(model_type, train_matrix, validation, settings, ties, progress)
    grid = model_grid(settings, model_type)
    points = grid_points(base_params(settings, model_type), grid)
    results: list[GridPoint] = []
    best: tuple[float, Params, FactorModel] | None = None
    for k, params in enumerate(grid_bar(points, f"{model_type} grid"), start=1):
        model = fit_model(model_type, train_matrix, params)
        score = mean_metric(cf_ranker(model), validation, V.SEGMENT_TRAINABLE, OBJECTIVE, ties)
        changed = {key: getattr(params, key) for key in grid}
        results.append(GridPoint(params=changed, score=score, seconds=model.training_seconds))
        progress(
            f"  {model_type} {k}/{len(points)} {changed}: validation {OBJECTIVE} {score:.4f} "
            f"({model.training_seconds:.1f}s)"
        )
        if best is None or score > best[0] + 1e-12:
            best = (score, params, model)
    assert best is not None
    return TuningResult(params=best[1], model=best[2], score=best[0], points=results)


def search_model(
    model_type: str,
    train_matrix: sp.csr_matrix,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> TuningResult:
    """An Optuna study of ``model_type``'s ``search`` space (``tuning`` budget), pruned on the
    validation NDCG@10 every ``tuning.report_every`` iterations (ALS) or epochs (uniform BPR)."""
    tuning = settings.tuning
    threads = 1 if tuning.n_jobs > 1 else 0
    every = tuning.report_every.get(model_type, 0)

    def objective(params: Params, report: Report) -> np.ndarray:
        def on_chunk(done: int, users: np.ndarray, items: np.ndarray) -> None:
            def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
                return cf_scores(users[batch.cf_rows], items)

            report(done, mean_metric(rank, validation, V.SEGMENT_TRAINABLE, OBJECTIVE, ties))

        model = fit_model(model_type, train_matrix, params, threads, on_chunk, every)
        # per user: the anchor rule (tuning.min_z) tests the winner's gain for significance
        return per_user_metric(cf_ranker(model), validation, V.SEGMENT_TRAINABLE, OBJECTIVE, ties)

    with threadpool_limits(1 if tuning.n_jobs > 1 else None):
        study = run_study(
            model_type,
            base_params(settings, model_type),
            model_search(settings, model_type),
            objective,
            tuning,
            settings.seed,
            tuning.trials,
            prunable=model_type in (V.MODEL_ALS, V.MODEL_BPR),
            warmup_steps=every + 1,  # the first check (after `every`) never prunes
            starts=model_starts(settings, model_type),
        )
    progress(_study_line(study))
    points = [
        GridPoint(params=t["params"], score=t["value"], seconds=t["seconds"])
        for t in study.trials
        if t["value"] is not None and t["state"] == "complete"
    ]
    best = study.best
    assert isinstance(best, ALSParams | BPRParams | EASEParams)
    return TuningResult(params=best, model=None, score=study.best_value, points=points, study=study)


def _study_line(study: StudyResult) -> str:
    """One line per study (what a log off a terminal shows instead of the bar)."""
    s = study.summary()
    return (
        f"  {study.name} search: {s['trials']} trials ({s['pruned']} pruned, {s['failed']} "
        f"failed, stopped by {s['stopped_by']}) in {s['seconds']:.1f}s; best validation "
        f"{OBJECTIVE} {study.best_value:.4f} {s['best_params']}"
        + (
            f" (start point kept: the top searched trial's {s['top_searched']['value']:.4f} is "
            f"z={s['top_searched']['z']:.2f} above it, under tuning.min_z)"
            if s["chosen_by"] == "anchor"
            else ""
        )
    )


def tune_item_knn(
    data: ProcessedData,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> ItemKNNParams:
    """Item-kNN parameters with the best item-similarity-only validation NDCG@10."""
    return search_item_knn(data, validation, settings, ties, progress)[0]


def search_item_knn(
    data: ProcessedData,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[ItemKNNParams, StudyResult | None]:
    """Item-kNN parameters with the best item-similarity-only validation NDCG@10 (and the study).

    Item-kNN is both a baseline row and the cold path's main signal; its shrinkage matters a lot on
    sparse data (large shrinkage favours pairs seen together often, i.e. adds popularity); the
    neighbours and session weight/gap (same-session "basket" pairs count extra) are searched the
    same way.
    """
    optuna = settings.tuning.method == "optuna"
    space = settings.item_knn_search if optuna else {}
    points = [] if optuna else grid_points(settings.item_knn, settings.item_knn_grid)
    if (optuna and not space) or (not optuna and len(points) == 1):
        return settings.item_knn, None
    splits = history_splits(V.STAGE_VALIDATION)
    matrix = all_users_matrix(data, splits)
    seen: set[tuple[int, float, float, float]] = set()

    def evaluate(params: ItemKNNParams) -> float:
        similarity = stage_item_similarity(data, splits, matrix, params)

        def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
            return item_similarity_scores(batch.histories, similarity)

        return mean_metric(rank, validation, V.SEGMENT_TRAINABLE, OBJECTIVE, ties)

    if optuna:
        study = _side_study(
            "item_knn", settings.item_knn, space, evaluate, settings, settings.item_knn_starts
        )
        progress(_study_line(study))
        assert isinstance(study.best, ItemKNNParams)
        return study.best, study

    def score(params: ItemKNNParams) -> float | None:
        # without session weight the gap changes nothing: fit each such point once
        gap = params.session_gap_hours if params.session_weight > 0 else 0.0
        key = (params.neighbours, params.shrinkage, params.session_weight, gap)
        if key in seen:
            return None
        seen.add(key)
        return evaluate(params)

    return _best_point(points, score, "item_knn", progress), None


def tune_popularity(
    data: ProcessedData,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> PopularityParams:
    """The popularity half-life with the best popularity-only validation NDCG@10 (all users)."""
    return search_popularity(data, validation, settings, ties, progress)[0]


def search_popularity(
    data: ProcessedData,
    validation: EvaluationSet,
    settings: TrainingSettings,
    ties: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[PopularityParams, StudyResult | None]:
    """The popularity half-life with the best popularity-only validation NDCG@10 (and the study).

    Popularity is taken as of each validation item's time (what serving sees "now"); on the Hasaki
    reviews a one-week half-life beats all-time counts by far (validation NDCG@10 0.181 vs 0.120);
    on data without trends all-time counts win and are kept. The search treats the half-life as
    continuous (log scale); the configured default (null: all-time counts) is always scored.
    """
    optuna = settings.tuning.method == "optuna"
    space = settings.popularity_search if optuna else {}
    points = [] if optuna else grid_points(settings.popularity, settings.popularity_grid)
    if (optuna and not space) or (not optuna and len(points) == 1):
        return settings.popularity, None
    events = stage_popularity(data, popularity_splits(V.STAGE_VALIDATION), settings.popularity)

    def score(params: PopularityParams) -> float:
        history = dataclasses.replace(events, half_life_days=params.half_life_days)

        def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
            served = history
            if batch.live_period_days is not None:  # tuning.protocol realistic, live popularity
                served = history.as_served(batch.live_period_days, batch.live_weight)
            return served.at(batch.request_times)

        return mean_metric(rank, validation, V.SEGMENT_UNKNOWN, OBJECTIVE, ties)

    if optuna:
        study = _side_study(
            "popularity", settings.popularity, space, score, settings, settings.popularity_starts
        )
        progress(_study_line(study))
        assert isinstance(study.best, PopularityParams)
        return study.best, study
    return _best_point(points, score, "popularity", progress), None


def _side_study(
    name: str,
    base: P,
    space: Mapping[str, Any],
    evaluate: Callable[[P], float],
    settings: TrainingSettings,
    starts: Sequence[Mapping[str, Any]] = (),
) -> StudyResult:
    """A study of a side signal (no intermediate values: nothing to prune)."""
    tuning = settings.tuning
    with threadpool_limits(1 if tuning.n_jobs > 1 else None):
        return run_study(
            name,
            base,
            dict(space),
            lambda params, _report: evaluate(params),
            tuning,
            settings.seed,
            tuning.side_trials,
            starts=starts,
        )


def _best_point(
    points: Sequence[P],
    score: Callable[[P], float | None],
    name: str,
    progress: Callable[[str], None],
) -> P:
    """The point with the best validation score (ties: the earlier one); None scores are skipped."""
    best: tuple[float, P] | None = None
    for params in grid_bar(points, f"{name} grid"):
        value = score(params)
        if value is None:
            continue
        progress(f"  {name} {params.model_dump()}: validation {OBJECTIVE} {value:.4f}")
        if best is None or value > best[0] + 1e-12:
            best = (value, params)
    assert best is not None
    return best[1]
