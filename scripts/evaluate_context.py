"""Context-aware answers on the same-session slice: PASS/MISS against issue 13's targets.

    python scripts/evaluate_context.py [--processed data/processed] [--registry artifacts/cf]
        [--model ID] [--config-dir config] [--output reports/context-<id>.json]

Scores the registered model's test stage with the previous positive as ``context_items``
(:mod:`recommender.evaluation.context`): known users must score at least the full-history
hybrid, anonymous visitors with only that item must beat popularity by >= 50% (NDCG@10).

The model's factors must not have seen the test split: build with ``deployed_fit: train+val``
in ``training.yaml`` (the default ``all`` refits on every interaction), e.g. for Hasaki::

    mkdir -p /tmp/ctx && cp config/*.yaml /tmp/ctx/
    sed -i 's/^deployed_fit: all/deployed_fit: train+val/' /tmp/ctx/training.yaml
    python -m recommender build --source hasaki --input ../shared/data/hasaki_vn --events none \\
        --processed /tmp/ctx/processed --registry /tmp/ctx/cf --config-dir /tmp/ctx
    python scripts/evaluate_context.py --processed /tmp/ctx/processed --registry /tmp/ctx/cf \\
        --config-dir /tmp/ctx

Exit status 0 when every check passes under the realistic protocol (the headline), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.data import load_processed
from recommender.evaluation.context import evaluate_context, format_context_report
from recommender.evaluation.protocol import PROTOCOL_REALISTIC, build_evaluation_set
from recommender.evaluation.registered import served_model
from recommender.registry import Registry
from recommender.serving.live_state import trainable_fold_in
from recommender.storage import atomic_write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path("data/processed"))
    parser.add_argument("--registry", type=Path, default=Path("artifacts/cf"))
    parser.add_argument("--model", default=None, help="model id (default: the current model)")
    parser.add_argument("--config-dir", type=Path, default=None, help="directory of training.yaml")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = load_training_settings(args.config_dir)
    data = load_processed(args.processed)
    loaded = Registry(args.registry).load(args.model, expected_data_version=data.data_version)
    if loaded.metadata.get("deployed_fit") == V.FIT_ALL:
        print(
            f"error: {loaded.record.model_id} is deployed as a refit on all interactions: its "
            "factors have seen the test split. Build with `deployed_fit: train+val` in "
            "training.yaml (see this script's docstring).",
            file=sys.stderr,
        )
        return 2
    model, hybrid = served_model(data, loaded)
    test = build_evaluation_set(data, V.STAGE_TEST)
    fold = trainable_fold_in(None, loaded.metadata)  # as events.trainable_fold_in: null serves
    report = evaluate_context(model, hybrid, test, settings.evaluation, fold)
    report["model_id"] = loaded.record.model_id
    output = args.output or Path(f"reports/context-{loaded.record.model_id}.json")
    atomic_write_json(output, report)
    print(format_context_report(report))
    print(f"model {loaded.record.model_id}; report written to {output}")
    checks = report["protocols"][PROTOCOL_REALISTIC]["checks"]
    return 0 if all(check["passed"] for check in checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
