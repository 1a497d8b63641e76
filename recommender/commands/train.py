"""``recsys train``: tune ALS/BPR on validation, refit, evaluate on test, register candidates."""

from __future__ import annotations

import argparse
import time

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.data import load_processed
from recommender.errors import InvalidRequestError
from recommender.evaluation.report import format_table
from recommender.registry import Registry
from recommender.training.pipeline import run_training
from recommender.training.publish import register_run
from recommender.training.search import with_budget

HELP = (
    "Tune ALS and/or BPR on the validation split, refit on train+val, evaluate every baseline and "
    "the tuned hybrid on test, and register the models as candidates (see `registry promote`)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="all",
        metavar="als|bpr|ease|all",
        help="model(s) to train (default: all)",
    )
    parser.add_argument(
        "--processed", default=V.DEFAULT_PROCESSED_DIR, help="processed data (default: %(default)s)"
    )
    parser.add_argument(
        "--registry", default=V.DEFAULT_REGISTRY_DIR, help="registry (default: %(default)s)"
    )
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")
    parser.add_argument(
        "--trials",
        default=None,
        metavar="N|full",
        help="trials per tuning study (tuning.method optuna): N, or full = tuning.trials / "
        "side_trials of training.yaml (default: full; build --source demo: tuning.demo_trials)",
    )


def model_types(choice: str) -> tuple[str, ...]:
    """``als`` / ``bpr`` / ``ease`` / ``all`` -> model types; anything else is a one-line error."""
    if choice == "all":
        return V.MODEL_TYPES
    if choice in V.MODEL_TYPES:
        return (choice,)
    raise InvalidRequestError(f"--model {choice!r}: expected one of als, bpr, ease, all")


def run(args: argparse.Namespace) -> int:
    types = model_types(args.model)
    settings = load_training_settings(args.config_dir)
    settings = with_budget(settings, args.trials, demo=False)
    started = time.perf_counter()
    data = load_processed(args.processed)
    result = run_training(data, settings, types, progress=print)
    records = register_run(Registry(args.registry), result, settings)
    print(format_table(result.report))
    for model_type, record in records.items():
        trained = result.models[model_type]
        print(
            f"registered {record.model_id} ({model_type}, candidate): test ndcg@10 trainable "
            f"{_fmt(record.gate_value)}, trained in {trained.training_seconds:.1f}s"
        )
    best = records[result.best].model_id
    print(
        f"best by validation: {best}. Promote it with `python -m recommender registry promote "
        f"{best}` ({time.perf_counter() - started:.1f}s total)"
    )
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
