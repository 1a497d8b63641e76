"""The Redis backend against a real redis-server that is killed and restarted under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recommender.errors import StoreUnavailableError
from recommender.events import Event, EventRecord
from recommender.events.redis_store import RedisEventStore
from tests.fixtures.redis_server import start_redis


def event(event_id: str) -> Event:
    return Event(event_id, "u1", "p1", "purchase", 1_700_000_000.0)


def test_a_redis_restart_fails_calls_during_the_outage_then_reconnects_losing_nothing(
    tmp_path: Path,
) -> None:
    server = start_redis(tmp_path / "redis")
    store = RedisEventStore(server.url, socket_timeout_seconds=0.5, retries=2)
    try:
        assert store.append([event("a"), event("b")]) == [1, 2]
        server.kill()  # SIGKILL: only what appendfsync always wrote survives
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            store.append([event("c")])
        assert time.monotonic() - started < 10  # bounded retries, then 503
        assert caught.value.backend == "redis"
        assert store.health().ok is False
        with pytest.raises(StoreUnavailableError):
            store.read_since(0, 10)

        server.start()  # same port, same data directory
        assert store.append([event("c")]) == [3]  # the same object reconnects
        assert store.append([event("a")]) == [1]  # the idempotency index survived too
        records = store.read_since(0, 10)
        assert [r.event.event_id for r in records if isinstance(r, EventRecord)] == ["a", "b", "c"]
        assert store.health().ok is True and store.latest_seq() == 3
    finally:
        store.close()
        server.kill()


def test_an_unreachable_redis_is_store_unavailable_and_health_says_why(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    server.kill()
    store = RedisEventStore(server.url, socket_timeout_seconds=0.2, retries=1)
    with pytest.raises(StoreUnavailableError, match="cannot write") as caught:
        store.append([event("a")])
    assert "Connection" in caught.value.reason or "connect" in caught.value.reason.lower()
    health = store.health()
    assert (health.ok, health.backend, health.latest_seq) == (False, "redis", None)
    assert health.detail
    store.close()
