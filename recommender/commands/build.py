"""``recsys build``: prepare → embed → train → evaluate → register → promote, in one go."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recommender import vocabulary as V
from recommender.commands.train import model_types
from recommender.config import load_training_settings
from recommender.data import load_processed
from recommender.data.preparation import prepare
from recommender.data.sources.demo import DEFAULT_PRODUCTS, DEFAULT_SEED, DEFAULT_USERS
from recommender.embeddings import build_product_embeddings
from recommender.evaluation.report import format_table
from recommender.registry import Registry
from recommender.training.pipeline import run_training
from recommender.training.publish import register_run

HELP = (
    "Build everything from raw data: prepare -> embed -> train (ALS and BPR, tuned on validation) "
    "-> evaluate on test -> register -> promote the validation winner. For --source demo an empty "
    "--input directory is first filled with generated demo data."
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
    parser.add_argument("--model", default="all", metavar="als|bpr|all", help="(default: all)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="demo users")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="demo products")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="demo seed")
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")


def _step(number: int, text: str) -> None:
    print(f"[{number}/6] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    types = model_types(args.model)
    settings = load_training_settings(args.config_dir)
    started = time.perf_counter()
    source_dir = Path(args.input)
    if args.source == "demo" and (not source_dir.is_dir() or not any(source_dir.iterdir())):
        from recommender.data.sources.demo import generate_demo

        _step(
            0,
            f"generating demo data in {source_dir} ({args.users} users, {args.products} products)",
        )
        generate_demo(source_dir, users=args.users, products=args.products, seed=args.seed)
    _step(1, f"prepare --source {args.source} --input {source_dir} -> {args.processed}")
    stats = prepare(args.source, source_dir, args.processed, settings.data)
    print(
        f"      {stats['n_products']} products, {stats['n_users']} users "
        f"({stats['trainable_users']} trainable), {stats['n_interactions']} interactions"
    )
    _step(2, f"embed ({settings.embedding.encoder})")
    emb = settings.embedding
    build_product_embeddings(
        args.processed, encoder=emb.encoder, model=emb.model, batch_size=emb.batch_size, dim=emb.dim
    )
    _step(3, f"train {', '.join(types)} (grid search + hybrid tuning on validation)")
    data = load_processed(args.processed)
    result = run_training(data, settings, types, progress=lambda line: print(f"      {line}"))
    _step(4, "evaluate on test")
    print(format_table(result.report))
    _step(5, f"register in {args.registry}")
    registry = Registry(args.registry)
    records = register_run(registry, result, settings)
    for record in records.values():
        print(f"      {record.model_id} (test ndcg@10 trainable {_fmt(record.gate_value)})")
    best = records[result.best]
    current = registry.current()
    # A model of other data cannot be served on the new processed files, and test sets of different
    # data are not comparable, so the gate only applies to a current model of the same data version.
    force = current is not None and current.data_version != best.data_version
    _step(6, f"promote {best.model_id}" + (" (current model is of other data)" if force else ""))
    registry.promote(best.model_id, force=force, tolerance=settings.gate.tolerance)
    print(f"done in {time.perf_counter() - started:.1f}s: current model {best.model_id}")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
