"""Live state over a real SQLite event store: events and catalogue updates change the next answer.

Two engines sharing one store file stand in for two workers: what one acknowledges, the other's
next answer reflects (each request catches up when the store is ahead).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings, ServingSettings
from recommender.errors import StoreUnavailableError
from recommender.events import SqliteEventStore, validate_events, validate_product_update
from recommender.serving import Engine, LiveFeed, LiveState
from recommender.serving.live_state import data_cutoff, trainable_fold_in
from tests.recommender.serving.conftest import make_engine

SETTINGS = EventsSettings(popularity_refresh_seconds=0)


@pytest.fixture()
def store(tmp_path: Path):
    with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as s:
        yield s


def worker(store, settings: EventsSettings = SETTINGS, admission: str = "always") -> Engine:
    """An engine fed from ``store``, as the holder wires one on each worker."""
    engine = make_engine(ServingSettings(events=settings, cache={"admission": admission}))
    live = LiveState(engine.bundle, settings)
    feed = LiveFeed(store, settings)
    feed.attach(live)
    engine.live, engine.feed = live, feed
    return engine


def post(store, *events: dict[str, Any]) -> list[int]:
    return store.append(validate_events(list(events), max_batch=100, clock_skew_seconds=300))


def ids(result) -> list[str]:
    return [item["product_id"] for item in result.items]


def test_two_views_turn_a_new_visitor_into_a_cold_hybrid_answer(store):
    engine = worker(store)
    before = engine.recommend("visitor", topk=5)
    assert (before.segment, before.strategy) == (V.SEGMENT_UNKNOWN, V.STRATEGY_POPULARITY)
    post(
        store,
        {"user_id": "visitor", "product_id": "p3", "type": "view"},
        {"user_id": "visitor", "product_id": "p7", "type": "view"},
    )
    after = engine.recommend("visitor", topk=5)
    assert (after.segment, after.strategy, after.fallback_method) == (
        V.SEGMENT_COLD,
        V.STRATEGY_CONTENT,
        V.FALLBACK_COLD_HYBRID,
    )
    # the cold hybrid on exactly these two items, as if the model had them as history
    history = np.array([3, 7])
    expected = engine.scorer._compute(
        V.SEGMENT_COLD,
        [history],
        engine.bundle.hybrid.for_segment(V.SEGMENT_COLD),
        None,
        engine._live_frame_model()[1],
    )[0]
    assert after.items[0]["score"] == pytest.approx(float(np.max(expected)), abs=1e-6)
    assert ids(after) != ids(before)


def test_a_purchase_is_never_recommended_again_and_a_view_still_may_be(store):
    engine = worker(store)
    everything = ids(engine.recommend("t0", topk=24))
    bought, viewed = everything[0], everything[1]
    post(
        store,
        {"user_id": "t0", "product_id": bought, "type": "purchase"},
        {"user_id": "t0", "product_id": viewed, "type": "view"},
    )
    after = ids(engine.recommend("t0", topk=24))
    assert bought not in after
    assert viewed in after
    batch = engine.recommend_batch(["t0", "c1"], topk=24)
    assert bought not in ids(batch[0])


def test_view_rule_is_config(store):
    engine = worker(store, EventsSettings(seen_types=["view"], popularity_refresh_seconds=0))
    first = ids(engine.recommend("t1", topk=24))[0]
    post(store, {"user_id": "t1", "product_id": first, "type": "view"})
    assert first not in ids(engine.recommend("t1", topk=24))


def test_an_event_acked_by_one_worker_shows_in_the_next_answer_of_another(store):
    a, b = worker(store), worker(store)
    cached = ids(b.recommend("t2", topk=24))  # now in b's results cache
    top = cached[0]
    post(store, {"user_id": "t2", "product_id": top, "type": "purchase"})  # via "worker a"
    assert top not in ids(b.recommend("t2", topk=24))
    assert top not in ids(a.recommend("t2", topk=24))


def test_answers_in_the_results_window_change_with_the_next_event_or_catalogue_update(store):
    a, b = worker(store, admission="repeat"), worker(store, admission="repeat")
    fresh = worker(store)  # ranks each answer anew (no key is asked twice of it)
    visitor, known = ids(b.recommend("nobody", topk=24)), ids(b.recommend("t2", topk=24))
    assert ids(b.recommend("nobody", topk=24)) == visitor == ids(fresh.recommend("nobody", topk=24))
    assert ids(b.recommend("t2", topk=24)) == known == ids(fresh.recommend("t2", topk=24))
    window = b.caches.results.window
    assert window.hits == 2 and len(b.caches.results) == 0  # held back: in the window only
    top = visitor[0]
    # via "worker a": a catalogue update and an event
    store.append_products([validate_product_update(top, {"available": False}, replace=False)])
    post(store, {"user_id": "t2", "product_id": known[1], "type": "purchase"})
    after_visitor = ids(b.recommend("nobody", topk=24))
    after_known = ids(b.recommend("t2", topk=24))
    assert top not in after_visitor and top not in after_known and known[1] not in after_known
    assert top not in ids(a.recommend("nobody", topk=24))
    assert window.hits == 2  # both computed again
    cheap = {"price_max": 50.0}
    assert "p5" not in ids(b.recommend("nobody", topk=24, filters=cheap))  # now in the window
    store.append_products([validate_product_update("p5", {"price": 1.0}, replace=False)])
    repriced = b.recommend("nobody", topk=24, filters=cheap)
    assert "p5" in ids(repriced) and repriced.items[ids(repriced).index("p5")]["price"] == 1.0
    for user in ("nobody", "t2"):  # under the new versions: computed, held, then the window's
        first, held = b.recommend(user, topk=24), b.recommend(user, topk=24)
        anew = fresh.recommend(user, topk=24)
        assert held.ranked is first.ranked and ids(held) == ids(anew)
        assert [i["score"] for i in held.items] == [i["score"] for i in anew.items]
    assert window.hits == 4


def test_trainable_user_cf_vector_is_folded_in_from_the_live_history(store):
    engine = worker(store)
    before = engine.recommend("t3", topk=5)
    post(store, *[{"user_id": "t3", "product_id": f"p{i}", "type": "cart"} for i in (15, 16, 17)])
    after = engine.recommend("t3", topk=5)
    assert after.segment == V.SEGMENT_TRAINABLE
    assert [i["score"] for i in after.items] != [i["score"] for i in before.items]


def test_live_popularity_changes_the_unknown_users_answer(store):
    engine = worker(store)
    before = ids(engine.recommend("nobody", topk=24))
    last = before[-1]
    post(store, *[{"user_id": f"u{k}", "product_id": last, "type": "purchase"} for k in range(10)])
    after = ids(engine.recommend("nobody", topk=24))
    assert after[0] == last  # 10 purchases now beat a model whose data is two years old
    assert after != before


def test_low_ratings_do_not_make_a_product_trend(store):
    engine = worker(store)
    before = ids(engine.recommend("nobody", topk=24))
    last = before[-1]
    low = [
        {"user_id": f"u{k}", "product_id": last, "type": "rating", "rating": 1} for k in range(10)
    ]
    post(store, *low)
    assert ids(engine.recommend("nobody", topk=24)) == before  # ten 1-star reviews: no demand
    high = [
        {"user_id": f"v{k}", "product_id": last, "type": "rating", "rating": 5} for k in range(10)
    ]
    post(store, *high)
    assert ids(engine.recommend("nobody", topk=24))[0] == last


def test_events_older_than_the_model_cut_off_are_not_replayed(store):
    engine = worker(store)
    cutoff = data_cutoff(engine.bundle)
    post(store, {"user_id": "old", "product_id": "p1", "type": "view", "timestamp": cutoff - 1})
    fresh = worker(store)
    assert fresh.live is not None and fresh.live.user("old") is None
    assert fresh.live.cursor == 1  # read, skipped, not read again


def test_unavailable_product_leaves_every_path_and_price_change_is_filtered(store):
    a, b = worker(store), worker(store)
    top = ids(a.recommend("nobody", topk=3))[0]
    neighbour = ids(a.similar_items("p0", topk=5))[0]
    for product in (top, neighbour):
        store.append_products(
            [validate_product_update(product, {"available": False}, replace=False)]
        )
    assert top not in ids(b.recommend("nobody", topk=24))
    assert top not in ids(b.recommend("t0", topk=24))
    assert all(top not in ids(r) for r in b.recommend_batch(["t1", "c0", "zz"], topk=24))
    assert neighbour not in ids(b.similar_items("p0", topk=10))
    store.append_products([validate_product_update("p5", {"price": 1.0}, replace=False)])
    cheap = b.recommend("nobody", topk=24, filters={"price_max": 50.0})
    assert ids(cheap) == ["p5"]
    assert cheap.items[0]["price"] == 1.0


def test_store_down_degrades_to_the_model_and_counts(store, tmp_path):
    engine = worker(store)
    post(store, {"user_id": "t4", "product_id": "p20", "type": "purchase"})
    assert "p20" not in ids(engine.recommend("t4", topk=24))  # applied while the store was up

    class Down(SqliteEventStore):
        def latest_seq(self) -> int:
            raise StoreUnavailableError("locked", backend="sqlite", reason="locked")

        def latest_seq_hint(self) -> int:  # the shared counter says "ahead"; reading fails
            return 10**9

        def read_since(self, seq: int, limit: int) -> list:
            raise StoreUnavailableError("locked", backend="sqlite", reason="locked")

    assert engine.feed is not None
    engine.feed.store = Down(tmp_path / "other.sqlite3")
    result = engine.recommend("t4", topk=24, exclude_seen=True)  # answers; live state as it was
    assert "p20" not in ids(result)
    assert engine.feed.degraded == 1 and engine.feed.last_error is not None


def test_live_state_timing_for_a_user_with_live_events_is_reported(store):
    """Not a speed test (see scripts/bench_live_events.py): the two paths answer alike."""
    engine = worker(store)
    post(store, {"user_id": "t5", "product_id": "p9", "type": "view"})
    started = time.perf_counter()
    assert engine.recommend("t5", topk=10).items
    assert time.perf_counter() - started < 5


def test_stored_cf_row_is_kept_when_fold_in_is_off(store):
    settings = EventsSettings(trainable_fold_in=False, popularity_refresh_seconds=0)
    engine = worker(store, settings)
    engine.settings = ServingSettings(events=settings)
    before = {i["product_id"]: i["score"] for i in engine.recommend("t3", topk=24).items}
    post(store, {"user_id": "t3", "product_id": "p15", "type": "view"})
    after = {i["product_id"]: i["score"] for i in engine.recommend("t3", topk=24).items}
    # a view is not "seen" by default: same items; scores differ only through live popularity
    assert set(after) == set(before)
    assert engine.bundle.hybrid.for_segment(V.SEGMENT_TRAINABLE) == {V.SIGNAL_CF: 1.0}
    assert after == before  # CF only: the stored row, so the very same scores


@pytest.mark.parametrize(
    ("setting", "built", "expected"),
    [
        (None, False, False),
        (None, True, True),
        (None, None, True),
        (True, False, True),
        (False, True, False),
    ],
)
def test_trainable_fold_in_is_the_builds_choice_unless_the_config_sets_it(setting, built, expected):
    assert trainable_fold_in(setting, {"live_fold_in": built}) is expected


def test_a_model_that_chose_the_stored_row_keeps_it_when_the_config_is_unset(store):
    settings = EventsSettings(popularity_refresh_seconds=0)  # trainable_fold_in: None
    engine = worker(store, settings)
    engine.bundle.info["live_fold_in"] = False  # what the build's live validation decided
    before = {i["product_id"]: i["score"] for i in engine.recommend("t3", topk=24).items}
    post(store, {"user_id": "t3", "product_id": "p15", "type": "view"})
    after = {i["product_id"]: i["score"] for i in engine.recommend("t3", topk=24).items}
    assert engine.bundle.hybrid.for_segment(V.SEGMENT_TRAINABLE) == {V.SIGNAL_CF: 1.0}
    assert after == before  # CF only from the stored row: the very same scores
    engine.bundle.info["live_fold_in"] = True
    post(store, {"user_id": "t3", "product_id": "p16", "type": "view"})
    refolded = {i["product_id"]: i["score"] for i in engine.recommend("t3", topk=24).items}
    assert refolded != before  # folded in from the history with the two live views


def _wait_applied(live: LiveState, seq: int, seconds: float) -> float:
    """Seconds until ``live`` applied ``seq`` (bounded; ``inf`` when it never did)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if live.cursor >= seq:
            return time.monotonic() - start
        time.sleep(0.005)
    return float("inf")


def test_the_tail_applies_another_workers_event_well_before_the_poll_interval(store, tmp_path):
    settings = EventsSettings(popularity_refresh_seconds=0, poll_interval_seconds=30)
    engine = worker(store, settings)
    assert engine.feed is not None and engine.live is not None
    engine.feed.start()
    try:
        with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as other:
            (seq,) = post(other, {"user_id": "tail", "product_id": "p3", "type": "view"})
        # no request on this worker: only its tail can apply it, and it checks the hint often
        assert _wait_applied(engine.live, seq, 5.0) < 2.0
    finally:
        engine.feed.stop()


def test_the_tail_leaves_a_failing_store_alone_until_the_next_poll(store, tmp_path):
    calls: list[float] = []

    class Down(SqliteEventStore):
        def latest_seq_hint(self) -> int:
            calls.append(time.monotonic())
            raise StoreUnavailableError("locked", backend="sqlite", reason="locked")

        def read_since(self, seq: int, limit: int) -> list:
            raise StoreUnavailableError("locked", backend="sqlite", reason="locked")

        def latest_seq(self) -> int:
            raise StoreUnavailableError("locked", backend="sqlite", reason="locked")

    settings = EventsSettings(popularity_refresh_seconds=0, poll_interval_seconds=0.2)
    engine = worker(store, settings)
    assert engine.feed is not None
    engine.feed.store = Down(tmp_path / "other.sqlite3")
    engine.feed.start()
    time.sleep(0.5)
    engine.feed.stop()
    # one hint check per 0.2 s period (then it waits the period out), not one per 20 ms
    assert 1 <= len(calls) <= 4
    assert engine.feed.last_error is not None and engine.feed.store_errors >= 1
