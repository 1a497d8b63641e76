"""BPR with uniform negatives: the numba SGD against the numpy mini-batches it replaced.

Usage::

    python scripts/benchmark_bpr.py [--processed data/processed] [--interactions 100000]
        [--epochs 400] [--old-epochs 3] [--quality-epochs 200] [--skip-quality] [--json out.json]

Speed: one seeded synthetic users × items matrix of ``--interactions`` positives (Zipf item
popularity, 64 factors as in ``config/training.yaml``), BLAS and numba on one thread. The new fit
runs ``--epochs`` epochs; the old one ``--old-epochs`` (it takes ~4 s an epoch on 100K, so 400
would be ~30 min) and its time per epoch is what the ratio uses. Times are CPU seconds of this
process (one thread: equal to wall time on an idle core, and still meaningful on a shared one;
wall times are printed too). The numba compile is done once before timing (then cached on disk).

Quality: on the prepared shop in ``--processed`` (``recsys build`` / ``prepare`` output), both fit
``train`` with the same params and seed (``bpr.params`` of ``config/training.yaml``,
``--quality-epochs`` epochs) and are scored by CF-only NDCG@10 of the validation trainable users;
then both refit on ``train + val`` and are scored on test.

Targets (issue 13): new ≥ 20× faster per epoch; ``--epochs`` (400) over ``--interactions`` (100K)
in < 60 s; validation NDCG@10 of the new fit ≥ the old one − 0.005 (equal quality).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.config import load_training_settings  # noqa: E402
from recommender.config.training import BPRParams  # noqa: E402
from recommender.data import load_processed  # noqa: E402
from recommender.data.matrix import binarise, user_item_matrix  # noqa: E402
from recommender.evaluation.evaluator import mean_metric, tie_order  # noqa: E402
from recommender.evaluation.protocol import build_evaluation_set, history_splits  # noqa: E402
from recommender.scoring.factors import FactorModel  # noqa: E402
from recommender.training.bpr_reference import fit_uniform_minibatch  # noqa: E402
from recommender.training.bpr_uniform import fit_uniform  # noqa: E402
from recommender.training.tuning import cf_ranker  # noqa: E402
from scripts._client import report_targets  # noqa: E402

SPEEDUP_TARGET = 20.0
SECONDS_TARGET = 60.0
QUALITY_TOLERANCE = 0.005


def synthetic_matrix(interactions: int, seed: int = 0) -> sp.csr_matrix:
    """~``interactions`` distinct positives: users with 5 items on average, Zipf-popular items."""
    rng = np.random.default_rng(seed)
    n_users = max(1, interactions // 5)
    n_items = max(10, interactions // 50)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=interactions, p=weights / weights.sum())
    users = rng.integers(0, n_users, size=interactions)
    matrix = sp.csr_matrix(
        (np.ones(interactions, np.float32), (users, items)), shape=(n_users, n_items)
    )
    return binarise(matrix)


def _new(binary: sp.csr_matrix, params: BPRParams, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    return fit_uniform(
        binary,
        params.factors,
        params.learning_rate,
        params.regularization,
        epochs,
        params.random_state,
    )


def _old(binary: sp.csr_matrix, params: BPRParams, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    return fit_uniform_minibatch(binary, params.model_copy(update={"iterations": epochs}))


def _timed(fit: Any, *args: Any) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of ``fit(*args)``; one thread, so on an idle
    core they agree, and on a shared machine the CPU time is the one that means something."""
    cpu, wall = time.process_time(), time.perf_counter()
    fit(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def speed(args: argparse.Namespace, params: BPRParams) -> dict[str, Any]:
    binary = synthetic_matrix(args.interactions)
    _new(binary[:50], params, 1)  # compile (or load the cached compile) outside the timing
    new_seconds, new_wall = _timed(_new, binary, params, args.epochs)
    old_seconds, old_wall = _timed(_old, binary, params, args.old_epochs)
    out = {
        "interactions": int(binary.nnz),
        "shape": list(binary.shape),
        "factors": params.factors,
        "new_epochs": args.epochs,
        "new_seconds": round(new_seconds, 3),
        "new_wall_seconds": round(new_wall, 3),
        "old_wall_seconds": round(old_wall, 3),
        "new_seconds_per_epoch": new_seconds / args.epochs,
        "old_epochs": args.old_epochs,
        "old_seconds_per_epoch": old_seconds / args.old_epochs,
    }
    out["speedup"] = out["old_seconds_per_epoch"] / out["new_seconds_per_epoch"]
    print(
        f"speed on {binary.nnz} interactions {binary.shape}, {params.factors} factors: "
        f"old {out['old_seconds_per_epoch']:.3f} s/epoch ({args.old_epochs} epochs), "
        f"new {out['new_seconds_per_epoch']:.4f} s/epoch ({args.epochs} epochs in "
        f"{new_seconds:.1f} s): {out['speedup']:.1f}x (CPU seconds; wall: old {old_wall:.1f} s, "
        f"new {new_wall:.1f} s)"
    )
    return out


def _ndcg(
    factors: tuple[np.ndarray, np.ndarray], data: Any, stage: str, params: BPRParams
) -> float:
    model = FactorModel(V.MODEL_BPR, factors[0], factors[1], params, 1.0, 0.0)
    users = build_evaluation_set(data, stage)
    ties = tie_order(len(data.item_ids), 42)
    return mean_metric(cf_ranker(model), users, V.SEGMENT_TRAINABLE, "ndcg@10", ties)


def quality(args: argparse.Namespace, params: BPRParams) -> dict[str, Any]:
    data = load_processed(args.processed)
    out: dict[str, Any] = {"processed": str(args.processed), "epochs": args.quality_epochs}
    for stage in V.STAGES:
        binary = binarise(user_item_matrix(data, history_splits(stage)))
        for name, fit in (("old", _old), ("new", _new)):
            cpu = time.process_time()
            factors = fit(binary, params, args.quality_epochs)
            seconds = time.process_time() - cpu
            value = _ndcg(factors, data, stage, params)
            out[f"{stage}_{name}_ndcg@10"] = value
            out[f"{stage}_{name}_seconds"] = round(seconds, 2)
            print(
                f"{stage:>10} {name}: ndcg@10 {value:.4f} ({binary.nnz} interactions, "
                f"{args.quality_epochs} epochs in {seconds:.1f} s)"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed", type=Path, default=Path(V.DEFAULT_PROCESSED_DIR))
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--old-epochs", type=int, default=3)
    parser.add_argument("--quality-epochs", type=int, default=None, help="default: bpr.params")
    parser.add_argument("--skip-quality", action="store_true", help="speed only")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    params = load_training_settings(args.config_dir).bpr.params
    args.quality_epochs = args.quality_epochs or params.iterations
    report: dict[str, Any] = {"speed": speed(args, params)}
    s = report["speed"]
    projected = s["new_seconds_per_epoch"] * 400 * 100_000 / max(s["interactions"], 1)
    targets = {
        f"new is >= {SPEEDUP_TARGET:.0f}x faster per epoch (got {s['speedup']:.1f}x)": s["speedup"]
        >= SPEEDUP_TARGET,
        f"400 epochs over 100K interactions < {SECONDS_TARGET:.0f} s "
        f"(got {projected:.1f} s, scaled from {s['interactions']})": projected < SECONDS_TARGET,
    }
    if not args.skip_quality:
        q = report["quality"] = quality(args, params)
        new, old = q["validation_new_ndcg@10"], q["validation_old_ndcg@10"]
        targets[f"validation ndcg@10 new {new:.4f} >= old {old:.4f} - {QUALITY_TOLERANCE}"] = (
            new >= old - QUALITY_TOLERANCE
        )
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    raise SystemExit(main())
