"""Simulate an A/B experiment on a held-out period: popularity-only (control) vs the hybrid.

Usage::

    python scripts/simulate_experiment.py [--source hasaki] [--input ../shared/data/hasaki_vn]
        [--fraction 0.2] [--workdir DIR] [--model-types als] [--config-dir DIR] [--topk 10]
        [--json FILE]

The replay machinery of ``evaluate --replay`` (:mod:`recommender.replay`) builds a model on the
data before the cut-off T and streams the rest, in time order, through the live state; before
each positive event on an item new to its user, both rankers give that user's top-K: the hybrid
(the live engine as served, no MMR) and popularity only (``rerank_weights={"popularity": 1}``).
``--control frozen`` compares the hybrid with the model without live events instead (a large,
known difference: the verdict must find it). ``--control model`` runs a model-vs-model
experiment: the registry's current model as served (control, ``current``) against another
registered model (``challenger``, a variant with ``model_id``, bound to the same live state as
the service binds it); it builds every model type (``--model-types all``) unless the workdir
has them. A reused ``--workdir`` that already holds the pre-T build skips the build.

*Offline*, both lists are scored on every event: hit rate (the next real item in the top-K),
with a paired 95% interval of the difference. *Online*, each user is assigned to one variant by
the service's own assignment (:func:`recommender.experiments.assign`, 50/50); the list of the
user's variant is an impression and a simulated click happens when it holds the user's next real
item. Impressions and clicks go through the service's ledger and the verdict is the admin
table's (:meth:`ExperimentRunner.report`). The script prints both and ``MATCH`` when the online
verdict agrees with the offline difference: the online 95% interval of the CTR difference
contains the offline difference, and a significant online result has the offline sign.
Exit code 0 on MATCH, 1 on MISMATCH.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.commands.train import model_types  # noqa: E402
from recommender.config import load_serving_settings, load_training_settings  # noqa: E402
from recommender.config.experiments import (  # noqa: E402
    ExperimentSpec,
    ExperimentsSettings,
    VariantSpec,
)
from recommender.config.serving import PathsSettings, ServingSettings  # noqa: E402
from recommender.events import Event, SqliteEventStore  # noqa: E402
from recommender.experiments import ExperimentLedger, ExperimentRunner, assign  # noqa: E402
from recommender.registry import Registry  # noqa: E402
from recommender.replay import interactions_to_events, replay_events  # noqa: E402
from recommender.replay.cutoff import PROCESSED, REGISTRY, build_before, split_at_fraction  # noqa: E402
from recommender.replay.stream import FROZEN, LIVE, LIVE_POPULARITY, POPULARITY_ONLY  # noqa: E402
from recommender.serving import load_bundle  # noqa: E402

CONTROLS = {  # --control: the control's spec (as the service would configure it) and ranker
    "popularity": (VariantSpec(name="popularity", control=True, weights=POPULARITY_ONLY,
                               rerank=False), LIVE_POPULARITY),
    # the model without live events (a sanity check with a large, known difference)
    "frozen": (VariantSpec(name="frozen", control=True, rerank=False), FROZEN),
    # model vs model: the current model as served against another registered one
    "model": (VariantSpec(name="current", control=True, rerank=False), LIVE),
}  # fmt: skip
CHALLENGER = "challenger"


def experiment(control: str, challenger: str | None = None) -> ExperimentSpec:
    """The simulated experiment, 50/50 by user: ``control`` vs the hybrid as served, or (model)
    the current model vs the ``challenger`` model id."""
    if control == "model":
        treatment = VariantSpec(name=CHALLENGER, model_id=challenger, rerank=False)
        name = "current-vs-challenger"
    else:
        treatment, name = VariantSpec(name="hybrid", rerank=False), f"{control}-vs-hybrid"
    return ExperimentSpec(name=name, traffic=1.0, variants=[CONTROLS[control][0], treatment])


def _challenger(settings: ServingSettings) -> tuple[str, Any]:
    """Another registered model than the current one, and its bundle."""
    registry = Registry(settings.paths.registry_dir)
    current = registry.current()
    others = [r.model_id for r in registry.list() if current and r.model_id != current.model_id]
    if not others:
        raise SystemExit(
            "--control model needs two registered models: use --model-types all (or a fresh "
            "--workdir)"
        )
    return others[-1], load_bundle(settings, others[-1])


Z95 = 1.959964


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="hasaki")
    p.add_argument("--input", default="../shared/data/hasaki_vn")
    p.add_argument("--fraction", type=float, default=0.2)
    p.add_argument("--workdir", default=None, help="keeps (and reuses) the pre-T build")
    p.add_argument("--model-types", default="als", metavar="als|bpr|all")
    p.add_argument("--config-dir", default=None)
    p.add_argument("--topk", type=int, default=10)
    p.add_argument("--control", choices=sorted(CONTROLS), default="popularity")
    p.add_argument("--json", default=None, help="write the report here")
    return p.parse_args(argv)


def _offline(ranks: list[dict[str, int]], control: str, treatment: str) -> dict[str, Any]:
    """Hit rate of both rankers on every event and the paired difference (treatment - control)."""
    n = len(ranks)
    hybrid = [float(r[LIVE if treatment == "hybrid" else treatment] >= 0) for r in ranks]
    popular = [float(r[CONTROLS[control][1]] >= 0) for r in ranks]
    diffs = [h - p for h, p in zip(hybrid, popular, strict=True)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(var / n)
    return {
        "events": n,
        "hit_rate": {treatment: sum(hybrid) / n, _control_name(control): sum(popular) / n},
        "difference": mean,
        "difference_ci95": [mean - half, mean + half],
    }


def _control_name(control: str) -> str:
    return CONTROLS[control][0].name


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    training = load_training_settings(args.config_dir)
    serving = load_serving_settings(args.config_dir)
    with tempfile.TemporaryDirectory("-abs") as scratch:
        work = Path(args.workdir or scratch)
        split = split_at_fraction(args.source, args.input, args.fraction)
        types = "all" if args.control == "model" else args.model_types
        if not (work / REGISTRY / "registry.json").exists():
            build_before(split, work, training, model_types(types), print)
        settings = serving.model_copy(
            update={
                "paths": PathsSettings(
                    processed_dir=str(work / PROCESSED), registry_dir=str(work / REGISTRY)
                )
            }
        )
        bundle = load_bundle(settings)
        challenger_id, challengers = None, {}
        if args.control == "model":
            challenger_id, other = _challenger(settings)
            challengers = {CHALLENGER: other}
            print(f"model vs model: current {bundle.model_id} vs challenger {challenger_id}")
        store_path = Path(scratch) / "events.sqlite3"
        with SqliteEventStore(store_path, synchronous="NORMAL") as store:
            observations, _counts = replay_events(
                bundle, settings, interactions_to_events(split.after), store, args.topk,
                challengers=challengers,
            )  # fmt: skip
        ledger = ExperimentLedger(Path(scratch) / "ab.sqlite3")
        spec = experiment(args.control, challenger_id)
        treatment = spec.variants[1].name
        ranker = {
            _control_name(args.control): CONTROLS[args.control][1],
            treatment: LIVE if treatment == "hybrid" else CHALLENGER,
        }
        runner = ExperimentRunner(ExperimentsSettings(running=[spec]), ledger)
        item_ids = bundle.catalogue.item_ids
        outcomes = []
        for obs in observations:
            variant = assign(spec, obs.user_id)
            assert variant is not None  # traffic 1.0
            rank = obs.ranks[ranker[variant.name]]
            rid = f"sim-{obs.index}"
            product = str(item_ids[obs.item])
            # attribution needs the product at its position; the other slots stay anonymous
            listed = [f"slot-{i}" for i in range(args.topk)]
            if rank >= 0:
                listed[rank] = product
                outcomes.append((rid, product, obs))
            ledger.record_impression(rid, spec.name, variant.name, listed)
        ledger.flush()
        ledger.record_outcomes(
            (
                Event(f"click-{o.index}", o.user_id, p, V.EVENT_VIEW, o.timestamp,
                      recommendation_id=rid)
                for rid, p, o in outcomes
            ),
            lambda _p: float("nan"),
        )  # fmt: skip
        report = runner.report()[0]
        ledger.close()
    offline = _offline([o.ranks for o in observations], args.control, treatment)
    hybrid = next(r for r in report["variants"] if r["variant"] == treatment)
    test = hybrid["ctr"]["vs_control"]
    low, high = test["difference_ci95"]
    same_sign = (test["difference"] > 0) == (offline["difference"] > 0)
    match = low <= offline["difference"] <= high and (not test["significant"] or same_sign)
    return {
        "control": _control_name(args.control),
        "treatment": treatment,
        "models": {"current": bundle.model_id, "challenger": challenger_id},
        "offline": offline,
        "online": report,
        "match": match,
        "cutoff": split.cutoff,
    }


def _print(result: dict[str, Any]) -> None:
    off, online, treatment = result["offline"], result["online"], result["treatment"]
    print(
        f"offline (both lists on each of {off['events']} held-out events): hit rate {treatment} "
        f"{off['hit_rate'][treatment]:.4f}, {result['control']} "
        f"{off['hit_rate'][result['control']]:.4f}, "
        f"difference {off['difference']:+.4f} "
        f"[{off['difference_ci95'][0]:+.4f}, {off['difference_ci95'][1]:+.4f}]"
    )
    if result["models"]["challenger"]:
        print(f"models: current {result['models']['current']}, challenger "
              f"{result['models']['challenger']}")  # fmt: skip
    print(f"online A/B ({online['experiment']}, 50/50 by user):")
    print(f"{'variant':<12} {'impressions':>11} {'clicks':>7} {'CTR':>7} {'95% CI':>17} "
          f"{'diff vs control':>16} {'p':>8}")  # fmt: skip
    for row in online["variants"]:
        ctr = row["ctr"]
        test = ctr.get("vs_control")
        diff = f"{test['difference']:+.4f}" if test else "control"
        p = f"{test['p_value']:.3g}" if test else ""
        ci = f"[{ctr['ci95'][0]:.4f}, {ctr['ci95'][1]:.4f}]"
        print(
            f"{row['variant']:<12} {row['impressions']:>11} {row['clicks']:>7} "
            f"{ctr['value']:>7.4f} {ci:>17} {diff:>16} {p:>8}"
        )
    hybrid = next(r for r in online["variants"] if r["variant"] == treatment)
    ci = hybrid["ctr"]["vs_control"]["difference_ci95"]
    print(f"online CTR difference 95% CI: [{ci[0]:+.4f}, {ci[1]:+.4f}]")
    print(f"verdict (admin table): {online['verdict']['ctr']}")
    word = "MATCH" if result["match"] else "MISMATCH"
    print(f"{word}: the online verdict {'agrees' if result['match'] else 'disagrees'} with the "
          "offline difference")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    result = simulate(args)
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), "utf-8")
    return 0 if result["match"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
