"""What serving new products (PUT, unknown to the model) costs a request: in-process, one run.

Usage::

    python scripts/benchmark_new_products.py [--items 2000] [--users 20000] [--new 1000]
        [--repeat 200] [--json FILE]

Builds the synthetic bundle of ``benchmark_live_recommend.py`` (the demo shop's shapes), attaches
live state fed from a real SQLite store, and times uncached ``Engine.recommend`` (caches cleared
before each call) for a trainable, a cold and an unknown user, then ``similar_items`` of a known
product (content), before and after ``--new`` products are PUT (embedded by a stand-in encoder:
the request path's cost depends on shapes, not values). Also reports how long applying the PUTs
took (the write path: replay or tail embeds each product once).

Targets: with ``events.max_new_products`` new products served, a /recommend costs at most 1.3x
the same request without them, an uncached /similar_items at most 2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.config.serving import EventsSettings, ServingSettings  # noqa: E402
from recommender.events import SqliteEventStore, validate_product_update  # noqa: E402
from recommender.serving import Engine, LiveFeed, LiveState, ServingCaches  # noqa: E402
from scripts._client import report_targets  # noqa: E402
from scripts.benchmark_live_recommend import synthetic_bundle  # noqa: E402

TARGET = 1.3  # /recommend: the bar for live state (the catalogue here grows by half)
SIMILAR_TARGET = 2.0  # /similar_items uncached (sub-ms; its neighbour list is cached per product)


def random_embedder(dim: int, seed: int = 1) -> Callable[[Sequence[str]], np.ndarray]:
    rng = np.random.default_rng(seed)

    def embed(texts: Sequence[str]) -> np.ndarray:
        vectors = rng.normal(size=(len(texts), dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return embed


def interleaved_ms(
    calls: Sequence[tuple[Engine, Callable[[], object]]], repeat: int
) -> list[float]:
    """Median milliseconds of each uncached call, the calls alternated within every round so
    that machine noise hits them alike."""
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for position, (engine, call) in enumerate(calls):
            engine.caches.clear()
            started = time.perf_counter()
            call()
            samples[position].append((time.perf_counter() - started) * 1000)
    return [statistics.median(values) for values in samples]


def live_engine(bundle, settings: ServingSettings, store: SqliteEventStore) -> Engine:
    assert bundle.model.embeddings is not None
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    embed = random_embedder(bundle.model.embeddings.shape[1])
    live = LiveState(bundle, settings.events, embed=embed)
    feed = LiveFeed(store, settings.events)
    feed.attach(live)
    engine.live, engine.feed = live, feed
    return engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    events = EventsSettings(max_new_products=args.new, popularity_refresh_seconds=0)
    settings = ServingSettings(events=events)
    bundle = synthetic_bundle(args.items, args.users)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SqliteEventStore(Path(tmp) / "plain.sqlite3", synchronous="NORMAL") as plain_store,
        SqliteEventStore(Path(tmp) / "new.sqlite3", synchronous="NORMAL") as store,
    ):
        plain = live_engine(bundle, settings, plain_store)
        served = live_engine(bundle, settings, store)
        updates = [
            validate_product_update(
                f"new-{i}",
                {"name": f"new product {i}", "brand": f"b{i % 40}", "category": "c1", "price": 1e5},
                replace=True,
            )
            for i in range(args.new)
        ]
        store.append_products(updates)
        started = time.perf_counter()
        served.sync_live()
        apply_seconds = time.perf_counter() - started
        assert served.live is not None and served.live.new_items.k == args.new
        users = {
            "trainable": bundle.histories.user_ids[0],
            "cold": bundle.histories.user_ids[-1],
            "unknown": "visitor",
        }
        before: dict[str, float] = {}
        after: dict[str, float] = {}
        names = [*users, "similar (content)"]
        for name in names:
            pair = []
            for engine in (plain, served):
                if name in users:
                    call = partial(engine.recommend, users[name], topk=10)
                else:
                    call = partial(engine.similar_items, "p3", 10, V.SIMILARITY_CONTENT)
                pair.append((engine, call))
            before[name], after[name] = interleaved_ms(pair, args.repeat)
    print(
        f"{args.items} items, {args.users} users, {args.new} new products, "
        f"median of {args.repeat} uncached calls"
    )
    print(f"applying {args.new} PUTs (embed + snapshot): {apply_seconds * 1000:.0f} ms")
    print(f"{'request':<18} {'no new ms':>10} {'with new ms':>12} ratio")
    ratios = {}
    for name in names:
        ratios[name] = after[name] / before[name]
        print(f"{name:<18} {before[name]:>10.3f} {after[name]:>12.3f} {ratios[name]:.2f}x")
    targets = {}
    for name, ratio in ratios.items():
        bar = TARGET if name in users else SIMILAR_TARGET
        targets[f"{name}: <= {bar}x with {args.new} new products"] = ratio <= bar
    report = {
        "items": args.items,
        "new_products": args.new,
        "apply_seconds": apply_seconds,
        "before_ms": before,
        "after_ms": after,
        "ratios": ratios,
    }
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
