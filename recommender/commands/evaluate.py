"""``recsys evaluate [--model ID]``: the test table of a registered model (default: current).

A model registered with ``deployed_fit: all`` was refit on the test split too, so scoring its
factors on test would be a leak: its table is the one saved at build time (``evaluation.json``,
the train + val fit with the same hyperparameters), shown with a note saying so.
"""

from __future__ import annotations

import argparse
import json
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
    if loaded.metadata.get("deployed_fit") == V.FIT_ALL:
        report = json.loads((Path(loaded.record.path) / V.EVALUATION_FILE).read_text("utf-8"))
        print(
            f"note: {loaded.record.model_id} is deployed as a refit on all interactions; its test "
            f"table is the build-time evaluation of the {V.FIT_TRAIN_VAL} fit (same "
            "hyperparameters), not recomputed on test data the factors have seen."
        )
    else:
        report = evaluate_registered(data, loaded, settings)
    output = Path(args.output or f"reports/evaluation-{loaded.record.model_id}.json")
    atomic_write_json(output, report)
    print(format_table(report))
    print(f"model {loaded.record.model_id}; report written to {output}")
    return 0
