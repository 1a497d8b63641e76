"""``recsys events stats|compact``: look into the shared event store, and trim it safely.

``compact --model-cutoff`` deletes only what the serving (current) model already contains: events
with a timestamp up to the model's ``data_cutoff`` *and* a sequence number up to its
``events_seq`` (the store position its build read). An event that reached the store after the
build, even with an older timestamp (a backfill), lowers the cut-off so that it stays for the
next build. Product records are never deleted by age: each product's latest state is kept and
only superseded records go (the store's own rule).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from recommender import vocabulary as V
from recommender.commands.event_source import add_events_argument, open_source_store
from recommender.errors import InvalidRequestError
from recommender.events import EventRecord, EventStore, replay
from recommender.registry import Registry

HELP = (
    "Event store tools: `stats` (counts, latest sequence, oldest/newest event) and `compact` "
    "(delete events the serving model already contains: --model-cutoff, or older than --before)."
)
# event times are stored as float seconds, the model's cut-off as a nanosecond timestamp: an event
# at the cut-off may read a few hundred nanoseconds later than it
CUTOFF_TOLERANCE_SECONDS = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="counts, latest seq, oldest/newest event timestamps")
    compact = sub.add_parser("compact", help="delete events the serving model already contains")
    which = compact.add_mutually_exclusive_group(required=True)
    which.add_argument("--before", metavar="ISO", help="delete events older than this UTC time")
    which.add_argument(
        "--model-cutoff",
        action="store_true",
        help="delete the events the current model was built from (its data_cutoff/events_seq)",
    )
    compact.add_argument(
        "--registry", default=V.DEFAULT_REGISTRY_DIR, help="registry (default: %(default)s)"
    )
    for command in (stats, compact):
        add_events_argument(command)
        command.add_argument("--config-dir", default=None, help="directory of serving_config.yaml")


@dataclass(frozen=True)
class StoreStats:
    """What ``events stats`` prints (one JSON object)."""

    store: str
    latest_seq: int
    events: int
    product_records: int
    oldest_event: str | None
    newest_event: str | None
    events_by_type: dict[str, int]


def store_stats(store: EventStore, where: str) -> StoreStats:
    """Counts and time range of everything in ``store`` (one replay)."""
    events = products = 0
    by_type: dict[str, int] = {}
    oldest, newest = math.inf, -math.inf
    for record in replay(store):
        if isinstance(record, EventRecord):
            events += 1
            by_type[record.event.type] = by_type.get(record.event.type, 0) + 1
            oldest = min(oldest, record.event.timestamp)
            newest = max(newest, record.event.timestamp)
        else:
            products += 1
    return StoreStats(
        where,
        store.latest_seq(),
        events,
        products,
        iso(oldest) if events else None,
        iso(newest) if events else None,
        dict(sorted(by_type.items())),
    )


def model_cutoff(store: EventStore, metadata: dict[str, Any]) -> float:
    """The ``before_timestamp`` that deletes exactly the events a model of ``metadata`` contains."""
    cutoff = metadata.get("data_cutoff")
    if cutoff is None:
        raise InvalidRequestError(
            f"model {metadata.get('model_id')} has no data_cutoff in its metadata (built before "
            "event-store support); rebuild it, or pass --before ISO."
        )
    read_up_to = int(metadata.get("events_seq") or 0)
    before = float(cutoff) + CUTOFF_TOLERANCE_SECONDS
    for record in replay(store, after_seq=read_up_to):  # arrived after the build: keep them all
        if isinstance(record, EventRecord):
            before = min(before, record.event.timestamp)
    return before


def iso(seconds: float) -> str:
    """UTC ISO-8601 of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()


def parse_before(text: str) -> float:
    """Epoch seconds of an ISO-8601 time with a UTC offset (``Z`` accepted)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(
            f"--before {text!r}: not an ISO-8601 time; use e.g. 2026-01-31T00:00:00+00:00."
        ) from None
    if when.tzinfo is None:
        raise InvalidRequestError(
            f"--before {text!r}: add a UTC offset (e.g. +00:00 or Z); a naive time is ambiguous."
        )
    return when.timestamp()


def run(args: argparse.Namespace) -> int:
    store, where = open_source_store(args.events, args.config_dir, required=True)
    assert store is not None  # required=True raises instead
    with store:
        if args.action == "stats":
            print(json.dumps(store_stats(store, where).__dict__, indent=2, ensure_ascii=False))
            return 0
        if args.model_cutoff:
            loaded = Registry(args.registry).load()
            before = model_cutoff(store, loaded.metadata)
            meta = loaded.metadata
            basis = (
                f"model {loaded.record.model_id} (data_cutoff {meta.get('data_cutoff_iso')}, "
                f"events_seq {meta.get('events_seq') or 0})"
            )
        else:
            before = parse_before(args.before)
            basis = "--before"
        result = store.compact(before)
    print(
        f"compacted {where}: {result.events_deleted} events before {iso(before)} deleted "
        f"({basis}), {result.product_records_deleted} superseded product records folded away"
    )
    return 0
