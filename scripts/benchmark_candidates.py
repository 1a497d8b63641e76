"""Exact scoring against the ANN candidate stage on one shop, in one run.

For a few hundred distinct known users (trainable and cold, every cache cold) prints the engine
CPU time per user of each path (one BLAS thread, as the server runs), their ratio, and the
recall@10 of the served top-10 of the ANN path against the exact one (the issue's target:
>= 0.98), plus the index build/open time. ``--per-source`` / ``--expansion-search`` try other
settings on the same stored index; ``--auto`` prints the catalogue size and what ``auto``
chooses there.

    .venv/bin/python scripts/benchmark_candidates.py --processed data/processed \\
        --registry artifacts/cf --users 300
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from recommender import vocabulary as V  # noqa: E402
from recommender.config.serving import CandidateSettings, ServingSettings  # noqa: E402
from recommender.serving import Engine, ServingCaches  # noqa: E402
from recommender.serving.bundle import ModelBundle, load_bundle  # noqa: E402


def settings_for(args: argparse.Namespace, mode: str) -> ServingSettings:
    candidates: dict[str, Any] = {"mode": mode}
    for name in ("per_source", "expansion_search", "connectivity", "dtype", "cf_min_factors"):
        value = getattr(args, name)
        if value is not None:
            candidates[name] = value
    return ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(args.processed), "registry_dir": str(args.registry)},
            "candidates": candidates,
        }
    )


def sample_users(bundle: ModelBundle, count: int, seed: int) -> dict[str, list[str]]:
    """``count`` distinct users of each known segment, seeded."""
    hist = bundle.histories
    groups: dict[str, list[str]] = {V.SEGMENT_TRAINABLE: [], V.SEGMENT_COLD: []}
    rows = list(range(hist.n_users))
    random.Random(seed).shuffle(rows)
    for row in rows:
        segment = hist.segment(row)
        if segment in groups and len(groups[segment]) < count:
            groups[segment].append(hist.user_ids[row])
        if all(len(g) >= count for g in groups.values()):
            break
    return groups


def timed(
    bundle: ModelBundle, settings: ServingSettings, users: list[str]
) -> tuple[float, dict[str, list[int]]]:
    """(CPU ms per user, each user's ranked items) with fresh caches: every request a miss."""
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    options = engine.options()
    engine.recommend(users[0], options)  # first-call costs out of the measurement
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    ranked: dict[str, list[int]] = {}
    started = time.process_time()
    for user in users:
        ranked[user] = list(engine.recommend(user, options).ranked.indices)
    return (time.process_time() - started) * 1000 / len(users), ranked


def recall(exact: dict[str, list[int]], approx: dict[str, list[int]], k: int) -> float:
    hits = [
        len(set(exact[u][:k]) & set(approx[u][:k])) / max(1, min(k, len(exact[u]))) for u in exact
    ]
    return sum(hits) / max(1, len(hits))


def run(args: argparse.Namespace) -> dict[str, Any]:
    exact_settings, ann_settings = settings_for(args, "exact"), settings_for(args, "ann")
    exact_bundle = load_bundle(exact_settings)
    started = time.perf_counter()
    ann_bundle = load_bundle(ann_settings)
    open_s = time.perf_counter() - started
    if ann_bundle.model.candidates is None:
        raise SystemExit("the ANN path is not available for this model (see the log)")
    gc.collect()
    gc.freeze()
    n = exact_bundle.n_items
    report: dict[str, Any] = {
        "products": n,
        "load_ann_bundle_s": round(open_s, 2),
        "auto_chooses": "ann" if CandidateSettings().enabled(n) else "exact",
        "settings": ann_settings.candidates.model_dump(),
    }
    for segment, users in sample_users(exact_bundle, args.users, args.seed).items():
        if not users:
            continue
        with threadpool_limits(1):
            exact_ms, exact_ranked = timed(exact_bundle, exact_settings, users)
            ann_ms, ann_ranked = timed(ann_bundle, ann_settings, users)
        report[segment] = {
            "users": len(users),
            "exact_ms_per_user": round(exact_ms, 3),
            "ann_ms_per_user": round(ann_ms, 3),
            "exact_over_ann": round(exact_ms / ann_ms, 2),
            "recall_at_10": round(recall(exact_ranked, ann_ranked, 10), 4),
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path(V.DEFAULT_PROCESSED_DIR))
    parser.add_argument("--registry", type=Path, default=Path(V.DEFAULT_REGISTRY_DIR))
    parser.add_argument("--users", type=int, default=300, help="distinct users per segment")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-source", type=int, default=None)
    parser.add_argument("--expansion-search", type=int, default=None)
    parser.add_argument("--connectivity", type=int, default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--cf-min-factors", type=int, default=None)
    print(json.dumps(run(parser.parse_args()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
