"""The live validation: a time cut inside train + val decides live_fold_in and popularity shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.processed import ProcessedData
from recommender.registry import Registry
from recommender.scoring import HybridConfig
from recommender.training.live_validation import (
    choose_fold_in,
    choose_popularity_floor,
    live_stream,
    toward_popularity,
)
from recommender.training.pipeline import run_training
from recommender.training.publish import register_run
from tests.fixtures.models import fast_settings


def test_fold_in_is_chosen_only_when_it_beats_the_stored_row() -> None:
    assert choose_fold_in(np.array([0.2, 0.4]), np.array([0.3, 0.4])) is True
    assert choose_fold_in(np.array([0.3, 0.4]), np.array([0.2, 0.4])) is False
    assert choose_fold_in(np.array([0.3, 0.4]), np.array([0.4, 0.3])) is False  # tie: stored row
    assert choose_fold_in(np.zeros(0), np.zeros(0)) is None  # nothing to decide on


def test_popularity_share_needs_a_significant_paired_gain() -> None:
    base = np.array([0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5])
    clear = base + 0.25  # the same gain on every event: zero spread, significant
    noisy = base + np.array([0.9, -0.4, 0.9, -0.4, 0.9, -0.4, 0.9, -0.4])  # +0.25 on average
    assert choose_popularity_floor({0.0: base, 0.5: clear}, min_z=2.0) == 0.5
    assert choose_popularity_floor({0.0: base, 0.5: noisy}, min_z=2.0) == 0.0
    assert choose_popularity_floor({0.0: base, 0.5: noisy}, min_z=0.0) == 0.5
    # the best significant share wins; a worse one does not
    assert choose_popularity_floor({0.0: base, 0.2: base + 0.1, 1.0: clear}, 2.0) == 1.0
    assert choose_popularity_floor({0.0: base, 0.2: clear, 1.0: base - 0.1}, 2.0) == 0.2


def test_weights_move_toward_the_popularity_vertex() -> None:
    moved = toward_popularity({V.SIGNAL_CF: 0.8, V.SIGNAL_POPULARITY: 0.2}, 0.5)
    assert moved == {V.SIGNAL_CF: 0.4, V.SIGNAL_POPULARITY: 0.6}
    assert toward_popularity({V.SIGNAL_ITEM_SIMILARITY: 1.0}, 1.0) == {V.SIGNAL_POPULARITY: 1.0}
    assert toward_popularity({V.SIGNAL_CF: 1.0}, 0.0) == {V.SIGNAL_CF: 1.0}


def _tiny() -> ProcessedData:
    """Four users over five days; u1/u2/u4 have a CF row, u3 does not; u4 has a single
    interaction before the cut, so a model built then would not have their row."""
    day = pd.Timestamp("2024-01-01")
    rows = [  # user, item, rating, day, split
        ("u1", "p0", 5, 0, V.SPLIT_TRAIN),
        ("u2", "p1", 5, 0, V.SPLIT_TRAIN),
        ("u1", "p1", 5, 1, V.SPLIT_TRAIN),
        ("u2", "p2", 2, 1, V.SPLIT_TRAIN),
        ("u3", "p3", 5, 2, V.SPLIT_TRAIN),
        ("u4", "p4", 5, 2, V.SPLIT_TRAIN),
        ("u4", "p1", 5, 3, V.SPLIT_VAL),  # streamed: u4 cold at T' (one interaction before)
        ("u1", "p2", 5, 3, V.SPLIT_VAL),  # streamed: u1 trainable, no live positive yet
        ("u3", "p0", 5, 3, V.SPLIT_TRAIN),  # streamed: u3 cold (no CF row)
        ("u2", "p2", 5, 4, V.SPLIT_VAL),  # u2 already saw p2 (a repeat): not scored
        ("u1", "p3", 5, 4, V.SPLIT_VAL),  # streamed: u1 now has one live positive (p2)
        ("u1", "p4", 5, 5, V.SPLIT_TEST),  # test rows never enter the live validation
    ]
    frame = pd.DataFrame(
        [(u, p, r, day + pd.Timedelta(days=d), s) for u, p, r, d, s in rows],
        columns=[V.USER_ID, V.PRODUCT_ID, V.RATING, V.TIMESTAMP, V.SPLIT],
    )
    frame[V.IS_POSITIVE] = frame[V.RATING] >= 4
    frame[V.WEIGHT] = 1.0
    items = [f"p{i}" for i in range(5)]
    return ProcessedData(
        directory=Path("/nonexistent"),
        data_version="tiny",
        products=pd.DataFrame({V.PRODUCT_ID: items}),
        interactions=frame,
        item_ids=items,
        user_ids=["u1", "u2", "u3", "u4"],
        trainable_user_ids=["u1", "u2", "u4"],
        popular=[],
        stats={},
    )


def test_the_stream_is_train_and_val_after_the_time_cut() -> None:
    data = _tiny()
    stream = live_stream(data, 0.4)  # 11 train+val rows: the 0.6 quantile is day 3
    assert stream is not None
    assert stream.cutoff == pd.Timestamp("2024-01-04").timestamp()
    assert set(stream.before.interactions[V.SPLIT]) == {V.SPLIT_TRAIN}
    assert len(stream.before.interactions) == 6
    events = stream.events
    assert events.user_ids == ["u4", "u1", "u3", "u1"]  # time order, ties in row order
    assert [t.tolist() for t in events.targets] == [[1], [2], [0], [3]]
    assert [h.tolist() for h in events.histories] == [[4], [0, 1], [3], [0, 1, 2]]
    assert [s.tolist() for s in events.seen] == [[4], [0, 1], [3], [0, 1, 2]]
    assert events.cf_rows.tolist() == [-1, 0, -1, 0]
    assert stream.live_counts.tolist() == [0, 0, 0, 1]
    day = 86400
    start = int(pd.Timestamp("2024-01-01").timestamp())
    assert events.request_times.tolist() == [start + 3 * day] * 3 + [start + 4 * day]
    assert live_stream(data, 0.0) is None


def test_the_build_records_its_live_choice_and_serves_those_weights(
    trending: ProcessedData, tmp_path: Path
) -> None:
    settings = fast_settings()
    run = run_training(trending, settings, (V.MODEL_ALS,), embeddings=False)
    model = run.models[V.MODEL_ALS]
    live = model.validation["live"]
    fold = live["fold_in"]
    assert live["events"] > 0 and fold["events"] > 0
    expected = fold["fold_in_ndcg@10"] > fold["stored_row_ndcg@10"]
    assert model.live_fold_in is expected and fold["live_fold_in"] is expected
    tuned = HybridConfig.from_dict(model.validation["hybrid_before_live"])
    for segment in (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD):
        share = live[segment]["popularity_share"]
        assert model.hybrid.for_segment(segment) == toward_popularity(
            tuned.for_segment(segment), share
        ) or (share == 0.0 and model.hybrid.for_segment(segment) == tuned.for_segment(segment))
    record = register_run(Registry(tmp_path / "cf"), run, settings)[V.MODEL_ALS]
    loaded = Registry(tmp_path / "cf").load(record.model_id)
    assert loaded.metadata["live_fold_in"] is expected
    assert loaded.metadata["validation"]["live"]["fold_in"] == fold
    # the refold: ALS's user step with the boost live validation chose, recorded and served
    params = model.factors.params
    assert model.refold is not None and loaded.metadata["refold"] == fold["refold"]
    assert fold["refold"] == {
        "regularization": params.regularization,
        "alpha": params.alpha,
        "newest_boost": model.refold.newest_boost,
    }
    best = max(fold["refold_ndcg@10"].values())
    assert fold["refold_ndcg@10"][str(model.refold.newest_boost)] == best
    assert fold["fold_in_ndcg@10"] == best >= fold["cold_fold_in_ndcg@10"]
    assert set(fold["refold_ndcg@10"]) == {"1.0", "2.0", "4.0"}


def test_live_fraction_zero_turns_the_live_validation_off(trending: ProcessedData) -> None:
    settings = fast_settings()
    off = settings.model_copy(
        update={"hybrid": settings.hybrid.model_copy(update={"live_fraction": 0.0})}
    )
    model = run_training(trending, off, (V.MODEL_ALS,), embeddings=False).models[V.MODEL_ALS]
    assert model.live_fold_in is None and model.validation["live"] == {"events": 0}
    assert model.hybrid.to_dict() == model.validation["hybrid_before_live"]


def test_the_refold_is_chosen_among_als_user_steps_first_wins_ties() -> None:
    from recommender.config.training import ALSParams, BPRParams
    from recommender.scoring import Refold
    from recommender.training.live_validation import choose_refold, refold_candidates

    als = ALSParams(factors=8, regularization=0.5, alpha=3.0, iterations=5)
    candidates = refold_candidates(V.MODEL_ALS, als, [1.0, 2.0])
    assert candidates == [Refold(0.5, 3.0, 1.0), Refold(0.5, 3.0, 2.0)]
    assert refold_candidates(V.MODEL_BPR, BPRParams(), [1.0, 2.0]) == []
    tie = [(candidates[0], np.array([0.2, 0.4])), (candidates[1], np.array([0.4, 0.2]))]
    assert choose_refold([*tie, (None, np.array([0.3, 0.3]))])[0] == candidates[0]
    better = [*tie, (None, np.array([0.5, 0.3]))]
    assert choose_refold(better)[0] is None
