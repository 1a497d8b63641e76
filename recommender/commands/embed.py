"""``recsys embed``: content embeddings of the processed catalogue -> product_embeddings.pt."""

from __future__ import annotations

import argparse
import time

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.embeddings import build_product_embeddings, load_embeddings

HELP = (
    "Encode every product of data/processed into "
    "content_based_embeddings/product_embeddings.pt (tfidf by default, or a transformers model)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processed",
        default=V.DEFAULT_PROCESSED_DIR,
        help="processed data directory (default: %(default)s)",
    )
    parser.add_argument(
        "--encoder",
        default=None,
        help="tfidf | transformers (default: embedding.encoder in config)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="transformers only: Hugging Face name in the local cache or a local model directory",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="transformers batch size")
    parser.add_argument("--dim", type=int, default=None, help="tfidf: SVD dimensions")
    parser.add_argument("--config-dir", default=None, help="directory of training.yaml")


def run(args: argparse.Namespace) -> int:
    settings = load_training_settings(args.config_dir).embedding
    encoder = args.encoder or settings.encoder
    model = args.model if args.model is not None else settings.model
    if encoder == "tfidf" and args.model is None:
        model = None  # a configured transformers model does not apply to tfidf
    started = time.perf_counter()
    path = build_product_embeddings(
        args.processed,
        encoder=encoder,
        model=model,
        batch_size=settings.batch_size if args.batch_size is None else args.batch_size,
        dim=settings.dim if args.dim is None else args.dim,
    )
    meta = load_embeddings(path).metadata
    print(
        f"wrote {path}: {meta['n_products']} products x {meta['dim']} ({meta['model_name']}), "
        f"{meta['n_empty_text']} without body text, {meta['n_fallback']} fallback vectors, "
        f"embedding_version {meta['embedding_version']}, {time.perf_counter() - started:.1f}s"
    )
    return 0
