"""Dedup, confidence weights, segments and the temporal split — by hand and on the prepared demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.data import load_processed
from recommender.data.split import assign_splits, confidence_weights, dedup_latest, popular_items


def _rows(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            V.USER_ID: [r[0] for r in rows],
            V.PRODUCT_ID: [r[1] for r in rows],
            V.RATING: [float(r[2]) for r in rows],
            V.TIMESTAMP: pd.to_datetime([r[3] for r in rows]),
            V.WEIGHT: 1.0,
            V.SOURCE: "test",
        }
    )


def test_dedup_keeps_the_latest_row_per_user_and_product() -> None:
    rows = _rows(
        ("a", "p1", 2, "2024-01-01"),
        ("a", "p1", 5, "2024-03-01"),
        ("a", "p1", 4, "2024-02-01"),
        ("b", "p1", 3, "2024-01-01"),
    )
    kept, removed = dedup_latest(rows)
    assert removed == 2
    assert sorted(zip(kept[V.USER_ID], kept[V.RATING], strict=True)) == [("a", 5.0), ("b", 3.0)]


def test_confidence_weight_formula() -> None:
    weights = confidence_weights(np.array([5, 4, 3, 1, 5]), np.array([1, 1, 1, 1, 2.0]), alpha=1.0)
    assert weights.tolist() == [2.0, 1.5, 1.0, 1.0, 4.0]
    assert confidence_weights(np.array([5.0]), np.array([1.0]), alpha=4.0).tolist() == [5.0]


def test_split_rules_by_hand() -> None:
    rows = _rows(
        ("a", "p1", 5, "2024-01-01"),
        ("a", "p2", 5, "2024-01-02"),
        ("a", "p3", 4, "2024-01-03"),
        ("b", "p1", 5, "2024-01-01"),
        ("b", "p2", 5, "2024-01-05"),
        ("c", "p1", 5, "2024-01-01"),
        ("d", "p1", 2, "2024-01-01"),
        ("d", "p2", 1, "2024-01-02"),
        ("e", "p1", 5, "2024-01-01"),
        ("e", "p3", 1, "2024-01-09"),
        ("e", "p2", 4, "2024-01-05"),
    )
    frame, trainable = assign_splits(rows, positive_threshold=4)
    assert trainable == ["a", "b", "e"]
    got = {
        (u, p): s
        for u, p, s in zip(frame[V.USER_ID], frame[V.PRODUCT_ID], frame[V.SPLIT], strict=True)
    }
    assert got == {
        ("a", "p1"): "train",
        ("a", "p2"): "val",
        ("a", "p3"): "test",
        # two interactions: test + train (a val would leave nothing to learn from)
        ("b", "p1"): "train",
        ("b", "p2"): "test",
        ("c", "p1"): "train",  # one interaction: cold
        ("d", "p1"): "train",
        ("d", "p2"): "train",  # no positive: cold
        # the latest *positive* is test even when a negative comes later
        ("e", "p1"): "val",
        ("e", "p2"): "test",
        ("e", "p3"): "train",
    }
    assert frame[V.IS_POSITIVE].tolist() == (frame[V.RATING] >= 4).tolist()


def test_popular_items_rank_by_positives_then_count() -> None:
    rows = _rows(
        ("a", "p1", 5, "2024-01-01"),
        ("b", "p1", 1, "2024-01-01"),
        ("c", "p2", 5, "2024-01-01"),
        ("d", "p2", 4, "2024-01-01"),
        ("e", "p3", 5, "2024-01-01"),
    )
    frame, _ = assign_splits(rows, 4)
    popular = popular_items(frame, ["p0", "p1", "p2", "p3"], top_k=2)
    assert popular == {
        "method": "positive_count",
        "items": [
            {V.PRODUCT_ID: "p2", "score": 2.0, "count": 2},
            {V.PRODUCT_ID: "p1", "score": 1.0, "count": 2},
        ],
    }


@pytest.fixture(scope="module")
def prepared(processed_dir: Path):  # type: ignore[no-untyped-def]
    return load_processed(processed_dir)


def test_each_trainable_user_has_one_test_row_its_latest_positive(prepared) -> None:  # type: ignore[no-untyped-def]
    inter = prepared.interactions
    trainable = set(prepared.trainable_user_ids)
    assert len(trainable) >= 300
    test = inter[inter[V.SPLIT] == V.SPLIT_TEST]
    assert test[V.USER_ID].is_unique and set(test[V.USER_ID]) == trainable
    assert test[V.IS_POSITIVE].all()
    latest_positive = (
        inter[inter[V.IS_POSITIVE] & inter[V.USER_ID].isin(trainable)]
        .groupby(V.USER_ID)[V.TIMESTAMP]
        .max()
    )
    test_time = test.set_index(V.USER_ID)[V.TIMESTAMP]
    assert (test_time.loc[latest_positive.index] == latest_positive).all()


def test_val_precedes_test_and_no_test_item_is_in_train(prepared) -> None:  # type: ignore[no-untyped-def]
    inter = prepared.interactions
    test = inter[inter[V.SPLIT] == V.SPLIT_TEST].set_index(V.USER_ID)
    val = inter[inter[V.SPLIT] == V.SPLIT_VAL].set_index(V.USER_ID)
    assert len(val) > 0 and val.index.is_unique and val[V.IS_POSITIVE].all()
    assert (val[V.TIMESTAMP] <= test.loc[val.index, V.TIMESTAMP]).all()
    train = inter[inter[V.SPLIT] == V.SPLIT_TRAIN]
    train_pairs = set(zip(train[V.USER_ID], train[V.PRODUCT_ID], strict=True))
    assert not any(
        (u, p) in train_pairs for u, p in zip(test.index, test[V.PRODUCT_ID], strict=True)
    )
    assert not inter.duplicated([V.USER_ID, V.PRODUCT_ID]).any()
    # every trainable user keeps at least one train row
    assert set(prepared.trainable_user_ids) <= set(train[V.USER_ID])


def test_cold_users_are_train_only(prepared) -> None:  # type: ignore[no-untyped-def]
    inter = prepared.interactions
    cold = inter[~inter[V.USER_ID].isin(set(prepared.trainable_user_ids))]
    assert (cold[V.SPLIT] == V.SPLIT_TRAIN).all()
    sizes = cold.groupby(V.USER_ID).size()
    positives = cold.groupby(V.USER_ID)[V.IS_POSITIVE].sum()
    assert ((sizes == 1) | (positives == 0)).all()
