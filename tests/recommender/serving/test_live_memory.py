"""Live state stays bounded: per-user item caps, a total cap evicting the least recently active
users, and a memory figure per worker (``LiveState.stats()``: /stats and the gauges)."""

from __future__ import annotations

import time

from recommender.config.serving import EventsSettings
from recommender.events import Event, EventRecord
from recommender.serving import LiveState
from tests.recommender.serving.conftest import make_engine


def live(settings: EventsSettings) -> LiveState:
    return LiveState(make_engine().bundle, settings)


def records(*rows: tuple[str, str, str]) -> list[EventRecord]:
    now = time.time()
    return [
        EventRecord(seq, Event(f"e{seq}", user, product, kind, now), now)  # type: ignore[arg-type]
        for seq, (user, product, kind) in enumerate(rows, start=1)
    ]


def test_a_users_live_history_keeps_only_their_newest_items():
    state = live(EventsSettings(max_items_per_user=3))
    state.apply(records(*[("u", f"p{i}", "purchase") for i in range(6)]))
    index = state.bundle.catalogue.index
    user = state.user("u")
    assert user is not None
    assert user.seen.tolist() == [index["p3"], index["p4"], index["p5"]]
    assert user.liked.tolist() == [index["p3"], index["p4"], index["p5"]]
    assert user.version == 6 and state.items_held == 6


def test_over_the_total_cap_the_least_recently_active_users_are_dropped_first():
    state = live(EventsSettings(max_live_items=10))
    # a, b, c each get two purchases (4 items held each: seen + liked); a is active again last
    rows = [(u, f"p{i}", "purchase") for u in ("a", "b") for i in range(2)]
    rows += [("a", "p5", "view")]  # a: 5 items, b: 4 -> 9 held
    rows += [("c", "p6", "purchase")]  # 11 > 10: b (least recently active) goes, then 7 <= 9
    state.apply(records(*rows))
    assert state.user("b") is None
    assert state.user("a") is not None and state.user("c") is not None
    assert (state.items_held, state.users_evicted) == (7, 1)
    stats = state.stats()
    assert (stats["users"], stats["items_held"], stats["users_evicted"]) == (2, 7, 1)


def test_memory_is_reported_and_grows_with_the_users_held():
    state = live(EventsSettings())
    empty = state.memory_bytes()
    n = state.bundle.n_items
    assert empty >= 2 * 8 * n  # the popularity arrays (float64) at least
    state.apply(records(*[(f"u{k}", "p1", "purchase") for k in range(100)]))
    grown = state.memory_bytes()
    assert grown - empty >= 100 * 2 * 8  # two list slots per user at least
    assert state.stats()["memory_bytes"] == grown
