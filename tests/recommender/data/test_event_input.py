"""``prepare`` reads the event store: events become interactions, product records the catalogue."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.config import load_serving_settings, load_training_settings
from recommender.config.training import EventsInputSettings
from recommender.data import load_processed
from recommender.data.event_input import read_event_input
from recommender.data.preparation import prepare
from recommender.events import Event, ProductUpdate, SqliteEventStore

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
DAY = 86400.0


def _canonical(directory: Path) -> Path:
    directory.mkdir()
    pd.DataFrame(
        {
            V.PRODUCT_ID: ["a", "b", "c", "d"],
            V.NAME: ["Serum A", "Kem B", "Sữa rửa mặt C", "Toner D"],
            V.BRAND: ["x", "y", "x", "z"],
            V.PRICE: [100.0, 200.0, 300.0, 400.0],
        }
    ).to_csv(directory / "products.csv", index=False)
    stamp = [pd.Timestamp(T0 + k * DAY, unit="s").isoformat() for k in range(5)]
    pd.DataFrame(
        {
            V.USER_ID: ["u1", "u1", "u2", "u2", "u3"],
            V.PRODUCT_ID: ["a", "b", "a", "c", "d"],
            V.RATING: [5, 4, 5, 2, 5],
            V.TIMESTAMP: stamp,
        }
    ).to_csv(directory / "interactions.csv", index=False)
    return directory


def _event(eid: str, user: str, product: str, kind: str, day: float, rating: int | None = None):
    return Event(eid, user, product, kind, T0 + day * DAY, rating)  # type: ignore[arg-type]


@pytest.fixture()
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path) as store:
        store.append(
            [
                _event("e1", "u1", "a", "view", 10),  # after u1's 5-star a: keeps the 5
                _event("e2", "u3", "c", "purchase", 11),  # a new positive for u3
                _event("e3", "u9", "b", "view", 12),  # a new visitor: two views
                _event("e4", "u9", "d", "cart", 12.5),
                _event("e5", "u2", "c", "rating", 13, rating=5),  # a re-rating: latest wins
                _event("e6", "u3", "b", "remove_from_cart", 14),  # not an interaction
                _event("e7", "u3", "zz", "purchase", 15),  # unknown product: dropped, counted
                _event("e8", "u9", "new", "purchase", 16),  # the product created below
            ]
        )
        store.append([_event("e2", "u3", "c", "purchase", 11)])  # a retry: stored once
        store.append_products(
            [
                ProductUpdate("b", {V.PRICE: 150.0}, replace=False),
                ProductUpdate("d", {V.PRODUCT_AVAILABLE: False}, replace=False),
                ProductUpdate(
                    "new",
                    {
                        V.NAME: "Kem chống nắng mới",
                        V.BRAND: "x",
                        V.CATEGORY: "Kem chống nắng",
                        V.PRICE: 250.0,
                        V.SKIN_TYPES: ["oily"],
                        V.PRODUCT_AVAILABLE: True,
                    },
                    replace=True,
                ),
                ProductUpdate("b", {V.NAME: "Kem B mới"}, replace=False),  # folded onto the price
            ]
        )
    return path


def test_prepare_merges_events_and_product_records(tmp_path: Path, store_file: Path) -> None:
    with SqliteEventStore(store_file) as store:
        events = read_event_input(store, EventsInputSettings(), "test store")
    assert events.latest_seq == 12 and events.events_read == 8
    assert events.ignored_types == {"remove_from_cart": 1}
    stats = prepare("canonical", _canonical(tmp_path / "raw"), tmp_path / "out", events=events)
    data = load_processed(tmp_path / "out")
    rows = data.interactions.set_index([V.USER_ID, V.PRODUCT_ID])
    assert rows.loc[("u1", "a"), V.RATING] == 5.0  # a view never lowers the purchase's rating
    assert rows.loc[("u1", "a"), V.SOURCE] == "events:view"
    assert rows.loc[("u1", "a"), V.TIMESTAMP] == pd.Timestamp(T0 + 10 * DAY, unit="s")
    assert rows.loc[("u3", "c"), V.RATING] == 5.0 and rows.loc[("u3", "c"), V.IS_POSITIVE]
    assert rows.loc[("u2", "c"), V.RATING] == 5.0  # explicit re-rating replaces the 2 stars
    assert rows.loc[("u9", "b"), V.RATING] == 3.0 and not rows.loc[("u9", "b"), V.IS_POSITIVE]
    assert rows.loc[("u9", "d"), V.RATING] == 4.0 and rows.loc[("u9", "d"), V.WEIGHT] == 0.75
    assert rows.loc[("u9", "new"), V.WEIGHT] == 2.0  # purchase: weight 1 x the 5-star lift
    assert ("u3", "b") not in rows.index and ("u3", "zz") not in rows.index
    assert stats["dropped_rows"]["unknown_product"] == 1
    assert "u9" in data.trainable_user_ids  # three event rows with a positive
    products = data.products.set_index(V.PRODUCT_ID)
    assert data.item_ids == ["a", "b", "c", "d", "new"]
    assert products.loc["b", V.PRICE] == 150.0 and products.loc["b", V.NAME] == "Kem B mới"
    assert products[V.PRODUCT_AVAILABLE].to_dict() == {
        "a": True, "b": True, "c": True, "d": False, "new": True,
    }  # fmt: skip
    assert products.loc["new", V.CATEGORY] == "Kem chống nắng"
    assert list(products.loc["new", V.SKIN_TYPES]) == ["oily"]
    assert "Kem chống nắng mới" in products.loc["new", V.TEXT]
    assert stats["events"] == {
        "store": "test store",
        "latest_seq": 12,
        "events_read": 8,
        "interactions": 7,
        "ignored_types": {"remove_from_cart": 1},
        "product_records": 3,
        "products": {"added": 1, "updated": 2},
    }


def test_reading_the_same_store_twice_gives_the_same_data(tmp_path: Path, store_file: Path) -> None:
    raw = _canonical(tmp_path / "raw")
    versions = []
    for name in ("one", "two"):
        with SqliteEventStore(store_file) as store:
            events = read_event_input(store, EventsInputSettings(), "s")
        versions.append(prepare("canonical", raw, tmp_path / name, events=events)["data_version"])
    assert versions[0] == versions[1]
    plain = prepare("canonical", raw, tmp_path / "plain")
    assert plain["data_version"] != versions[0] and "events" not in plain
    assert V.PRODUCT_AVAILABLE not in load_processed(tmp_path / "plain").products


def test_the_event_mapping_is_configuration(tmp_path: Path, store_file: Path) -> None:
    settings = EventsInputSettings(ratings={"purchase": 5.0}, weights={"purchase": 3.0})
    with SqliteEventStore(store_file) as store:
        events = read_event_input(store, settings, "s")
    assert events.interactions[V.SOURCE].tolist() == ["events:purchase"] * 3
    assert events.interactions[V.WEIGHT].tolist() == [3.0] * 3
    assert events.ignored_types == {"view": 2, "cart": 1, "rating": 1, "remove_from_cart": 1}


def test_the_services_event_store_variables_do_not_reach_the_training_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RECSYS_* overrides apply to both settings files: the training section has its own name
    monkeypatch.setenv("RECSYS_EVENTS__BACKEND", "redis")
    monkeypatch.setenv("RECSYS_EVENT_INPUT__RATINGS__VIEW", "4")
    assert load_serving_settings().events.backend == "redis"
    assert load_training_settings().event_input.ratings["view"] == 4
