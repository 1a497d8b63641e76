"""The realistic protocol with live popularity is what the service serves between builds: its
popularity equals the serving live state's after the same events, and its stale gate is off
exactly where serving's is (once live popularity counts an event)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings, ServingSettings
from recommender.evaluation.protocol import EvaluationSet, as_served, popularity_splits
from recommender.evaluation.rankers import stale_users
from recommender.events import SqliteEventStore, validate_events
from recommender.scoring import HybridConfig
from recommender.scoring.popularity import PopularityHistory
from recommender.serving import LiveFeed, LiveState
from recommender.serving.live_state import data_cutoff
from tests.recommender.serving.conftest import make_engine

DAY = 86400
HALF_LIFE_DAYS = 2.0
GATED = HybridConfig(
    weights={s: {V.SIGNAL_POPULARITY: 1.0} for s in V.SEGMENTS},
    stale_after_hours=24.0,
    stale_popularity_half_life_days=HALF_LIFE_DAYS,
)


def _engine_with_events(tmp_path: Path, events: list[dict], now: float):
    """An engine whose live state applied ``events`` (as a worker does), clock at ``now``."""
    settings = EventsSettings(popularity_refresh_seconds=0)
    engine = make_engine(
        ServingSettings(events=settings),
        hybrid=GATED,
        metadata={"popularity": {"half_life_days": HALF_LIFE_DAYS}},
    )
    live = LiveState(engine.bundle, settings, clock=lambda: now)
    store = SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL")
    if events:
        store.append(validate_events(events, max_batch=100, clock_skew_seconds=10 * DAY))
    feed = LiveFeed(store, settings)
    feed.attach(live)
    live.catch_up(store)
    engine.live, engine.feed = live, feed
    engine.scorer.clock = lambda: now
    return engine, store


def _times(engine) -> tuple[float, float, float]:
    """(the model's cut-off, the start of the next day, noon of that day)."""
    cutoff = data_cutoff(engine.bundle)
    start = (cutoff // DAY + 1) * DAY
    return cutoff, start, start + DAY / 2


@pytest.mark.parametrize("rating", [5, 2])
def test_live_popularity_is_the_protocols_served_popularity(tmp_path, rating) -> None:
    """Ratings after the build (the next day, before noon) counted by the live state equal the
    protocol's popularity at noon: the build's positives once each, the day's positive ratings
    ``events.popularity_weights.rating`` (2) each, all decayed with the model's half-life; a
    rating below ``positive_rating`` counts for neither."""
    probe, _ = _engine_with_events(tmp_path / "probe", [], 0.0)
    _, start, noon = _times(probe)
    picks = [("p3", 1), ("p7", 3), ("p3", 5), ("p11", 8)]  # (product, hour after the start)
    events = [
        {
            "user_id": f"shopper{k}",
            "product_id": product,
            "type": "rating",
            "rating": rating,
            "timestamp": start + hour * 3600,
        }
        for k, (product, hour) in enumerate(picks)
    ]
    (tmp_path / "live").mkdir()
    engine, store = _engine_with_events(tmp_path / "live", events, noon)
    bundle = engine.bundle
    hist = bundle.histories
    liked = hist.positive_mask()
    index = bundle.catalogue.index
    positive = rating >= EventsSettings().positive_rating
    live_items = [index[p] for p, _ in picks] if positive else []
    live_seconds = [start + h * 3600 for _, h in picks] if positive else []
    protocol = PopularityHistory.from_events(
        np.concatenate([hist.indices[liked], np.array(live_items, dtype=np.int64)]),
        np.concatenate([hist.seconds[liked], np.array(live_seconds, dtype=np.int64)]),
        bundle.n_items,
        HALF_LIFE_DAYS,
    ).as_served(1.0, EventsSettings().popularity_weights.rating)
    expected = protocol.at(np.array([int(noon)]))[0]
    served = engine.live.popularity()
    if positive:
        assert served is not None
        np.testing.assert_allclose(served[: bundle.n_items], expected, rtol=1e-5, atol=1e-6)
        # weighting the day's events like the build's (exact popularity) is another vector
        plain = _exact_at(protocol, noon)
        assert not np.allclose(plain, expected, rtol=1e-5, atol=1e-6)
    else:
        assert served is None  # no live weight: the model's popularity, as the protocol's
        np.testing.assert_allclose(expected, _exact_at(protocol, noon), rtol=1e-6)
    store.close()


def _exact_at(history: PopularityHistory, when: float) -> np.ndarray:
    """``history`` at ``when`` with every interaction counted once (the exact protocol)."""
    plain = PopularityHistory(history.items, history.seconds, history.n_items, HALF_LIFE_DAYS)
    return plain.at(np.array([int(when)]))[0]


def test_the_gate_is_off_in_the_protocol_exactly_where_serving_drops_it(tmp_path) -> None:
    """Serving gates stale users on the built model only: once a live event counts, every user
    is scored on the live model without the gate. The protocol gates a stale user only when no
    positive came between the period start and the request."""
    probe, _ = _engine_with_events(tmp_path / "probe", [], 0.0)
    cutoff, start, noon = _times(probe)
    rows = np.arange(probe.bundle.histories.cf_rows.size)
    event = {"user_id": "x", "product_id": "p2", "type": "purchase", "timestamp": start + 60}
    (tmp_path / "quiet").mkdir()
    (tmp_path / "busy").mkdir()
    quiet, s1 = _engine_with_events(tmp_path / "quiet", [], noon)
    busy, s2 = _engine_with_events(tmp_path / "busy", [event], noon)
    assert quiet.scorer.stale(rows, quiet._live_frame_model()[1]).any()  # gated users exist
    assert not busy.scorer.stale(rows, busy._live_frame_model()[1]).any()  # none once live
    hist = probe.bundle.histories
    liked = hist.positive_mask()
    base = (hist.indices[liked], hist.seconds[liked])
    users = EvaluationSet(
        stage=V.STAGE_TEST,
        user_ids=["u"],
        targets=[np.array([0])],
        histories=[np.array([1])],
        weights=[np.array([1.0])],
        seen=[np.array([1])],
        cf_rows=np.array([0]),
        n_items=probe.bundle.n_items,
        request_times=np.array([int(noon)]),
        previous_gaps=np.array([noon - cutoff + 3 * DAY]),  # stale
    )
    served = as_served(users, 1.0, 2.0)
    for extra, gated in (([], True), ([start + 60], False)):
        history = PopularityHistory.from_events(
            np.concatenate([base[0], np.array([2] * len(extra), dtype=np.int64)]),
            np.concatenate([base[1], np.array(extra, dtype=np.int64)]),
            probe.bundle.n_items,
            HALF_LIFE_DAYS,
        )
        model = _with_history(probe.bundle.model, history)
        assert stale_users(served, V.SEGMENT_TRAINABLE, GATED, model).tolist() == [gated]
        assert stale_users(users, V.SEGMENT_TRAINABLE, GATED, model).tolist() == [True]  # exact
    s1.close()
    s2.close()


def _with_history(model, history: PopularityHistory):
    return dataclasses.replace(model, popularity_history=history)


def test_popularity_counts_the_target_split_before_each_request() -> None:
    assert popularity_splits(V.STAGE_VALIDATION) == (V.SPLIT_TRAIN, V.SPLIT_VAL)
    assert popularity_splits(V.STAGE_TEST) == (V.SPLIT_TRAIN, V.SPLIT_VAL, V.SPLIT_TEST)


def test_counted_since_period_and_weight_validation() -> None:
    day = int(pd.Timestamp("2024-03-10", tz="UTC").timestamp())
    history = PopularityHistory.from_events(
        np.array([0, 1]), np.array([day - 10, day + 100]), 2, None
    )
    times = np.array([day + 50, day + 100, day + 101, day + DAY + 5])
    assert history.counted_since_period(times, 1.0).tolist() == [False, False, True, False]
    served = history.as_served(1.0, 3.0).at(np.array([day + 101]))[0]
    np.testing.assert_allclose(served, [np.log1p(1) / np.log1p(3), 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="period"):
        history.as_served(0.0, 2.0)
