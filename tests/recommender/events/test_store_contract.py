"""The EventStore contract, run against every backend: a real SQLite file and a real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recommender.errors import InvalidEventError
from recommender.events import (
    Event,
    EventRecord,
    EventStore,
    ProductRecord,
    SqliteEventStore,
    replay,
    validate_events,
    validate_product_update,
)
from recommender.events.redis_store import RedisEventStore
from tests.fixtures.redis_server import RedisServer

NOW = 1_800_000_000.0
BACKENDS = ["sqlite", "redis"]


Opener = Callable[[], EventStore]


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new store object on the same data each call (a restarted or second worker)."""
    if request.param == "sqlite":
        return lambda: SqliteEventStore(tmp_path / "events.sqlite3")
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"test:{{{uuid.uuid4().hex}}}:"
    return lambda: RedisEventStore(server.url, key_prefix=prefix)


@pytest.fixture
def store(open_store: Opener) -> Iterator[EventStore]:
    opened = open_store()
    yield opened
    opened.close()


def event(event_id: str, user: str = "u1", product: str = "p1", ts: float = NOW, **kw) -> Event:
    return Event(event_id, user, product, kw.pop("type", "view"), ts, **kw)


def put(product_id: str, **fields) -> object:
    body = {"name": "Kem", "brand": "B", "category": "C", "price": 100.0, **fields}
    return validate_product_update(product_id, body, replace=True)


def test_sequence_numbers_are_strictly_increasing_and_read_back_in_order(store: EventStore):
    assert store.latest_seq() == 0 and store.read_since(0, 10) == []
    first = store.append([event("a"), event("b", type="rating", rating=4)])
    second = store.append([event("c", user="u2", recommendation_id="rec-1")])
    assert first == [1, 2] and second == [3] and store.latest_seq() == 3
    records = store.read_since(0, 10)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[1] == EventRecord(2, event("b", type="rating", rating=4), records[1].received_at)
    assert records[2].event == event("c", user="u2", recommendation_id="rec-1")
    assert [r.seq for r in store.read_since(1, 1)] == [2]


def test_a_retried_event_id_returns_the_original_sequence_and_is_stored_once(store: EventStore):
    assert store.append([event("a"), event("b")]) == [1, 2]
    assert store.append([event("b"), event("c"), event("c")]) == [2, 3, 3]
    assert [r.event.event_id for r in store.read_since(0, 10)] == ["a", "b", "c"]


def test_a_batch_with_one_bad_item_stores_nothing(store: EventStore):
    payload = [
        {"user_id": "u1", "product_id": "p1", "type": "view"},
        {"user_id": "u1", "product_id": "p2", "type": "rating", "rating": 6},
    ]
    with pytest.raises(InvalidEventError, match=r"events\[1\]\.rating") as caught:
        store.append(validate_events(payload, max_batch=10, clock_skew_seconds=60, now=NOW))
    assert (caught.value.index, caught.value.field) == (1, "rating")
    assert store.read_since(0, 10) == [] and store.latest_seq() == 0


def test_products_and_events_share_one_sequence_and_updates_fold(store: EventStore):
    store.append([event("a")])
    assert store.append_products([put("new-1")]) == [2]
    patch = validate_product_update("new-1", {"price": 80.5, "available": False}, replace=False)
    patch_model = validate_product_update("p7", {"available": False}, replace=False)
    assert store.append_products([patch, patch_model]) == [3, 4]
    records = store.read_since(1, 10)
    full = {"name": "Kem", "brand": "B", "category": "C", "price": 100.0}
    assert records[0] == ProductRecord(
        2, "new-1", {**full, "skin_types": [], "available": True}, True, records[0].received_at
    )
    assert isinstance(records[1], ProductRecord)
    assert records[1].fields == {**full, "price": 80.5, "skin_types": [], "available": False}
    assert records[1].replace is True
    assert (records[2].product_id, records[2].fields, records[2].replace) == (
        "p7",
        {"available": False},
        False,
    )


def test_compaction_drops_old_events_but_keeps_every_products_latest_state(store: EventStore):
    store.append([event("old", ts=NOW - 100), event("new", ts=NOW)])
    store.append_products([put("x", price=1.0)])
    store.append([event("older-late", ts=NOW - 200)])
    store.append_products([validate_product_update("x", {"price": 2.0}, replace=False)])
    store.append_products([validate_product_update("y", {"brand": "Z"}, replace=False)])
    result = store.compact(before_timestamp=NOW - 10)
    assert (result.events_deleted, result.product_records_deleted) == (2, 1)
    left = store.read_since(0, 10)
    assert [r.seq for r in left] == [2, 5, 6]
    assert isinstance(left[1], ProductRecord) and left[1].fields["price"] == 2.0
    assert left[1].fields["name"] == "Kem" and left[1].replace is True
    assert isinstance(left[2], ProductRecord) and left[2].fields == {"brand": "Z"}
    assert store.compact(before_timestamp=NOW - 10).events_deleted == 0
    # sequence numbers are never reused after compaction
    assert store.append([event("after")]) == [7] and store.latest_seq() == 7


def test_replay_reads_everything_in_batches(store: EventStore):
    store.append([event(f"e{i}", ts=NOW + i) for i in range(23)])
    assert [r.seq for r in replay(store, after_seq=0, batch_size=5)] == list(range(1, 24))
    assert [r.seq for r in replay(store, after_seq=20, batch_size=5)] == [21, 22, 23]


def test_health_reports_the_backend_and_latest_sequence(store: EventStore):
    store.append([event("a")])
    health = store.health()
    assert (health.ok, health.backend, health.latest_seq) == (True, store.backend, 1)


def test_concurrent_clients_and_retries_lose_and_duplicate_nothing(store: EventStore):
    seqs: dict[str, set[int]] = {}
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(20):
            batch = [event(f"c{n}-{i}", user=f"u{n}"), event(f"shared-{i}")]  # shared: a retry
            got = store.append(batch)
            with lock:
                for e, seq in zip(batch, got, strict=True):
                    seqs.setdefault(e.event_id, set()).add(seq)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(len(got) == 1 for got in seqs.values())  # every retry got the original seq
    records = store.read_since(0, 1000)
    assert [r.seq for r in records] == list(range(1, 8 * 20 + 20 + 1))
    ids = [r.event.event_id for r in records if isinstance(r, EventRecord)]
    assert sorted(ids) == sorted(seqs) and {r.seq for r in records} == {
        s for got in seqs.values() for s in got
    }


def test_a_new_store_object_on_the_same_data_sees_everything(open_store: Opener):
    first = open_store()
    first.append([event("a"), event("b", type="purchase")])
    first.append_products([put("x")])
    written = first.read_since(0, 10)
    first.close()
    second = open_store()
    assert second.read_since(0, 10) == written and second.latest_seq() == 3
    assert second.append([event("a"), event("c")]) == [1, 4]
    second.close()
