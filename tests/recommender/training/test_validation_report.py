"""The realistic validation report: the served hybrid and popularity on validation, per segment
and on the later slice, under the headline protocol; the live stream under tuning.protocol."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams, PopularityParams, TrainingSettings
from recommender.data.processed import ProcessedData
from recommender.evaluation.evaluator import per_user_metric, tie_order
from recommender.evaluation.protocol import SLICE_LATER, build_evaluation_set, realistic_view
from recommender.evaluation.rankers import signal_ranker
from recommender.evaluation.side_signals import scoring_model, stage_signals
from recommender.scoring import HybridConfig
from recommender.training.hybrid_tuning import cold_tuning_set
from recommender.training.live_validation import live_stream
from recommender.training.pipeline import run_training, tuning_protocol_stream
from recommender.training.promotion import validation_per_user
from recommender.training.validation_report import realistic_validation
from tests.fixtures.models import POPULARITY_ONLY, fast_settings


def _realistic(settings: TrainingSettings) -> TrainingSettings:
    tuning = settings.tuning.model_copy(update={"protocol": "realistic"})
    return settings.model_copy(update={"tuning": tuning})


def test_popularity_alone_is_level_with_popularity_and_scored_as_of_the_rebuild(
    trending: ProcessedData,
) -> None:
    settings = fast_settings()
    side = stage_signals(trending, V.STAGE_VALIDATION, ItemKNNParams(), None, PopularityParams())
    model = scoring_model(None, side)
    users = build_evaluation_set(trending, V.STAGE_VALIDATION)
    users = dataclasses.replace(users, request_times=users.request_times + 20 * 3600)
    ties = tie_order(users.n_items, 0)
    config = HybridConfig(weights=POPULARITY_ONLY)
    report = realistic_validation(
        [(model, None, users)], config, settings.evaluation, "last_item", ties
    )
    assert set(report) == {V.SEGMENT_TRAINABLE, V.SEGMENT_COLD}
    for body in report.values():
        assert body["hybrid"] == body["popularity"]
        assert body["later"]["gain"] == 0.0 and body["later"]["z"] is None
        assert 0 < body["later"]["users"] < body["users"]
    # trainable: popularity as of the day's rebuild, not as of the request (the exact protocol)
    trainable = users.subset(users.segment_indices(V.SEGMENT_TRAINABLE))
    ranker = signal_ranker(model, V.SIGNAL_POPULARITY)
    ev = settings.evaluation
    view = realistic_view(trainable, ev.rebuild_period_days, False, ev.live_event_weight)
    frozen = per_user_metric(ranker, view, V.SEGMENT_TRAINABLE, "ndcg@10", ties)
    exact = per_user_metric(ranker, trainable, V.SEGMENT_TRAINABLE, "ndcg@10", ties)
    assert report[V.SEGMENT_TRAINABLE]["popularity"] == round(float(frozen.mean()), 6)
    assert abs(float(exact.mean()) - float(frozen.mean())) > 1e-3  # the protocols differ here
    later = view.slice_indices(SLICE_LATER, ev.same_session_hours)
    assert report[V.SEGMENT_TRAINABLE]["later"]["users"] == later.size
    # cold: every user cut to its newest item (hybrid.cold_population last_item)
    cold = cold_tuning_set(users, "last_item")
    assert report[V.SEGMENT_COLD]["users"] == cold.segment_indices(V.SEGMENT_COLD).size
    # promotion's per-user values of the same folds stand in for the trainable hybrid's ranking
    folds = [(model, None, users)]
    values = validation_per_user(folds, config, ev, ties)
    assert realistic_validation(folds, config, ev, "last_item", ties, values) == report
    with pytest.raises(ValueError, match="hybrid values"):
        realistic_validation(folds, config, ev, "last_item", ties, values[1:])


def test_the_build_stores_the_report_and_its_trainable_value_is_promotions(
    trending: ProcessedData,
) -> None:
    run = run_training(trending, fast_settings(), (V.MODEL_ALS,), embeddings=False)
    model = run.models[V.MODEL_ALS]
    report = model.validation["realistic"]
    assert model.promotion_values is not None
    trainable = report[V.SEGMENT_TRAINABLE]
    # the same folds, hybrid and protocol as promotion: the same per-user values
    assert trainable["users"] == model.promotion_values.size
    assert trainable["hybrid"] == round(float(model.promotion_values.mean()), 6)
    assert report[V.SEGMENT_COLD]["users"] > 0


def test_the_live_stream_takes_the_tuning_protocol(trending: ProcessedData) -> None:
    stream = live_stream(trending, 0.3)
    assert stream is not None
    # the synthetic interactions fall on midnights: move the events into the day
    shifted = dataclasses.replace(
        stream.events, request_times=stream.events.request_times + 5 * 3600
    )
    stream = dataclasses.replace(stream, events=shifted)
    exact = fast_settings()
    assert tuning_protocol_stream(stream, exact) is not None
    np.testing.assert_array_equal(
        tuning_protocol_stream(stream, exact).events.request_times, stream.events.request_times
    )
    moved = tuning_protocol_stream(stream, _realistic(exact))
    assert moved is not None
    day = 86_400
    np.testing.assert_array_equal(
        moved.events.request_times, stream.events.request_times // day * day
    )
    assert (moved.events.request_times < stream.events.request_times).all()
    assert moved.events.user_ids == stream.events.user_ids and moved.cutoff == stream.cutoff
    assert tuning_protocol_stream(None, exact) is None
