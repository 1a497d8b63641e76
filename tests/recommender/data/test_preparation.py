"""prepare(): the processed file contract, data_stats.json, versioning, bad-row accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.config.training import DataSettings
from recommender.data import load_processed, prepare
from recommender.data.processed import parquet_data_version


def _write_canonical(
    directory: Path, interactions: list[dict], products: list[dict] | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    products = products or [
        {"product_id": "p1", "name": "Sữa Rửa Mặt CeraVe 236ml", "skin_types": "da dầu|da mụn"},
        {
            "product_id": "p2",
            "name": "Kem Chống Nắng Anessa 60ml",
            "skin_types": "da khô, da thường",
        },
        {"product_id": "p3", "name": "Serum Klairs Vitamin C 35ml", "skin_types": ""},
    ]
    pd.DataFrame(products).to_csv(directory / "products.csv", index=False)
    pd.DataFrame(interactions).to_csv(directory / "interactions.csv", index=False)
    return directory


def test_processed_files_follow_the_contract(processed_dir: Path) -> None:
    data = load_processed(processed_dir)
    stats = json.loads((processed_dir / V.DATA_STATS_FILE).read_text(encoding="utf-8"))
    assert len(data.data_version) == 16
    for name in (V.PRODUCTS_FILE, V.INTERACTIONS_FILE):
        assert parquet_data_version(processed_dir / name) == data.data_version
    assert list(data.products.columns) == list(V.PRODUCT_COLUMNS)
    assert list(data.interactions.columns) == list(V.PROCESSED_INTERACTION_COLUMNS)
    assert len(data.products) == 120 and data.products[V.TEXT].str.len().min() > 50
    assert set(data.interactions[V.PRODUCT_ID]) <= set(data.item_ids)
    assert data.user_ids == sorted(data.interactions[V.USER_ID].unique())
    assert data.trainable_user_ids == sorted(data.trainable_user_ids)
    assert stats["n_interactions"] == len(data.interactions)
    assert stats["n_users"] == len(data.user_ids)
    assert stats["trainable_users"] == len(data.trainable_user_ids)
    assert stats["trainable_share"] == round(len(data.trainable_user_ids) / len(data.user_ids), 4)
    assert sum(stats["rating_distribution"].values()) == len(data.interactions)
    assert sum(stats["interactions_per_user"]["histogram"].values()) == stats["n_users"]
    assert stats["split_counts"]["test"] == stats["trainable_users"]
    assert stats["dropped_rows"] == {} and stats["dropped_total"] == 0
    assert 0.88 < stats["single_interaction_share"] < 0.94
    popular = data.popular
    assert len(popular) == 120 and popular[0]["score"] >= popular[-1]["score"]
    weights = data.interactions[V.WEIGHT]
    assert weights[data.interactions[V.RATING] == 5].eq(2.0).all()


def test_same_input_same_version_and_settings_change_it(raw_demo_dir: Path, tmp_path: Path) -> None:
    a = prepare("demo", raw_demo_dir, tmp_path / "a", DataSettings())
    b = prepare("demo", raw_demo_dir, tmp_path / "b", DataSettings())
    c = prepare("demo", raw_demo_dir, tmp_path / "c", DataSettings(positive_threshold=5))
    assert a["data_version"] == b["data_version"] != c["data_version"]
    assert c["positive_share"] < a["positive_share"]


def test_rerun_keeps_embeddings_folder_and_replaces_files(
    raw_demo_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "processed"
    prepare("demo", raw_demo_dir, out)
    embeddings = out / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    embeddings.parent.mkdir()
    embeddings.write_bytes(b"stale but kept")
    stats = prepare("demo", raw_demo_dir, out, DataSettings(popular_top_k=5))
    assert embeddings.read_bytes() == b"stale but kept"
    assert sorted(p.name for p in out.iterdir()) == sorted([*V.PROCESSED_FILES, V.EMBEDDINGS_DIR])
    assert len(load_processed(out).popular) == 5 and stats["settings"]["popular_top_k"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["processed"]  # no staging leftovers


def test_bad_rows_are_dropped_and_counted_per_reason(tmp_path: Path) -> None:
    good = {"user_id": "u1", "product_id": "p1", "rating": 5, "timestamp": "2024-01-01 10:00:00"}
    rows = [
        good,
        {**good, "product_id": "p2", "timestamp": "2024-01-02T10:00:00"},
        {**good, "product_id": "p3", "rating": 0},  # out of range
        {**good, "user_id": "u2", "rating": 6},  # out of range
        {**good, "user_id": "u3", "rating": "five"},  # unparseable rating
        {**good, "user_id": None},  # missing id
        {**good, "user_id": "u4", "timestamp": "31/02/2024"},  # unparseable timestamp
        {**good, "user_id": "u5", "product_id": "p9"},  # not in the catalogue
        {**good, "timestamp": "2023-12-01 00:00:00", "rating": 1},  # older duplicate of (u1, p1)
        {**good, "user_id": "u6", "product_id": "p3", "rating": 4},
    ]
    stats = prepare("canonical", _write_canonical(tmp_path / "raw", rows), tmp_path / "out")
    assert stats["dropped_rows"] == {
        "missing_id": 1,
        "rating_out_of_range": 2,
        "unknown_product": 1,
        "unparseable_rating": 1,
        "unparseable_timestamp": 1,
    }
    assert stats["dropped_total"] == 6
    assert stats["duplicates_removed"] == 1
    data = load_processed(tmp_path / "out")
    assert sorted(
        zip(data.interactions[V.USER_ID], data.interactions[V.PRODUCT_ID], strict=True)
    ) == [
        ("u1", "p1"),
        ("u1", "p2"),
        ("u6", "p3"),
    ]
    kept = data.interactions.set_index([V.USER_ID, V.PRODUCT_ID])
    assert kept.loc[("u1", "p1"), V.RATING] == 5.0  # the latest of the duplicates
    assert data.trainable_user_ids == ["u1"]
    skin = dict(
        zip(data.products[V.PRODUCT_ID], data.products[V.SKIN_TYPES].map(list), strict=True)
    )
    assert skin == {"p1": ["da dầu", "da mụn"], "p2": ["da khô", "da thường"], "p3": []}


def test_catalogue_products_without_interactions_stay(tmp_path: Path) -> None:
    rows = [{"user_id": "u1", "product_id": "p1", "rating": 5, "timestamp": 1_700_000_000}]
    stats = prepare("canonical", _write_canonical(tmp_path / "raw", rows), tmp_path / "out")
    data = load_processed(tmp_path / "out")
    assert data.item_ids == ["p1", "p2", "p3"]
    assert stats["n_products_with_interactions"] == 1 and stats["trainable_users"] == 0
    assert data.interactions[V.TIMESTAMP].iloc[0] == pd.Timestamp("2023-11-14 22:13:20")


@pytest.mark.parametrize("threshold", [4.0, 5.0])
def test_positive_threshold_is_applied(
    processed_dir: Path, threshold: float, tmp_path: Path
) -> None:
    data = load_processed(processed_dir)
    assert (
        data.interactions[V.IS_POSITIVE].tolist() == (data.interactions[V.RATING] >= 4.0).tolist()
    )
    rows = [
        {"user_id": "u1", "product_id": "p1", "rating": 4, "timestamp": "2024-01-01"},
        {"user_id": "u1", "product_id": "p2", "rating": 5, "timestamp": "2024-01-02"},
    ]
    prepare(
        "canonical",
        _write_canonical(tmp_path / "raw", rows),
        tmp_path / "out",
        DataSettings(positive_threshold=threshold),
    )
    out = load_processed(tmp_path / "out").interactions
    assert out[V.IS_POSITIVE].tolist() == [4.0 >= threshold, True]
