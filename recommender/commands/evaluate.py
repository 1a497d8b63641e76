"""``recsys evaluate [--model ID]``: the test table of a registered model (default: current)."""

from __future__ import annotations

import argparse
from pathlib import Path

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.data import load_processed
from recommender.evaluation.registered import evaluate_registered
from recommender.evaluation.report import format_table
from recommender.registry import Registry
from recommender.storage import atomic_write_json

HELP = (
    "Evaluate a registered model (default: the current one) on the test split against every "
    "baseline; prints the table and writes the JSON report (protocol included)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model id (default: the current model)")
    parser.add_argument(
        "--processed", default=V.DEFAULT_PROCESSED_DIR, help="processed data (default: %(default)s)"
    )
    parser.add_argument(
        "--registry", default=V.DEFAULT_REGISTRY_DIR, help="registry (default: %(default)s)"
    )
    parser.add_argument(
        "--output", default=None, help="JSON report path (default: reports/evaluation-<id>.json)"
    )
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")


def run(args: argparse.Namespace) -> int:
    settings = load_training_settings(args.config_dir)
    data = load_processed(args.processed)
    loaded = Registry(args.registry).load(args.model, expected_data_version=data.data_version)
    report = evaluate_registered(data, loaded, settings)
    output = Path(args.output or f"reports/evaluation-{loaded.record.model_id}.json")
    atomic_write_json(output, report)
    print(format_table(report))
    print(f"model {loaded.record.model_id}; report written to {output}")
    return 0
