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
- the same requests with no event store at all (what the per-request ``latest_seq`` check costs).

Target: a user with live events costs at most 1.3x the same request without them.
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


def timed(engine: Engine, user: str, repeat: int) -> float:
    """Median milliseconds of one uncached recommend."""
    samples = []
    for _ in range(repeat):
        engine.caches.clear()
        started = time.perf_counter()
        engine.recommend(user, topk=10)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=300)
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
        trainable = bundle.histories.user_ids[0]
        cold = bundle.histories.user_ids[-1]
        items = [f"p{i}" for i in range(100, 105)]
        rows = [
            {"user_id": user, "product_id": item, "type": "view"}
            for user in (trainable, cold)
            for item in items
        ]
        rows += [{"user_id": "visitor", "product_id": p, "type": "view"} for p in items[:2]]
        before = {
            "trainable": timed(live_engine, trainable, args.repeat),
            "cold": timed(live_engine, cold, args.repeat),
            "new visitor": timed(live_engine, "visitor", args.repeat),
        }
        no_store = {
            "trainable": timed(plain, trainable, args.repeat),
            "cold": timed(plain, cold, args.repeat),
            "new visitor": timed(plain, "visitor", args.repeat),
        }
        store.append(validate_events(rows, max_batch=100, clock_skew_seconds=300))
        live_engine.recommend("warm", topk=10)  # catch up once
        after = {
            "trainable": timed(live_engine, trainable, args.repeat),
            "cold": timed(live_engine, cold, args.repeat),
            "new visitor": timed(live_engine, "visitor", args.repeat),
        }
        print(f"{args.items} items, {args.users} users, median of {args.repeat} uncached calls")
        print(f"{'user':<12} {'no store ms':>12} {'no live ev ms':>14} {'live ev ms':>11} ratio")
        for name in before:
            ratio = after[name] / before[name]
            print(
                f"{name:<12} {no_store[name]:>12.3f} {before[name]:>14.3f} "
                f"{after[name]:>11.3f} {ratio:.2f}x"
            )
        segments = [live_engine.segment_of(u) for u in (trainable, cold, "visitor")]
        print("segments with live events:", segments)
        stored = ServingSettings(events=EventsSettings(trainable_fold_in=False))
        live_engine.settings = stored
        row = timed(live_engine, trainable, args.repeat)
        print(
            f"trainable, stored CF row kept (events.trainable_fold_in: false): {row:.3f} ms "
            f"= {row / before['trainable']:.2f}x"
        )


if __name__ == "__main__":
    main()
