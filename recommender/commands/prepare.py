"""``recsys prepare``: raw source -> validated, split, versioned files in data/processed."""

from __future__ import annotations

import argparse
from typing import Any

from recommender import vocabulary as V
from recommender.commands.event_source import add_events_argument, read_source_events
from recommender.config import load_training_settings
from recommender.data.preparation import prepare
from recommender.data.sources import SOURCES

HELP = (
    "Validate, deduplicate and split a raw source into data/processed "
    "(interactions.parquet, enriched_products.parquet, mappings, popular items, data_stats.json)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # no argparse `choices`: an unknown source gets the one-line project error listing valid ones
    parser.add_argument(
        "--source", required=True, metavar="|".join(SOURCES), help="raw data layout of --input"
    )
    parser.add_argument("--input", required=True, help="directory with the raw files")
    parser.add_argument(
        "--out",
        default=V.DEFAULT_PROCESSED_DIR,
        help="processed data directory (default: %(default)s)",
    )
    parser.add_argument(
        "--config-dir", default=None, help="directory of training.yaml (default: config)"
    )
    add_events_argument(parser)


def run(args: argparse.Namespace) -> int:
    training = load_training_settings(args.config_dir)
    events = read_source_events(args.events, args.config_dir, training.event_input)
    stats = prepare(args.source, args.input, args.out, training.data, events)
    print(
        f"wrote {args.out} (data_version {stats['data_version']}): {stats['n_products']} products, "
        f"{stats['n_users']} users ({stats['trainable_users']} trainable, "
        f"{stats['trainable_share']:.1%}), {stats['n_interactions']} interactions, "
        f"dropped bad rows {stats['dropped_rows'] or 'none'}"
        + (f", merged rows {stats['merged_rows']}" if stats.get("merged_rows") else "")
        + events_line(stats)
    )
    return 0


def events_line(stats: dict[str, Any]) -> str:
    """What the build read from the event store, for the summary line (empty without one)."""
    events = stats.get("events")
    if not events:
        return ""
    products = events["products"]
    return (
        f"; event store up to seq {events['latest_seq']}: {events['interactions']} interactions, "
        f"{products['added']} new and {products['updated']} changed products"
    )
