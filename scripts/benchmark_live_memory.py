"""What live state costs in memory for many events, and that the caps bound it.

Usage::

    python scripts/benchmark_live_memory.py [--events 1000000] [--users 100000] [--items 2000]
        [--max-live-items 2000000] [--json report.json]

Applies ``--events`` synthetic events (views / carts / purchases of ``--users`` shoppers on a
synthetic bundle of ``--items`` products, as ``scripts/benchmark_live_recommend.py`` builds it)
to one :class:`LiveState` in store order, then prints the bytes ``LiveState.memory_bytes()``
reports (what ``/stats`` ``events.memory_bytes`` and ``recsys_live_state_bytes`` show) next
to what ``tracemalloc`` measured for the live state, the items held, the users evicted and the
apply rate. Targets: the items held never exceed ``events.max_live_items``; the reported bytes
are within 30% of the measured ones. Exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.config.serving import EventsSettings  # noqa: E402
from recommender.events import Event, EventRecord  # noqa: E402
from recommender.serving import LiveState  # noqa: E402
from scripts._client import report_targets  # noqa: E402
from scripts.benchmark_live_recommend import synthetic_bundle  # noqa: E402

TYPES = np.array(["view", "view", "view", "view", "cart", "purchase"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--max-live-items", type=int, default=EventsSettings().max_live_items)
    parser.add_argument("--max-items-per-user", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    bundle = synthetic_bundle(args.items, 2000)
    settings = EventsSettings(
        max_live_items=args.max_live_items, max_items_per_user=args.max_items_per_user
    )
    rng = np.random.default_rng(0)
    users = rng.zipf(1.2, args.events) % args.users
    products = rng.zipf(1.3, args.events) % args.items
    kinds = TYPES[rng.integers(0, len(TYPES), args.events)]
    now = time.time()
    user_ids = [f"shopper-{u}" for u in range(args.users)]
    product_ids = [f"p{i}" for i in range(args.items)]
    state = LiveState(bundle, settings)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    started = time.perf_counter()
    peak_items = 0
    batch = 5000
    for start in range(0, args.events, batch):
        stop = min(start + batch, args.events)
        state.apply(
            EventRecord(
                seq + 1,
                Event(f"e{seq}", user_ids[users[seq]], product_ids[products[seq]],
                      str(kinds[seq]), now),  # type: ignore[arg-type]
                now,
            )
            for seq in range(start, stop)
        )  # fmt: skip
        peak_items = max(peak_items, state.items_held)
    seconds = time.perf_counter() - started
    state.popularity()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # what stays allocated by the apply loop is the live state (the records were garbage)
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    base_arrays = state.memory_bytes() - state._user_bytes - state.items_held * 8  # noqa: SLF001
    measured = grown + base_arrays  # arrays built in __init__ (before the first snapshot)
    stats = state.stats()
    reported = stats["memory_bytes"]
    print(f"{args.events} events of {args.users} shoppers on {args.items} products")
    print(f"  applied in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
    print(f"  live users {stats['users']:,}, items held {stats['items_held']:,} "
          f"(peak {peak_items:,}, cap {args.max_live_items:,}), users evicted "
          f"{stats['users_evicted']:,}")  # fmt: skip
    print(f"  memory reported {reported / 2**20:.1f} MiB, measured {measured / 2**20:.1f} MiB "
          f"(tracemalloc)")  # fmt: skip
    targets = {
        "items held never above events.max_live_items": peak_items <= args.max_live_items,
        "reported bytes within 30% of measured": abs(reported - measured) <= 0.3 * measured,
    }
    report = {**stats, "peak_items": peak_items, "measured_bytes": measured, "seconds": seconds}
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
