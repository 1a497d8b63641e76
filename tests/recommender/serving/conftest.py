"""A small synthetic bundle (no files): exact, fast tests of routing, filters, ranking and caches.

Catalogue: 24 products p0..p23; brand A/B/C by ``i % 3``, category serum (even) / toner (odd),
price 100_000 + 10_000·i, skin types ["oily"] for i < 12 else ["dry", "combination"].
Users: t0..t5 trainable (CF rows 0..5, 3–4 items each), c0..c3 cold (one item each),
anything else unknown. Factors and embeddings are seeded random.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.registry import Registry
from recommender.scoring import HybridConfig
from recommender.serving import Catalogue, Engine, ServingCaches, UserHistories, array_store
from recommender.serving.bundle import ModelBundle, build_bundle

N_ITEMS = 24
TRAINABLE = {
    "t0": [0, 1, 2],
    "t1": [3, 4, 5, 6],
    "t2": [0, 7, 8],
    "t3": [9, 10, 0],
    "t4": [1, 11, 12],
    "t5": [2, 13, 14, 0],
}
COLD = {"c0": [0], "c1": [5], "c2": [20], "c3": [1]}


def products() -> pd.DataFrame:
    rows = []
    for i in range(N_ITEMS):
        rows.append(
            {
                V.PRODUCT_ID: f"p{i}",
                V.NAME: f"Sản phẩm {i}",
                V.BRAND: "ABC"[i % 3],
                V.CATEGORY: "serum" if i % 2 == 0 else "toner",
                V.PRICE: 100_000.0 + 10_000 * i,
                V.AVG_RATING: 4.0 + (i % 5) / 5,
                V.NUM_RATINGS: 10 * (i + 1),
                V.NUM_SOLD: 100 + i,
                V.SKIN_TYPES: ["oily"] if i < 12 else ["dry", "combination"],
            }
        )
    return pd.DataFrame(rows)


def interactions() -> pd.DataFrame:
    rows = []
    for user, items in {**TRAINABLE, **COLD}.items():
        for t, item in enumerate(items):
            rows.append(
                {
                    V.USER_ID: user,
                    V.PRODUCT_ID: f"p{item}",
                    V.RATING: 5,
                    V.TIMESTAMP: pd.Timestamp("2024-01-01") + pd.Timedelta(days=t),
                }
            )
    return pd.DataFrame(rows)


def make_bundle(
    model_id: str = "synthetic-1",
    seed: int = 0,
    hybrid: HybridConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ModelBundle:
    """The synthetic bundle; ``metadata`` overrides keys of the model's ``metadata.json``."""
    rng = np.random.default_rng(seed)
    catalogue = Catalogue.from_products(products())
    users = list(TRAINABLE) + list(COLD)
    histories = UserHistories.from_interactions(
        interactions(), users, catalogue.index, list(TRAINABLE)
    )
    embeddings = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    model_metadata = {
        "model_id": model_id,
        "model_type": "als",
        "item_knn": {"neighbours": 10, "shrinkage": 0.0},
        "fold_in_regularization": 0.1,
        "metrics": {"ndcg@10": 0.1},
        **(metadata or {}),
    }
    return build_bundle(
        catalogue,
        histories,
        rng.normal(size=(N_ITEMS, 4)).astype(np.float32),
        rng.normal(size=(len(TRAINABLE), 4)).astype(np.float32),
        embeddings,
        model_metadata,
        hybrid or HybridConfig(),
        marker=model_id,
        data_version="dv1",
        embedding_meta={"embedding_version": "ev1", "model_name": "tfidf"},
    )


def make_engine(settings: ServingSettings | None = None, **kwargs) -> Engine:
    settings = settings or ServingSettings()
    return Engine(make_bundle(**kwargs), ServingCaches.from_settings(settings.cache), settings)


@pytest.fixture()
def engine() -> Engine:
    return make_engine()


@pytest.fixture()
def processed(embedded_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the processed data without stored serving arrays (nor their ANN
    indexes): each test writes, corrupts or maps its own set."""
    target = tmp_path / "processed"
    shutil.copytree(embedded_dir, target, ignore=shutil.ignore_patterns(array_store.ARRAYS_DIR))
    return target


def arrays_dir_of(processed: Path, registry: Path) -> Path:
    """The serving-array directory of the registry's current model in ``processed``."""
    return array_store.arrays_dir(processed, Registry(registry).current().model_id)
