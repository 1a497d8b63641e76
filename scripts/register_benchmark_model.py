"""Register (and promote) a stand-in ALS model on a prepared + embedded shop, for benchmarks.

Why: a full ``build`` of a 50K-product shop tunes for tens of minutes; the candidate-stage
benchmark (``scripts/benchmark_candidates.py``) needs only a current model with enough CF
factors (>= ``candidates.cf_min_factors``, so that the CF index is used) and fixed hybrid
weights. This fits one ALS on every split (no tuning, no evaluation) and registers it with the
weights of DEPLOYMENT_OPTIMIZATION.md §11.2 (min-max normalisation)::

    D=/tmp/shop
    .venv/bin/python -m recommender demo-data --out $D/raw --users 100000 --products 50000
    .venv/bin/python -m recommender prepare --source demo --input $D/raw --out $D/processed \\
        --events none
    .venv/bin/python -m recommender embed --processed $D/processed
    .venv/bin/python scripts/register_benchmark_model.py --processed $D/processed \\
        --registry $D/cf --factors 64
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import vocabulary as V  # noqa: E402
from recommender.config.training import ALSParams  # noqa: E402
from recommender.data.matrix import user_item_matrix  # noqa: E402
from recommender.data.processed import load_processed  # noqa: E402
from recommender.embeddings.store import load_embeddings  # noqa: E402
from recommender.registry import Registry  # noqa: E402
from recommender.training.tuning import fit_model  # noqa: E402

HYBRID = {
    "weights": {
        V.SEGMENT_TRAINABLE: {"cf": 0.8, "content": 0.1, "item_similarity": 0.1},
        V.SEGMENT_COLD: {"cf": 0.5, "item_similarity": 0.3, "content": 0.1, "popularity": 0.1},
        V.SEGMENT_UNKNOWN: {"popularity": 0.75, "quality": 0.25},
    },
    "normalisation": "minmax",
    "recency_decay": 1.0,
    "stale_after_hours": None,
    "stale_popularity_half_life_days": None,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, required=True)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--hybrid", type=json.loads, default=None, help="JSON HybridConfig")
    args = parser.parse_args()
    data = load_processed(args.processed)
    embeddings = load_embeddings(args.processed / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE)
    params = ALSParams(factors=args.factors, regularization=1.0, iterations=args.iterations)
    fitted = fit_model(V.MODEL_ALS, user_item_matrix(data, V.SPLITS), params, threads=1)
    registry = Registry(args.registry)
    record = registry.register(
        model_type=V.MODEL_ALS,
        user_factors=fitted.user_factors,
        item_factors=fitted.item_factors,
        params={"model_type": V.MODEL_ALS, **params.model_dump(), "deployed_fit": "all"},
        metadata={"hybrid": args.hybrid or HYBRID, "fold_in_regularization": 1.0},
        data_version=data.data_version,
        embedding_version=embeddings.metadata.get("embedding_version"),
        metrics={},
    )
    registry.promote(record.model_id, force=True)
    print(json.dumps({"model_id": record.model_id, "factors": args.factors}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
