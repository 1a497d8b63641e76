"""``build --events`` reads the store; ``events compact --model-cutoff`` then deletes exactly what
the serving model contains; ``events stats`` counts what is left."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recommender import vocabulary as V
from recommender.cli import main
from recommender.commands.events import model_cutoff
from recommender.config.serving import EventsSettings, ServingSettings
from recommender.data import load_processed
from recommender.data.sources.demo import generate_demo
from recommender.events import (
    Event,
    EventRecord,
    ProductUpdate,
    SqliteEventStore,
    open_event_store,
    replay,
)
from recommender.registry import Registry
from recommender.serving import load_bundle
from tests.fixtures.models import fast_settings
from tests.fixtures.redis_server import RedisServer

BUILT_EVENTS = 30


def _quiet(argv: list[str]) -> tuple[int, str]:
    with (
        contextlib.redirect_stdout(io.StringIO()) as out,
        contextlib.redirect_stderr(io.StringIO()),
    ):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("events-build")
    config = base / "config"
    config.mkdir()
    (config / "training.yaml").write_text(yaml.safe_dump(fast_settings().model_dump()))
    raw = base / "raw"
    generate_demo(raw, users=1500, products=60, seed=5)
    interactions = pd.read_parquet(raw / "interactions.parquet")
    users = interactions[V.USER_ID].drop_duplicates().head(BUILT_EVENTS).tolist()
    products = pd.read_parquet(raw / "products.parquet")[V.PRODUCT_ID].tolist()
    start = interactions[V.TIMESTAMP].max().timestamp() + 60  # newer than every source row
    store_path = base / "events.sqlite3"
    with SqliteEventStore(store_path) as store:
        store.append(
            [
                Event(f"b{k}", users[k], products[k % len(products)], "purchase", start + k * 3600)
                for k in range(BUILT_EVENTS - 1)
            ]
        )
        store.append_products(
            [
                ProductUpdate(
                    "fresh",
                    {V.NAME: "Serum mới", V.BRAND: "x", V.CATEGORY: "Serum", V.PRICE: 99.0},
                    replace=True,
                ),
                ProductUpdate(products[0], {V.PRICE: 1.0}, replace=False),
            ]
        )
        store.append([Event("b-fresh", users[0], "fresh", "purchase", start + 7200)])
    paths = {
        "raw": raw,
        "processed": base / "processed",
        "registry": base / "cf",
        "store": store_path,
    }
    argv = [
        "build", "--source", "demo", "--input", str(raw), "--processed", str(paths["processed"]),
        "--registry", str(paths["registry"]), "--config-dir", str(config),
        "--events", str(store_path),
    ]  # fmt: skip
    code, out = _quiet(argv)
    assert code == 0, out[-2000:]
    assert f"event store up to seq {BUILT_EVENTS + 2}: {BUILT_EVENTS} interactions" in out
    return paths


def test_build_folds_the_event_store_into_the_data_and_records_its_cutoff(built) -> None:
    data = load_processed(built["processed"])
    from_events = data.interactions[data.interactions[V.SOURCE] == "events:purchase"]
    assert len(from_events) == BUILT_EVENTS
    assert "fresh" in data.item_ids
    products = data.products.set_index(V.PRODUCT_ID)
    assert products.loc["fresh", V.PRICE] == 99.0 and products.loc["fresh", V.PRODUCT_AVAILABLE]
    assert data.stats["events"]["latest_seq"] == BUILT_EVENTS + 2
    meta = Registry(built["registry"]).load().metadata
    assert meta["events_seq"] == BUILT_EVENTS + 2
    assert meta["data_cutoff"] == pytest.approx(data.interactions[V.TIMESTAMP].max().timestamp())
    assert meta["deployed_fit"] == "all" and meta["metrics"]["fit"] == "train+val"


def test_compaction_by_model_cutoff_removes_exactly_what_the_model_contains(built) -> None:
    meta = Registry(built["registry"]).load().metadata
    with SqliteEventStore(built["store"]) as store:
        store.append(
            [
                Event("late-new", "u-late", "fresh", "view", time.time() - 5),
                Event("late-at", "u-late", products_of(built)[1], "view", meta["data_cutoff"] + 1),
            ]
        )
        store.append_products([ProductUpdate("fresh", {V.PRICE: 80.0}, replace=False)])
    root = ["--events", str(built["store"])]
    code, out = _quiet(["events", "compact", "--model-cutoff", "--registry",
                        str(built["registry"]), *root])  # fmt: skip
    assert code == 0
    assert f"{BUILT_EVENTS} events before" in out
    assert "1 superseded product records" in out
    with SqliteEventStore(built["store"]) as store:
        left = list(replay(store))
    events = sorted(r.event.event_id for r in left if isinstance(r, EventRecord))
    assert events == ["late-at", "late-new"]
    products = {r.product_id: dict(r.fields) for r in left if not isinstance(r, EventRecord)}
    assert products["fresh"][V.PRICE] == 80.0 and products["fresh"][V.NAME] == "Serum mới"
    assert set(products) == {"fresh", load_processed(built["processed"]).item_ids[0]}
    # running it again deletes nothing more
    code, out = _quiet(["events", "compact", "--model-cutoff", "--registry",
                        str(built["registry"]), *root])  # fmt: skip
    assert code == 0 and "0 events before" in out

    code, out = _quiet(["events", "stats", *root])
    assert code == 0
    stats = json.loads(out)
    assert stats["events"] == 2 and stats["product_records"] == 2
    assert stats["latest_seq"] == BUILT_EVENTS + 5
    assert stats["events_by_type"] == {"view": 2}
    assert stats["oldest_event"] < stats["newest_event"]


def products_of(built: dict[str, Path]) -> list[str]:
    return load_processed(built["processed"]).item_ids


def test_a_backfill_the_model_never_saw_lowers_the_cutoff(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "s.sqlite3") as store:
        store.append([Event(f"e{k}", "u", "p", "view", 1000.0 * k) for k in range(1, 5)])
        # reached the store after a build that read seq <= 4, with a time older than its cut-off
        store.append([Event("backfill", "u", "q", "view", 2500.0)])
        before = model_cutoff(store, {"data_cutoff": 4000.0, "events_seq": 4})
        assert before == 2500.0
        assert store.compact(before).events_deleted == 2  # e1, e2; e3 and e4 wait for next time
        left = [r.event.event_id for r in replay(store) if isinstance(r, EventRecord)]
        assert left == ["e3", "e4", "backfill"]
        # a model built without the store contains no event: nothing is deleted
        assert store.compact(model_cutoff(store, {"data_cutoff": 9e9})).events_deleted == 0


def test_compact_before_and_bad_arguments(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.sqlite3"
    with SqliteEventStore(path) as store:
        store.append([Event("x", "u", "p", "view", 1000.0), Event("y", "u", "p", "view", 5000.0)])
    assert (
        main(["events", "compact", "--before", "1970-01-01T01:00:00Z", "--events", str(path)]) == 0
    )
    assert "1 events before 1970-01-01T01:00:00+00:00 deleted" in capsys.readouterr().out
    assert (
        main(["events", "compact", "--before", "1970-01-01T01:00:00", "--events", str(path)]) == 2
    )
    assert "UTC offset" in capsys.readouterr().err
    assert main(["events", "stats", "--events", str(tmp_path / "missing.sqlite3")]) == 2
    assert "no such SQLite event store file" in capsys.readouterr().err
    assert main(["events", "stats", "--events", "none"]) == 2
    assert "needs an event store" in capsys.readouterr().err


def test_serving_loads_the_model_built_with_events(built) -> None:
    settings = ServingSettings.model_validate(
        {
            "paths": {
                "processed_dir": str(built["processed"]),
                "registry_dir": str(built["registry"]),
            }
        }
    )
    bundle = load_bundle(settings)
    data = load_processed(built["processed"])
    assert "fresh" in data.item_ids
    assert bundle.info["n_trainable_users"] == len(data.trainable_user_ids)
    assert bundle.info["n_items"] == len(data.item_ids)
    # /model_info shows which fit the metrics describe
    assert bundle.info["metrics"]["fit"] == "train+val"
    assert bundle.info["metrics"]["deployed_fit"] == "all"


def test_a_redis_event_store_by_url(redis_server: RedisServer, tmp_path: Path) -> None:
    prefix = "recsys:{events-cli-test}:"
    (tmp_path / "serving_config.yaml").write_text(
        yaml.safe_dump({"events": {"redis_key_prefix": prefix}})
    )
    settings = EventsSettings(backend="redis", redis_url=redis_server.url, redis_key_prefix=prefix)
    with open_event_store(settings) as store:
        store.append([Event("r1", "u", "p", "cart", 1000.0), Event("r2", "u", "q", "view", 9000.0)])
        store.append_products([ProductUpdate("p", {V.PRICE: 5.0}, replace=False)])
    root = ["--events", redis_server.url, "--config-dir", str(tmp_path)]
    code, out = _quiet(["events", "stats", *root])
    assert code == 0
    stats = json.loads(out)
    assert (stats["events"], stats["product_records"], stats["latest_seq"]) == (2, 1, 3)
    assert stats["store"].startswith("redis ") and prefix in stats["store"]
    code, out = _quiet(["events", "compact", "--before", "1970-01-01T01:00:00+00:00", *root])
    assert code == 0 and "1 events before" in out
    with open_event_store(settings) as store:
        assert [r.seq for r in replay(store)] == [2, 3]
