"""Content-only NDCG@10 against a plain TF-IDF baseline, step by step, in two item universes.

Rows (each scored on the test stage: history = train + val, the protocol's exclusion and ties;
user profile = mean of the history's L2-normalised rows, score = cosine):

1. ``plain``: scikit-learn ``TfidfVectorizer`` defaults (raw tf, smoothed idf, L2) over every
   text field once (name, brand, category, skin types, ingredients, description), unsegmented;
2. ``plain+fields``: the served field repetitions (name x3, brand x2, category x2);
3. ``plain+fields+sublinear``: tf = 1 + ln(count), as served;
4. ``served sparse``: the served encoder's features before the SVD (pyvi words 1-2-grams + char
   2-4-grams, sublinear, per-block L2), refitted on the catalogue;
5. ``served``: the stored product embeddings (after the SVD): the content row of the tables;
6. ``served+recency``: the same with history items weighted ``decay ** age``, as the hybrid uses
   content (``--recency-decay``, the Hasaki hybrid's 0.5).

Universes: ``catalogue`` ranks every product (the project's protocol); ``interacted`` ranks only
the products with an interaction in the history splits (the universe of a harness that knows only
the products of its rating matrix). Needs ``prepare`` and ``embed`` output (e.g. a ``build``).

Usage: python scripts/content_baseline.py --processed DIR [--target 0.094] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.config.loader import load_training_settings  # noqa: E402
from recommender.data.processed import load_processed  # noqa: E402
from recommender.embeddings.pipeline import product_texts  # noqa: E402
from recommender.embeddings.tfidf import TfidfEncoder  # noqa: E402
from recommender.evaluation.content_reference import (  # noqa: E402
    UNIVERSE_CATALOGUE,
    UNIVERSE_INTERACTED,
    UNIVERSES,
    catalogue_products,
    content_ranker,
    interacted_items,
    plain_texts,
    plain_tfidf,
)
from recommender.evaluation.evaluator import Ranker, evaluate_rankers  # noqa: E402
from recommender.evaluation.protocol import build_evaluation_set  # noqa: E402
from recommender.evaluation.side_signals import load_aligned_embeddings  # noqa: E402
from recommender.text.product_text import FIELD_WEIGHTS  # noqa: E402
from scripts._client import report_targets  # noqa: E402

SEGMENTS = (V.SEGMENT_TRAINABLE, V.SEGMENT_COLD)
PLAIN = "plain"
SERVED = "served"
METRIC = "ndcg@10"


def variants(data: Any, recency_decay: float, embedding_dim: int) -> dict[str, Any]:
    """Row name -> item rows (sparse or dense) and the recency decay it is scored with."""
    products = catalogue_products(data)
    aligned = load_aligned_embeddings(data)
    if aligned is None:
        raise SystemExit(f"no product embeddings in {data.directory}: run embed (or build) first")
    texts = product_texts(products)
    encoder = TfidfEncoder(dim=embedding_dim).fit(texts)
    return {
        PLAIN: (plain_tfidf(plain_texts(products)), 1.0),
        "plain+fields": (plain_tfidf(plain_texts(products, FIELD_WEIGHTS)), 1.0),
        "plain+fields+sublinear": (
            plain_tfidf(plain_texts(products, FIELD_WEIGHTS), sublinear_tf=True),
            1.0,
        ),
        "served sparse": (encoder.features(texts), 1.0),
        SERVED: (aligned.vectors, 1.0),
        "served+recency": (aligned.vectors, recency_decay),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed", type=Path, default=Path(V.DEFAULT_PROCESSED_DIR))
    parser.add_argument("--config-dir", type=Path, default=None)
    parser.add_argument("--target", type=float, default=0.094, help="content-only NDCG@10 target")
    parser.add_argument("--recency-decay", type=float, default=0.5)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()

    started = time.perf_counter()
    settings = load_training_settings(args.config_dir)
    data = load_processed(args.processed)
    test = build_evaluation_set(data, V.STAGE_TEST)
    universe = {UNIVERSE_CATALOGUE: None, UNIVERSE_INTERACTED: interacted_items(data, V.STAGE_TEST)}
    rows = variants(data, args.recency_decay, settings.embedding.dim)
    rankers: dict[str, Ranker] = {
        f"{name} | {u}": content_ranker(matrix, decay, universe[u])
        for u in UNIVERSES
        for name, (matrix, decay) in rows.items()
    }
    ev = settings.evaluation
    table = evaluate_rankers(rankers, test, SEGMENTS, [10], None, ev.bootstrap_samples, ev.seed)

    n_in = int(universe[UNIVERSE_INTERACTED].sum())  # type: ignore[union-attr]
    print(
        f"{args.processed}: {test.n_items} products, {n_in} with an interaction in train+val; "
        f"NDCG@10 on test, 95% bootstrap CI"
    )
    sizes = {s: len(test.segment_indices(s)) for s in SEGMENTS}
    print(f"{'row | universe':42s}" + "".join(f"{f'{s} (n={sizes[s]})':>28s}" for s in SEGMENTS))
    numbers: dict[str, dict[str, dict[str, float]]] = {}
    for name in rankers:
        cells = []
        numbers[name] = {}
        for segment in SEGMENTS:
            m = table[segment][name]["metrics"][METRIC]  # type: ignore[index]
            numbers[name][segment] = m
            cells.append(f"{m['mean']:.4f} [{m['low']:.3f}, {m['high']:.3f}]")
        print(f"{name:42s}" + "".join(f"{c:>28s}" for c in cells))

    def mean(row: str, universe_name: str, segment: str) -> float:
        return numbers[f"{row} | {universe_name}"][segment]["mean"]

    targets: dict[str, bool] = {}
    for segment in SEGMENTS:
        served = mean(SERVED, UNIVERSE_CATALOGUE, segment)
        targets[f"{segment}: served content {served:.4f} >= {args.target} (catalogue)"] = (
            served >= args.target
        )
        for u in UNIVERSES:
            s, p = mean(SERVED, u, segment), mean(PLAIN, u, segment)
            targets[f"{segment}: served {s:.4f} >= plain TF-IDF {p:.4f} ({u})"] = s >= p
    print(f"done in {time.perf_counter() - started:.1f}s")
    report = {"processed": str(args.processed), "interacted_items": n_in, "rows": numbers}
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    raise SystemExit(main())
