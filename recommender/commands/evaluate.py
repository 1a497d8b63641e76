"""``recsys evaluate [--model ID]``: the test table of a registered model (default: current), under
the realistic protocol (popularity as of the rebuild period's start; the headline) and the exact
one, each row with its same-session / later slices and each hybrid with its paired difference
to its best single signal.

``recsys evaluate --replay --source S --input DIR [--replay-fraction 0.2]``: the prequential
replay instead (:mod:`recommender.replay`): a model built on the data before a cut-off time,
the rest streamed through the event path; prints the per-segment table and writes the JSON.

A model registered with ``deployed_fit: all`` was refit on the test split too, so scoring its
factors on test would be a leak: its table is the one saved at build time (``evaluation.json``,
the train + val fit with the same hyperparameters), shown with a note saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.config.training import TrainingSettings
from recommender.data import load_processed
from recommender.errors import InvalidRequestError
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
    parser.add_argument(
        "--rebuild-period-days",
        type=float,
        default=None,
        help="realistic protocol: popularity as of the start of this period (default: "
        "evaluation.rebuild_period_days in training.yaml)",
    )
    parser.add_argument(
        "--same-session-hours",
        type=float,
        default=None,
        help="slices: a test positive at most this long after the previous one is same_session "
        "(default: evaluation.same_session_hours in training.yaml)",
    )
    replay = parser.add_argument_group("replay (prequential) evaluation")
    replay.add_argument(
        "--replay",
        action="store_true",
        help="build on the data before a cut-off time, stream the rest as events (see README)",
    )
    replay.add_argument("--source", default=None, metavar="demo|shopee|hasaki|canonical")
    replay.add_argument("--input", default=None, help="directory with the raw files")
    replay.add_argument(
        "--replay-fraction",
        type=float,
        default=0.2,
        help="share of interactions (newest by timestamp) streamed after the cut-off "
        "(default: %(default)s)",
    )
    replay.add_argument(
        "--workdir",
        default=None,
        help="where the pre-cut-off model is built (default: a temporary directory, removed)",
    )
    replay.add_argument("--model-types", default="all", metavar="als|bpr|all")


def run(args: argparse.Namespace) -> int:
    if args.replay:
        return _run_replay(args)
    settings = _with_overrides(load_training_settings(args.config_dir), args)
    data = load_processed(args.processed)
    loaded = Registry(args.registry).load(args.model, expected_data_version=data.data_version)
    if loaded.metadata.get("deployed_fit") == V.FIT_ALL:
        report = json.loads((Path(loaded.record.path) / V.EVALUATION_FILE).read_text("utf-8"))
        print(
            f"note: {loaded.record.model_id} is deployed as a refit on all interactions; its test "
            f"table is the build-time evaluation of the {V.FIT_TRAIN_VAL} fit (same "
            "hyperparameters), not recomputed on test data the factors have seen."
        )
        if args.rebuild_period_days is not None or args.same_session_hours is not None:
            print(
                "note: --rebuild-period-days / --same-session-hours do not apply to a stored "
                "table; it keeps the build's settings (rebuild_period_days "
                f"{report.get('rebuild_period_days')}, same_session_hours "
                f"{report.get('same_session_hours')})."
            )
    else:
        report = evaluate_registered(data, loaded, settings)
    output = Path(args.output or f"reports/evaluation-{loaded.record.model_id}.json")
    atomic_write_json(output, report)
    print(format_table(report))
    print(f"model {loaded.record.model_id}; report written to {output}")
    return 0


def _with_overrides(settings: TrainingSettings, args: argparse.Namespace) -> TrainingSettings:
    """``settings`` with the evaluation options given on the command line (validated again)."""
    update = {
        key: value
        for key, value in (
            ("rebuild_period_days", args.rebuild_period_days),
            ("same_session_hours", args.same_session_hours),
        )
        if value is not None
    }
    if not update:
        return settings
    for key, value in update.items():
        if not value > 0:
            raise InvalidRequestError(
                f"--{key.replace('_', '-')} must be > 0, got {value}; e.g. 1 for a daily rebuild "
                "or 24 for a one-day session."
            )
    evaluation = settings.evaluation.model_copy(update=update)
    return settings.model_copy(update={"evaluation": evaluation})


def _run_replay(args: argparse.Namespace) -> int:
    from recommender.commands.train import model_types
    from recommender.config import load_serving_settings
    from recommender.replay import format_replay_table, run_replay
    from recommender.training.progress import write

    if not args.source or not args.input:
        raise InvalidRequestError(
            "evaluate --replay needs --source and --input (the raw data to cut and replay), "
            "e.g. --source hasaki --input ../shared/data/hasaki_vn."
        )
    training = load_training_settings(args.config_dir)
    serving = load_serving_settings(args.config_dir)
    types = model_types(args.model_types)
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or stack.enter_context(tempfile.TemporaryDirectory("-replay"))
        report = run_replay(
            args.source,
            args.input,
            workdir,
            training,
            serving,
            fraction=args.replay_fraction,
            model_types=types,
            progress=lambda line: write(f"  {line}"),
        )
    output = Path(args.output or f"reports/replay-{args.source}.json")
    atomic_write_json(output, report)
    stream = report["stream"]
    print(
        f"replay of {args.source}: cut-off {report['cutoff_utc']} (newest "
        f"{args.replay_fraction:.0%} streamed), model {report['model_id']}, "
        f"{stream['scored']} of {stream['events']} events scored; live_fold_in "
        f"{report['live_fold_in']} (validated at build time)"
    )
    print(format_replay_table(report["segments"], report["k"]))
    print(f"report written to {output}")
    return 0
