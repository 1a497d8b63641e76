"""``recsys build``: prepare → embed → train → evaluate → register → promote, in one go."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recommender import vocabulary as V
from recommender.commands.event_source import add_events_argument, read_source_events
from recommender.commands.prepare import events_line
from recommender.commands.train import model_types
from recommender.config import load_training_settings
from recommender.data import load_processed
from recommender.data.preparation import prepare
from recommender.data.sources.demo import DEFAULT_PRODUCTS, DEFAULT_SEED, DEFAULT_USERS
from recommender.embeddings import build_product_embeddings
from recommender.evaluation.report import format_table
from recommender.registry import Registry
from recommender.training.pipeline import run_training
from recommender.training.progress import done_line, write
from recommender.training.publish import register_run
from recommender.training.search import with_budget

HELP = (
    "Build everything from raw data: prepare -> embed -> train (ALS, BPR and EASE, tuned on "
    "validation) -> evaluate on test -> register -> promote (the configured default model unless "
    "another is significantly better on validation: promotion in training.yaml). For --source "
    "demo an empty --input directory is first filled with generated demo data."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="demo|shopee|hasaki|canonical")
    parser.add_argument("--input", required=True, help="directory with the raw files")
    parser.add_argument(
        "--processed", default=V.DEFAULT_PROCESSED_DIR, help="processed data (default: %(default)s)"
    )
    parser.add_argument(
        "--registry", default=V.DEFAULT_REGISTRY_DIR, help="registry (default: %(default)s)"
    )
    parser.add_argument("--model", default="all", metavar="als|bpr|ease|all", help="(default: all)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="demo users")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="demo products")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="demo seed")
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")
    parser.add_argument(
        "--trials",
        default=None,
        metavar="N|full",
        help="trials per tuning study (tuning.method optuna): N, or full = tuning.trials / "
        "side_trials of training.yaml (default: full; build --source demo: tuning.demo_trials)",
    )
    add_events_argument(parser)


class _Phases:
    """Per build phase a line when it starts (time since the build started) and one when it ends
    (``      prepare done in 2.3s``), so a log off a terminal shows where the time went."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.durations: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def step(self, number: int, name: str, text: str) -> None:
        now = self._close()
        self._current = (name, now)
        write(f"[{number}/6 {_clock(now - self.started)}] {text}")

    def _close(self) -> float:
        now = time.perf_counter()
        if self._current is not None:
            name, began = self._current
            self.durations[name] = now - began
            write(f"      {done_line(name, now - began)}")
        return now

    def summary(self) -> str:
        total = self._close() - self.started
        self._current = None
        parts = ", ".join(f"{name} {_clock(seconds)}" for name, seconds in self.durations.items())
        return f"{_clock(total)} ({parts})"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def run(args: argparse.Namespace) -> int:
    types = model_types(args.model)
    settings = load_training_settings(args.config_dir)
    settings = with_budget(settings, args.trials, demo=args.source == "demo")
    phases = _Phases()
    source_dir = Path(args.input)
    if args.source == "demo" and (not source_dir.is_dir() or not any(source_dir.iterdir())):
        from recommender.data.sources.demo import generate_demo

        phases.step(
            0,
            "demo data",
            f"generating demo data in {source_dir} ({args.users} users, {args.products} products)",
        )
        generate_demo(source_dir, users=args.users, products=args.products, seed=args.seed)
    phases.step(
        1, "prepare", f"prepare --source {args.source} --input {source_dir} -> {args.processed}"
    )
    events = read_source_events(args.events, args.config_dir, settings.event_input)
    stats = prepare(args.source, source_dir, args.processed, settings.data, events)
    print(
        f"      {stats['n_products']} products, {stats['n_users']} users "
        f"({stats['trainable_users']} trainable), {stats['n_interactions']} interactions"
        + events_line(stats)
    )
    phases.step(2, "embed", f"embed ({settings.embedding.encoder})")
    emb = settings.embedding
    build_product_embeddings(
        args.processed, encoder=emb.encoder, model=emb.model, batch_size=emb.batch_size, dim=emb.dim
    )
    phases.step(3, "train", f"train {', '.join(types)} (grid search + hybrid tuning on validation)")
    data = load_processed(args.processed)
    result = run_training(
        data,
        settings,
        types,
        progress=lambda line: write(f"      {line}"),
        started=phases.started,
    )
    phases.step(4, "report", "test evaluation (computed during training)")
    print(format_table(result.report))
    phases.step(5, "register", f"register in {args.registry}")
    registry = Registry(args.registry)
    records = register_run(registry, result, settings)
    for record in records.values():
        print(f"      {record.model_id} (test ndcg@10 trainable {_fmt(record.gate_value)})")
    best = records[result.best]
    current = registry.current()
    # A model of other data cannot be served on the new processed files, and test sets of different
    # data are not comparable, so the gate only applies to a current model of the same data version.
    force = current is not None and current.data_version != best.data_version
    phases.step(
        6,
        "promote",
        f"promote {best.model_id}" + (" (current model is of other data)" if force else ""),
    )
    registry.promote(best.model_id, force=force, tolerance=settings.gate.tolerance)
    from recommender.serving.bundle import store_serving_arrays

    stored = store_serving_arrays(args.processed, args.registry, best.model_id)
    print(f"      serving arrays (memory-mapped by every worker) in {stored}", flush=True)
    print(f"done in {phases.summary()}: current model {best.model_id}", flush=True)
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
