"""One request's own path against the general path, per uncached known user, in one process.

For ``--users`` trainable and ``--users`` cold users (every cache cold: a fresh engine per
timed pass) prints the engine CPU time per user of ``Engine.recommend`` as it is (``_rank_one``:
under the ANN candidate stage ``_rank_union_one``) and with ``_rank_one`` replaced by the
general path (``_rank_each([user])``, what a request ran before), ``--rounds`` passes in
alternated order, medians and their ratio; every answer of both paths is compared (ids and
score bits) and a difference stops the run. A loaded machine moves consecutive passes by ±30%:
read the ratio.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_one_request.py \\
        --scale --scale-dir /work/scale2 --users 300 --rounds 6
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _scale import add_shop_arguments, resolve_shop  # noqa: E402
from benchmark_candidates import sample_users  # noqa: E402

from recommender.config.serving import ServingSettings  # noqa: E402
from recommender.serving import Engine, ServingCaches  # noqa: E402
from recommender.serving.bundle import ModelBundle, load_bundle  # noqa: E402


def timed(bundle: ModelBundle, settings: ServingSettings, users: list[str], general: bool):
    """(CPU ms per user, answers) of one pass over ``users`` on a fresh engine."""

    def fresh() -> Engine:
        engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
        if general:  # what a request ran before it had a path of its own
            engine._rank_one = lambda user, row, options, frame: engine._rank_each(  # type: ignore[method-assign]
                [user], options
            )[0]
        return engine

    fresh().recommend(users[-1])  # first-call costs out of the measurement
    engine = fresh()
    started = time.process_time()
    answers = [engine.recommend(user) for user in users]
    return (time.process_time() - started) * 1000 / len(users), answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shop_arguments(parser)
    parser.add_argument("--users", type=int, default=300, help="users per segment")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    resolve_shop(args)
    settings = ServingSettings.model_validate(
        {"paths": {"processed_dir": str(args.processed), "registry_dir": str(args.registry)}}
    )
    bundle = load_bundle(settings)
    gc.collect()
    gc.freeze()  # as the server does after a load
    load_before = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {"candidate_stage": bundle.model.candidates is not None}
    for segment, users in sample_users(bundle, args.users, args.seed).items():
        own: list[float] = []
        general: list[float] = []
        for r in range(args.rounds):
            answers = {}
            for is_general in (False, True) if r % 2 else (True, False):
                ms, answers[is_general] = timed(bundle, settings, users, is_general)
                (general if is_general else own).append(ms)
            for a, b in zip(answers[False], answers[True], strict=True):
                if (a.ranked.indices, a.ranked.scores) != (b.ranked.indices, b.ranked.scores):
                    raise SystemExit(f"{a.user_id}: the paths answer differently")
        report[segment] = {
            "users": len(users),
            "own_path_ms": round(statistics.median(own), 4),
            "general_path_ms": round(statistics.median(general), 4),
            "ratio": round(statistics.median(own) / statistics.median(general), 3),
            "rounds_own": [round(x, 3) for x in own],
            "rounds_general": [round(x, 3) for x in general],
        }
    after = [round(x, 2) for x in os.getloadavg()]
    report["load_average_1_5_15"] = {"before": load_before, "after": after}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
