"""The Optuna search against a wide exhaustive reference grid and against today's fixed grids.

Usage::

    python scripts/benchmark_tuning.py --processed data/processed [--models als,bpr,ease]
        [--trials 40] [--json out.json]

On the prepared shop in ``--processed`` (``recsys build`` / ``prepare`` output: the demo shop, the
dense demo variant ``demo-data --profile dense``, or Hasaki), for each CF model:

* ``search``: the configured Optuna study (``config/training.yaml``, ``--trials`` per study);
* ``reference``: every point of :data:`REFERENCE_GRID` (wide, log-spaced, exhaustive);
* ``today``: every point of :data:`TODAY_GRID` (the fixed grids this search replaced).

Each is scored by CF-only validation NDCG@10 of trainable users (fit on ``train``); the chosen
point of ``search`` and of ``today`` are refit on ``train + val`` and scored on test. Targets
(issue 13): search's validation NDCG@10 ≥ 99% of the reference grid's best, and its test NDCG@10
≥ today's. Times are wall seconds on this machine (the study runs ``tuning.n_jobs`` trials at once).
Beside each target: the paired per-user difference (search − reference on validation, search −
today on test) with its 95% bootstrap interval, which says whether a MISS is more than noise
(Hasaki: 538 validation and 1,174 test users).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.config import load_training_settings  # noqa: E402
from recommender.config.training import TrainingSettings  # noqa: E402
from recommender.data import load_processed  # noqa: E402
from recommender.data.matrix import user_item_matrix  # noqa: E402
from recommender.evaluation.evaluator import (  # noqa: E402
    paired_difference,
    per_user_metric,
    tie_order,
)
from recommender.evaluation.protocol import build_evaluation_set, history_splits  # noqa: E402
from recommender.training.tuning import OBJECTIVE, cf_ranker, fit_model, tune  # noqa: E402
from scripts._client import report_targets  # noqa: E402

TOLERANCE = 0.01
BOOTSTRAP = 1000  # resamples of the paired differences' 95% intervals
REFERENCE_GRID: dict[str, dict[str, list[Any]]] = {
    V.MODEL_ALS: {
        "factors": [8, 16, 32, 64, 128, 256],
        "regularization": [0.1, 1.0, 10.0, 30.0, 100.0, 300.0],
        "alpha": [1.0, 3.0, 10.0, 30.0],
    },
    V.MODEL_BPR: {
        "negative_sampling": ["uniform", "popularity"],
        "factors": [16, 64, 128],
        "learning_rate": [0.01, 0.05, 0.2],
        "iterations": [200, 400, 800],
    },
    V.MODEL_EASE: {"regularization": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]},
}
TODAY_GRID: dict[str, dict[str, list[Any]]] = {  # config/training.yaml before the search
    V.MODEL_ALS: {
        "factors": [8, 16, 32],
        "regularization": [10.0, 30.0, 100.0],
        "alpha": [10.0, 30.0],
    },
    V.MODEL_BPR: {
        "negative_sampling": ["uniform", "popularity"],
        "learning_rate": [0.05, 0.2],
        "iterations": [200, 400],
    },
    V.MODEL_EASE: {"regularization": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]},
}


def _difference(difference: dict[str, float]) -> str:
    return (
        f"paired difference {difference['mean']:+.4f} "
        f"[{difference['low']:+.4f}, {difference['high']:+.4f}]"
    )


def _with(settings: TrainingSettings, model_type: str, **update: Any) -> TrainingSettings:
    section = getattr(settings, model_type)
    return settings.model_copy(update={model_type: section.model_copy(update=update)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processed", default=V.DEFAULT_PROCESSED_DIR)
    parser.add_argument("--models", default=",".join(V.MODEL_TYPES))
    parser.add_argument("--trials", type=int, default=None, help="default: tuning.trials")
    parser.add_argument("--config-dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = load_training_settings(args.config_dir)
    if args.trials:
        settings = settings.model_copy(
            update={"tuning": settings.tuning.model_copy(update={"trials": args.trials})}
        )
    data = load_processed(args.processed)
    validation = build_evaluation_set(data, V.STAGE_VALIDATION)
    test = build_evaluation_set(data, V.STAGE_TEST)
    ties = tie_order(len(data.item_ids), settings.seed)
    train = user_item_matrix(data, history_splits(V.STAGE_VALIDATION))
    train_val = user_item_matrix(data, history_splits(V.STAGE_TEST))
    targets: dict[str, bool] = {}
    report: dict[str, Any] = {"processed": args.processed, "models": {}}
    for model_type in args.models.split(","):
        row: dict[str, Any] = {}
        users: dict[str, dict[str, np.ndarray]] = {}
        for name, method, grid in (
            ("search", "optuna", {}),
            ("reference", "grid", REFERENCE_GRID[model_type]),
            ("today", "grid", TODAY_GRID[model_type]),
        ):
            variant = settings.model_copy(
                update={"tuning": settings.tuning.model_copy(update={"method": method})}
            )
            if method == "grid":
                variant = _with(variant, model_type, grid=grid)
            clock = time.perf_counter()
            tuned = tune(model_type, train, validation, variant, ties)
            seconds = time.perf_counter() - clock
            refit = fit_model(model_type, train_val, tuned.params)
            fit = fit_model(model_type, train, tuned.params)
            users[name] = {
                "validation": per_user_metric(
                    cf_ranker(fit), validation, V.SEGMENT_TRAINABLE, OBJECTIVE, ties
                ),
                "test": per_user_metric(
                    cf_ranker(refit), test, V.SEGMENT_TRAINABLE, OBJECTIVE, ties
                ),
            }
            row[name] = {
                "validation": tuned.score,
                "test": float(users[name]["test"].mean()),
                "seconds": round(seconds, 1),
                "points": len(tuned.points),
                "params": tuned.params.model_dump(),
            }
            print(
                f"{model_type:5s} {name:9s} validation {OBJECTIVE} {row[name]['validation']:.4f} "
                f"test {row[name]['test']:.4f} ({row[name]['points']} points, {seconds:.1f}s) "
                f"{row[name]['params']}",
                flush=True,
            )
        differences = {
            stage: paired_difference(
                users["search"][stage], users[rival][stage], BOOTSTRAP, settings.seed
            )
            for stage, rival in (("validation", "reference"), ("test", "today"))
        }
        row["differences"] = differences
        report["models"][model_type] = row
        best = row["reference"]["validation"]
        targets[
            f"{model_type}: search validation {row['search']['validation']:.4f} >= 99% of the "
            f"reference grid's {best:.4f} ({_difference(differences['validation'])})"
        ] = row["search"]["validation"] >= (1 - TOLERANCE) * best
        targets[
            f"{model_type}: search test {row['search']['test']:.4f} >= today's grid "
            f"{row['today']['test']:.4f} ({_difference(differences['test'])})"
        ] = row["search"]["test"] >= row["today"]["test"]
    print(f"command: python scripts/benchmark_tuning.py --processed {args.processed}")
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    raise SystemExit(main())
