"""The shipped ``events:`` settings load, the backend is chosen by config or environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.config.loader import load_serving_settings
from recommender.errors import ConfigError
from recommender.events import SqliteEventStore, open_event_store
from recommender.events.redis_store import RedisEventStore
from scripts._server import REPO
from tests.fixtures.redis_server import RedisServer


def test_the_shipped_config_selects_sqlite_under_data() -> None:
    events = load_serving_settings(REPO / "config", environ={}).events
    assert (events.backend, events.sqlite_path, events.sqlite_synchronous) == (
        "sqlite",
        "data/events.sqlite3",
        "FULL",
    )
    weights = events.popularity_weights
    assert weights.purchase > weights.cart > weights.view > 0
    assert (events.max_batch, events.clock_skew_seconds) == (500, 300.0)


def test_the_backend_and_url_can_be_switched_by_environment(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    environ = {"RECSYS_EVENTS__BACKEND": "redis", "RECSYS_EVENTS__REDIS_URL": redis_server.url}
    events = load_serving_settings(REPO / "config", environ=environ).events
    store = open_event_store(events)
    assert isinstance(store, RedisEventStore) and store.health().ok
    store.close()
    sqlite = load_serving_settings(REPO / "config", environ={}).events
    store = open_event_store(sqlite, base_dir=tmp_path)
    assert isinstance(store, SqliteEventStore) and store.path == tmp_path / "data/events.sqlite3"
    store.close()


def test_an_unknown_backend_or_key_fails_at_startup() -> None:
    with pytest.raises(ConfigError, match="events.backend"):
        load_serving_settings(REPO / "config", environ={"RECSYS_EVENTS__BACKEND": "kafka"})
    with pytest.raises(ConfigError, match="unknown key 'events.bakend'"):
        load_serving_settings(REPO / "config", environ={"RECSYS_EVENTS__BAKEND": "redis"})
