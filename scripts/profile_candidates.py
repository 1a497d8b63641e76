"""Where the engine's time goes for uncached known users on the ANN candidate path.

One process, one thread: the same users as ``scripts/benchmark_candidates.py`` (seeded), every
request a profile-cache miss, after as many other users (not timed) to map the pages a warm
server has mapped. Prints CPU ms per user of the whole ``Engine.recommend`` and of each timed
step (wrapped functions: the index searches, the candidate union and its scoring, the engine's
ranking and MMR), then the top of a cProfile by own time::

    .venv/bin/python scripts/profile_candidates.py --processed /tmp/shop/processed \\
        --registry /tmp/shop/cf --users 200
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import json
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from recommender import vocabulary as V  # noqa: E402
from recommender.scoring import ann, candidates  # noqa: E402
from recommender.serving import Engine, ServingCaches, user_scorer  # noqa: E402
from recommender.serving import engine as engine_module  # noqa: E402
from recommender.serving.bundle import load_bundle  # noqa: E402
from scripts.benchmark_candidates import sample_users, settings_for  # noqa: E402

TOTALS: dict[str, float] = defaultdict(float)

# (owner, attribute, label): functions whose CPU time is summed per label
STEPS: list[tuple[Any, str, str]] = [
    (ann.VectorIndex, "search", "hnsw search"),
    (candidates, "candidate_scores", "candidate_scores (all)"),
    (candidates, "candidate_signals", "candidate union + its signals"),
    (candidates, "_similarity_sums", "item-kNN sums (sparse)"),
    (candidates, "combine", "normalise + blend over the union"),
    (user_scorer.UserScorer, "score", "scorer.score (+ rounding)"),
    (engine_module.Engine, "_candidates", "engine top-width over (n,)"),
    (engine_module.Engine, "_pick", "MMR + chosen"),
]


def _timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            TOTALS[label] += time.process_time() - started

    return wrapper


def _install_timers() -> None:
    for owner, name, label in STEPS:
        function = getattr(owner, name, None)
        if function is not None:
            setattr(owner, name, _timed(label, function))
    # score_users imported candidate_scores by name: wrap that binding too
    from recommender.scoring import scorer

    scorer.candidate_scores = candidates.candidate_scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path(V.DEFAULT_PROCESSED_DIR))
    parser.add_argument("--registry", type=Path, default=Path(V.DEFAULT_REGISTRY_DIR))
    parser.add_argument("--users", type=int, default=200, help="distinct users per segment")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top", type=int, default=25, help="cProfile rows printed")
    for name in ("--per-source", "--expansion-search", "--connectivity", "--cf-min-factors"):
        parser.add_argument(name, type=int, default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--per-signal", default=None, help="e.g. content=100,cf=200")
    args = parser.parse_args()
    settings = settings_for(args, "ann")
    bundle = load_bundle(settings)
    if bundle.model.candidates is None:
        raise SystemExit("the ANN path is not available for this model (see the log)")
    _install_timers()
    gc.collect()
    gc.freeze()
    report: dict[str, Any] = {}
    for segment, group in sample_users(bundle, 2 * args.users, args.seed).items():
        users, warm = group[: args.users], group[args.users :]
        engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
        options = engine.options()
        for user in warm or users[:1]:  # map the pages a request touches (as a warm server)
            engine.recommend(user, options)
        engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
        TOTALS.clear()
        profile = cProfile.Profile(time.process_time)
        with threadpool_limits(1):
            started = time.process_time()
            for user in users:
                engine.recommend(user, options)
            total = time.process_time() - started
            steps = {k: round(v * 1000 / len(users), 3) for k, v in TOTALS.items()}
            engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
            profile.enable()
            for user in users:
                engine.recommend(user, options)
            profile.disable()
        report[segment] = {"users": len(users), "ms_per_user": round(total * 1000 / len(users), 3)}
        report[segment]["steps_ms_per_user"] = steps
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
        print(f"==== {segment}: cProfile (own time) of a second pass, fresh caches")
        print("\n".join(out.getvalue().splitlines()[: args.top + 12]))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
