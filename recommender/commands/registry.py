"""``recsys registry list|show ID|promote ID [--force]|rollback``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.errors import InvalidRequestError
from recommender.registry import ModelRecord, Registry

HELP = "List, show, promote (quality-gated) or roll back registered models."
ACTIONS = ("list", "show", "promote", "rollback")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", metavar="|".join(ACTIONS), help="what to do")
    parser.add_argument("model_id", nargs="?", default=None, help="model id (show, promote)")
    parser.add_argument("--force", action="store_true", help="promote past the quality gate")
    parser.add_argument(
        "--registry", default=V.DEFAULT_REGISTRY_DIR, help="registry (default: %(default)s)"
    )
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml (gate)")


def _line(record: ModelRecord, current: str | None) -> str:
    gate = record.gate_value
    marker = "*" if record.model_id == current else " "
    return (
        f"{marker} {record.model_id:<32} {record.model_type:<4} {record.status:<9} "
        f"{record.created_at:<25} data {record.data_version:<16} "
        f"ndcg@10 {'n/a' if gate is None else f'{gate:.4f}'}"
    )


def run(args: argparse.Namespace) -> int:
    if args.action not in ACTIONS:
        raise InvalidRequestError(f"unknown registry action {args.action!r}; expected {ACTIONS}")
    if args.action in ("show", "promote") and not args.model_id:
        raise InvalidRequestError(f"`registry {args.action}` needs a model id")
    registry = Registry(args.registry)
    if args.action == "list":
        current = registry.current()
        records = registry.list()
        if not records:
            print(f"no models registered in {args.registry}")
        for record in records:
            print(_line(record, None if current is None else current.model_id))
    elif args.action == "show":
        print(json.dumps(asdict(registry.get(args.model_id)), indent=2, ensure_ascii=False))
    elif args.action == "promote":
        tolerance = load_training_settings(args.config_dir).gate.tolerance
        record = registry.promote(args.model_id, force=args.force, tolerance=tolerance)
        print(f"current model is now {record.model_id}")
    else:
        record = registry.rollback()
        print(f"rolled back: current model is now {record.model_id}")
    return 0
