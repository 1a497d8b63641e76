"""What live events cost a /recommend: the engine in-process, one run, ratios printed.

Usage::

    python scripts/benchmark_live_recommend.py [--items 2000] [--users 20000] [--repeat 300]

Builds a synthetic bundle of the demo shop's size (random factors and embeddings: the request
path's cost depends on the shapes, not the values), attaches live state fed from a real SQLite
event store in a temporary directory, and times ``Engine.recommend`` (caches cleared before each
call, so every call computes the profile) for:

- a trainable user and a cold user without live events, the same users with 5 live views
  (trainable: CF vector folded in from the full history), and a new visitor with 2 views (cold
  hybrid) against an unknown visitor (popularity);
- the same requests with no event store at all (what the per-request read-your-writes check
  costs), and what one live popularity refresh costs.

All calls are interleaved round-robin. Target: a user with live events costs at most 1.3x the
same request without them (a new visitor with views against a cold user without events: both
are the cold hybrid); PASS/MISS per line, exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.config.serving import EventsSettings, ServingSettings  # noqa: E402
from recommender.events import SqliteEventStore, validate_events  # noqa: E402
from recommender.scoring import HybridConfig  # noqa: E402
from recommender.serving import (  # noqa: E402
    Catalogue,
    Engine,
    LiveFeed,
    LiveState,
    ServingCaches,
    UserHistories,
)
from recommender.serving.bundle import build_bundle  # noqa: E402
from scripts._client import report_targets  # noqa: E402


def synthetic_bundle(n_items: int, n_users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    products = pd.DataFrame(
        {
            V.PRODUCT_ID: [f"p{i}" for i in range(n_items)],
            V.NAME: [f"product {i}" for i in range(n_items)],
            V.BRAND: [f"b{i % 40}" for i in range(n_items)],
            V.CATEGORY: [f"c{i % 12}" for i in range(n_items)],
            V.PRICE: rng.integers(50_000, 900_000, n_items).astype(float),
            V.AVG_RATING: rng.uniform(3, 5, n_items),
            V.NUM_RATINGS: rng.integers(0, 500, n_items),
            V.NUM_SOLD: rng.integers(0, 5000, n_items),
            V.SKIN_TYPES: [["oily"]] * n_items,
        }
    )
    catalogue = Catalogue.from_products(products)
    per_user = 5
    users = [f"u{k}" for k in range(n_users)]
    popularity = rng.zipf(1.3, n_users * per_user) % n_items
    frame = pd.DataFrame(
        {
            V.USER_ID: np.repeat(users, per_user),
            V.PRODUCT_ID: [f"p{i}" for i in popularity],
            V.RATING: 5,
            V.TIMESTAMP: pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 90 * 86400, n_users * per_user), unit="s"),
        }
    )
    trainable = users[: n_users // 10]
    histories = UserHistories.from_interactions(frame, users, catalogue.index, trainable)
    embeddings = rng.normal(size=(n_items, 256)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    metadata = {"model_id": "bench", "model_type": "als", "popularity": {"half_life_days": 7}}
    return build_bundle(
        catalogue,
        histories,
        rng.normal(size=(n_items, 64)).astype(np.float32),
        rng.normal(size=(len(trainable), 64)).astype(np.float32),
        embeddings,
        metadata,
        HybridConfig(),
    )


def timed_pairs(calls: dict[str, tuple[Engine, str]], repeat: int) -> dict[str, float]:
    """Median milliseconds of one uncached recommend per named (engine, user), the calls
    interleaved round-robin so that load on the machine moves every column alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, (engine, user) in calls.items():
            engine.caches.clear()
            started = time.perf_counter()
            engine.recommend(user, topk=10)
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    settings = ServingSettings()
    bundle = synthetic_bundle(args.items, args.users)
    plain = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    live_engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SqliteEventStore(Path(tmp) / "events.sqlite3", synchronous="NORMAL") as store,
    ):
        events = EventsSettings()
        live, feed = LiveState(bundle, events), LiveFeed(store, events)
        feed.attach(live)
        live_engine.live, live_engine.feed = live, feed
        users = bundle.histories.user_ids
        trainable, trainable_plain = users[0], users[1]
        cold, cold_plain = users[-1], users[-2]
        items = [f"p{i}" for i in range(100, 105)]
        rows = [
            {"user_id": user, "product_id": item, "type": "view"}
            for user in (trainable, cold)
            for item in items
        ]
        rows += [{"user_id": "visitor", "product_id": p, "type": "view"} for p in items[:2]]
        store.append(validate_events(rows, max_batch=100, clock_skew_seconds=300))
        live_engine.recommend("warm", topk=10)  # catch up once (live popularity from here on)
        started = time.perf_counter()
        live.popularity_version += 1  # what each popularity refresh (<= 1 per second) costs
        live_engine._live_frame_model()  # noqa: SLF001 - the rebuild, timed once
        rebuild_ms = (time.perf_counter() - started) * 1000
        ms = timed_pairs(
            {
                "trainable, live events": (live_engine, trainable),
                "trainable, none": (live_engine, trainable_plain),
                "trainable, no store": (plain, trainable_plain),
                "cold, live events": (live_engine, cold),
                "cold, none": (live_engine, cold_plain),
                "cold, no store": (plain, cold_plain),
                "new visitor, 2 views": (live_engine, "visitor"),
                "unknown, no store": (plain, "nobody"),
            },
            args.repeat,
        )
        segments = [live_engine.segment_of(u) for u in (trainable, cold, "visitor")]
        live_engine.settings = ServingSettings(events=EventsSettings(trainable_fold_in=False))
        stored_row = timed_pairs({"row": (live_engine, trainable)}, args.repeat)["row"]
    ratios = {
        "trainable": ms["trainable, live events"] / ms["trainable, none"],
        "cold": ms["cold, live events"] / ms["cold, none"],
        # a new visitor with views is served by the cold hybrid: the same request without
        # live events is a cold user's (the popularity answer is another path, shown only)
        "new visitor": ms["new visitor, 2 views"] / ms["cold, none"],
    }
    print(f"{args.items} items, {args.users} users, median of {args.repeat} uncached calls")
    for name, value in ms.items():
        print(f"  {name:<24} {value:8.3f} ms")
    print(
        f"  {'trainable, stored CF row':<24} {stored_row:8.3f} ms (events.trainable_fold_in: false)"
    )
    print(
        f"  live popularity refresh (unknown-user scores rebuilt): {rebuild_ms:.3f} ms, at most "
        f"once per events.popularity_refresh_seconds = {events.popularity_refresh_seconds}"
    )
    print("segments with live events:", segments)
    for name, ratio in ratios.items():
        print(f"  ratio {name}: {ratio:.2f}x")
    targets = {f"{name}: live events <= 1.3x without": r <= 1.3 for name, r in ratios.items()}
    report = {"ms": ms, "ratios": ratios, "stored_row_ms": stored_row, "refresh_ms": rebuild_ms}
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
