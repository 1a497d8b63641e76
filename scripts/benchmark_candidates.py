"""Exact scoring against the ANN candidate stage on one shop, in one run.

For a few hundred distinct known users (trainable and cold, every cache cold) prints the engine
CPU time per user of each path (one BLAS thread, as the server runs), their ratio, and the
recall@10 of the served top-10 of the ANN path against the exact one (the issue's target:
>= 0.98), plus the index build/open time. ``--per-source`` / ``--expansion-search`` try other
settings on the same stored index (``--per-signal content=100``: one source's size);
``--also per_source=200,expansion_search=64,content=100`` (repeatable) times more ANN settings
against the same exact rankings in the same run. The report says what ``auto`` chooses for the
catalogue's size. ``--repeat 3`` times every path three times in rotated order and reports
the medians (a loaded machine's noise between consecutive runs is ±30%).

    .venv/bin/python scripts/benchmark_candidates.py --processed data/processed \\
        --registry artifacts/cf --users 300
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
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
    if getattr(args, "per_signal", None):
        candidates["per_signal"] = {
            source: int(size) for source, size in (p.split("=") for p in args.per_signal.split(","))
        }
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
    bundle: ModelBundle, settings: ServingSettings, users: list[str], warm: list[str]
) -> tuple[float, dict[str, list[int]]]:
    """(CPU ms per user, each user's ranked items) with fresh caches: every request a miss.

    ``warm``: other users asked first (not timed), so that the memory-mapped arrays and index
    pages a request touches are mapped, as in a server that has answered traffic; without them
    the first few hundred requests also pay the page faults of the first touches."""
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    options = engine.options()
    for user in warm or users[:1]:  # first-call costs out of the measurement
        engine.recommend(user, options)
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
    variants = [(ann_bundle, ann_settings)]
    for text in args.also or []:
        settings = also_settings(args, text)
        variants.append((load_bundle(settings), settings))
    sampled = sample_users(exact_bundle, args.users + args.warm_users, args.seed)
    for segment, group in sampled.items():
        users, warm = group[: args.users], group[args.users :]
        if not users:
            continue
        paths = [(exact_bundle, exact_settings), *variants]
        times: list[list[float]] = [[] for _ in paths]
        ranked: list[dict[str, list[int]]] = [{} for _ in paths]
        with threadpool_limits(1):
            for turn in range(args.repeat):  # every path once a turn, the order rotated
                for i in [(turn + j) % len(paths) for j in range(len(paths))]:
                    ms, ranked[i] = timed(*paths[i], users, warm)
                    times[i].append(ms)
        medians = [statistics.median(t) for t in times]
        exact_ms, exact_ranked = medians[0], ranked[0]
        results = list(zip(medians[1:], ranked[1:], strict=True))
        ann_ms, ann_ranked = results[0]
        report[segment] = {
            "users": len(users),
            "warm_users": len(warm),
            "repeats": args.repeat,
            "exact_ms_per_user": round(exact_ms, 3),
            "ann_ms_per_user": round(ann_ms, 3),
            "exact_over_ann": round(exact_ms / ann_ms, 2),
            "recall_at_10": round(recall(exact_ranked, ann_ranked, 10), 4),
        }
        for text, (ms, ranked) in zip(args.also or [], results[1:], strict=True):
            report[segment][f"also {text}"] = {
                "ann_ms_per_user": round(ms, 3),
                "exact_over_ann": round(exact_ms / ms, 2),
                "recall_at_10": round(recall(exact_ranked, ranked, 10), 4),
            }
    return report


def also_settings(args: argparse.Namespace, text: str) -> ServingSettings:
    """The ANN settings of ``args`` changed by ``text``: ``per_source=200,content=100,...``
    (a source name sets its ``per_signal`` size)."""
    base = settings_for(args, "ann").candidates.model_dump()
    per_signal = dict(base["per_signal"])
    for part in text.split(","):
        key, value = part.split("=")
        if key in ("cf", "content", "item_similarity", "popularity"):
            per_signal[key] = int(value)
        else:
            base[key] = value if key == "dtype" else int(value)
    base["per_signal"] = per_signal
    paths = {"processed_dir": str(args.processed), "registry_dir": str(args.registry)}
    return ServingSettings.model_validate({"paths": paths, "candidates": base})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path(V.DEFAULT_PROCESSED_DIR))
    parser.add_argument("--registry", type=Path, default=Path(V.DEFAULT_REGISTRY_DIR))
    parser.add_argument("--users", type=int, default=300, help="distinct users per segment")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warm-users", type=int, default=200, help="other users asked first, not timed"
    )
    parser.add_argument("--per-source", type=int, default=None)
    parser.add_argument("--expansion-search", type=int, default=None)
    parser.add_argument(
        "--per-signal", default=None, help="a source's own size, e.g. content=100,cf=200"
    )
    parser.add_argument("--also", action="append", help="more ANN settings, same run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time every path this often (rotated): median"
    )
    parser.add_argument("--connectivity", type=int, default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--cf-min-factors", type=int, default=None)
    print(json.dumps(run(parser.parse_args()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
