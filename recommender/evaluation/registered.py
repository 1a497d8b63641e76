"""Re-evaluate a registered model on the test stage of the processed data it was trained on."""

from __future__ import annotations

from typing import Any

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams, PopularityParams, TrainingSettings
from recommender.data.processed import ProcessedData
from recommender.evaluation.evaluator import Ranker, evaluate_protocols
from recommender.evaluation.protocol import (
    PROTOCOL_EXACT,
    PROTOCOL_REALISTIC,
    build_evaluation_set,
    sample_users,
)
from recommender.evaluation.rankers import (
    baseline_rankers,
    best_single_candidates,
    hybrid_ranker,
    signal_ranker,
)
from recommender.evaluation.report import build_report
from recommender.evaluation.side_signals import (
    load_aligned_embeddings,
    stage_signals,
    stale_model,
)
from recommender.registry import LoadedModel
from recommender.scoring import HybridConfig, Refold, ScoringModel
from recommender.scoring.candidates import build_search


def served_model(data: ProcessedData, loaded: LoadedModel) -> tuple[ScoringModel, HybridConfig]:
    """The test-stage :class:`ScoringModel` of ``loaded`` and its stored hybrid config."""
    meta = loaded.metadata
    item_knn = ItemKNNParams.model_validate(meta.get("item_knn") or {})
    popularity = PopularityParams.model_validate(meta.get("popularity") or {})
    side = stage_signals(data, V.STAGE_TEST, item_knn, load_aligned_embeddings(data), popularity)
    model = ScoringModel.build(
        item_factors=loaded.item_factors,
        user_factors=loaded.user_factors,
        fold_in_regularization=float(meta.get("fold_in_regularization", 1.0)),
        item_similarity=side.item_similarity,
        embeddings=side.embeddings,
        popularity=side.popularity,
        quality=side.quality,
        popularity_history=side.popularity_history,
        item_item=loaded.item_item,
        refold=Refold.from_dict(meta.get("refold")),
    )
    return model, HybridConfig.from_dict(meta.get("hybrid"))


def evaluate_registered(
    data: ProcessedData, loaded: LoadedModel, settings: TrainingSettings
) -> dict[str, Any]:
    """Full table (baselines, the model's CF row, its hybrid) on test, as ``train`` reported it."""
    model, hybrid = served_model(data, loaded)
    rankers: dict[str, Ranker] = dict(baseline_rankers(model, settings.seed))
    rankers[loaded.record.model_type] = signal_ranker(model, V.SIGNAL_CF)
    gated = hybrid.stale_after_hours is not None
    half_life = hybrid.stale_popularity_half_life_days
    stale = stale_model(model, data, V.STAGE_TEST, half_life) if gated else None
    search = build_search(model, settings.evaluation.candidates)  # ranks as served
    rankers[V.ROW_HYBRID] = hybrid_ranker(model, hybrid, stale, search)
    ev = settings.evaluation
    test = sample_users(build_evaluation_set(data, V.STAGE_TEST), ev.max_users, ev.seed)
    tables = evaluate_protocols(
        rankers, test, V.SEGMENTS, ev, model.embeddings, best_single_candidates(list(rankers))
    )
    return build_report(
        tables[PROTOCOL_REALISTIC],
        stage=V.STAGE_TEST,
        data_version=data.data_version,
        embedding_version=loaded.record.embedding_version,
        ks=ev.ks,
        bootstrap_samples=ev.bootstrap_samples,
        extra={
            "model_id": loaded.record.model_id,
            "model_type": loaded.record.model_type,
            "hybrid": hybrid.to_dict(),
        },
        exact_table=tables[PROTOCOL_EXACT],
        rebuild_period_days=ev.rebuild_period_days,
        live_popularity=ev.live_popularity,
        live_event_weight=ev.live_event_weight,
        same_session_hours=ev.same_session_hours,
    )
