"""The plain TF-IDF reference row: its weighting, profile, item universe and ranker."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.data.processed import load_processed
from recommender.evaluation.content_reference import (
    content_ranker,
    interacted_items,
    plain_tfidf,
    profile_cosine,
)
from recommender.evaluation.protocol import EvaluationSet
from recommender.scoring.signals import content_scores, recency_weights


def test_plain_tfidf_is_raw_tf_times_smoothed_idf_with_unit_rows() -> None:
    x = plain_tfidf(["aa bb", "aa", "cc"]).toarray()  # features: aa, bb, cc
    idf_aa, idf_once = math.log(4 / 3) + 1, math.log(4 / 2) + 1  # ln((1+n)/(1+df)) + 1, n = 3
    norm = math.hypot(idf_aa, idf_once)
    expected = [[idf_aa / norm, idf_once / norm, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(x, expected, rtol=1e-12)
    assert x[0, 0] == pytest.approx(0.605349, abs=1e-6)


def test_plain_tfidf_sublinear_uses_one_plus_log_count() -> None:
    x = plain_tfidf(["aa aa aa bb", "bb", "cc"], sublinear_tf=True).toarray()
    tf_aa, idf_aa, idf_bb = 1 + math.log(3), math.log(4 / 2) + 1, math.log(4 / 3) + 1
    norm = math.hypot(tf_aa * idf_aa, idf_bb)
    np.testing.assert_allclose(x[0], [tf_aa * idf_aa / norm, idf_bb / norm, 0.0], rtol=1e-12)


ROWS = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])  # row 2 is [0.7071, 0.7071] once normalised


def test_profile_is_the_mean_of_unit_history_rows_and_scores_are_cosines() -> None:
    histories = [np.array([0, 1]), np.array([0, 0]), np.array([], dtype=np.int64)]
    scores = profile_cosine(histories, ROWS)
    half = math.sqrt(0.5)
    np.testing.assert_allclose(
        scores, [[half, half, 1.0], [1.0, 0.0, half], [0.0, 0.0, 0.0]], atol=1e-7
    )
    assert scores.dtype == np.float32


def test_recency_weights_the_profile_towards_the_newest_item() -> None:
    histories = [np.array([0, 1])]  # item 1 is the newest: weights [0.5, 1]
    scores = profile_cosine(histories, ROWS, recency_weights(histories, 0.5))
    length = math.hypot(0.5, 1.0)
    expected = [0.5 / length, 1.0 / length, 1.5 / length / math.sqrt(2)]
    np.testing.assert_allclose(scores[0], expected, atol=1e-7)
    assert scores[0].tolist() == pytest.approx([0.447214, 0.894427, 0.948683], abs=1e-6)


def test_profile_cosine_of_unit_rows_is_the_served_content_signal() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(30, 8)).astype(np.float32)
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    histories = [rng.choice(30, size=k) for k in (1, 2, 5, 7)]
    weights = recency_weights(histories, 0.7)
    np.testing.assert_allclose(
        profile_cosine(histories, rows, weights),
        content_scores(histories, unit, weights),
        atol=1e-5,
    )


def _batch(histories: list[np.ndarray], n_items: int) -> EvaluationSet:
    b = len(histories)
    return EvaluationSet(
        stage=V.STAGE_TEST,
        user_ids=[str(k) for k in range(b)],
        targets=[np.array([0])] * b,
        histories=histories,
        weights=[np.ones(len(h)) for h in histories],
        seen=histories,
        cf_rows=np.zeros(b, dtype=np.int64),
        n_items=n_items,
        request_times=np.zeros(b, dtype=np.int64),
    )


def test_content_ranker_ranks_items_outside_the_universe_last() -> None:
    universe = np.array([True, False, True])
    rank = content_ranker(ROWS, universe=universe)
    scores = rank(_batch([np.array([1])], 3), V.SEGMENT_COLD)
    assert scores is not None
    np.testing.assert_allclose(scores, [[0.0, -2.0, math.sqrt(0.5)]], atol=1e-7)
    assert rank(_batch([np.array([1])], 3), V.SEGMENT_UNKNOWN) is None


def test_interacted_items_are_those_of_the_history_splits(processed_dir: Path) -> None:
    data = load_processed(processed_dir)
    frame = data.interactions
    history = frame.loc[frame[V.SPLIT].isin([V.SPLIT_TRAIN, V.SPLIT_VAL]), V.PRODUCT_ID]
    expected = np.isin(np.asarray(data.item_ids), history.astype(str).unique())
    got = interacted_items(data, V.STAGE_TEST)
    np.testing.assert_array_equal(got, expected)
    train_only = frame.loc[frame[V.SPLIT] == V.SPLIT_TRAIN, V.PRODUCT_ID].astype(str).unique()
    np.testing.assert_array_equal(
        interacted_items(data, V.STAGE_VALIDATION), np.isin(np.asarray(data.item_ids), train_only)
    )
