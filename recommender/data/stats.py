"""The data version hash and ``data_stats.json`` of a processed data set."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from recommender import vocabulary as V

VERSION_CHARS = 16
PER_USER_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 9), (10, None))


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if (
            out[column].dtype == object
            and out[column].map(lambda v: isinstance(v, (list, np.ndarray))).any()
        ):
            out[column] = out[column].map(lambda v: "|".join(map(str, v)))
    return out


def data_version(
    products: pd.DataFrame, interactions: pd.DataFrame, settings: dict[str, Any]
) -> str:
    """Short sha256 (16 hex) of the processed content: products, interactions and the data settings.

    Same input and settings -> same version, on any machine (pandas' row hash uses a fixed key);
    any change of a row, a column or a setting that shapes the split -> a new version.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for frame in (products, interactions):
        digest.update("\x1f".join(map(str, frame.columns)).encode())
        digest.update(
            pd.util.hash_pandas_object(_hashable(frame), index=False).to_numpy().tobytes()
        )
    return digest.hexdigest()[:VERSION_CHARS]


def _per_user(counts: pd.Series) -> dict[str, Any]:
    histogram = {}
    for low, high in PER_USER_BUCKETS:
        label = str(low) if high == low else (f"{low}-{high}" if high else f"{low}+")
        mask = counts >= low if high is None else (counts >= low) & (counts <= high)
        histogram[label] = int(mask.sum())
    return {
        "mean": round(float(counts.mean()), 4),
        "median": float(counts.median()),
        "p90": float(counts.quantile(0.9)),
        "max": int(counts.max()),
        "histogram": histogram,
    }


def _rating_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def data_stats(
    version: str,
    source: str,
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    trainable_user_ids: list[str],
    dropped: dict[str, int],
    duplicates_removed: int,
    settings: dict[str, Any],
    merged: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The ``data_stats.json`` document (sizes, sparsity, distributions, shares, dropped rows).

    ``dropped_rows`` are bad raw rows (per reason); ``merged_rows`` are good raw rows the source
    folds into another on purpose (e.g. Hasaki's variant copies), kept apart so that an intended
    merge never reads as a data-quality problem.
    """
    n_users = int(interactions[V.USER_ID].nunique())
    n_products = len(products)
    n_rows = len(interactions)
    per_user = interactions.groupby(V.USER_ID).size()
    per_item = interactions.groupby(V.PRODUCT_ID).size().sort_values(ascending=False)
    top_decile = max(1, int(np.ceil(0.1 * n_products)))
    ratings = interactions[V.RATING].value_counts().sort_index()
    splits = interactions[V.SPLIT].value_counts()
    return {
        "data_version": version,
        "source": source,
        "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "n_products": n_products,
        "n_products_with_interactions": int(per_item.size),
        "n_users": n_users,
        "n_interactions": n_rows,
        "sparsity": round(1.0 - n_rows / max(1, n_users * n_products), 6),
        "rating_distribution": {_rating_label(r): int(c) for r, c in ratings.items()},
        "five_star_share": round(float((interactions[V.RATING] == 5).mean()), 4),
        "positive_share": round(float(interactions[V.IS_POSITIVE].mean()), 4),
        "interactions_per_user": _per_user(per_user),
        "single_interaction_share": round(float((per_user == 1).mean()), 4),
        "trainable_users": len(trainable_user_ids),
        "cold_users": n_users - len(trainable_user_ids),
        "trainable_share": round(len(trainable_user_ids) / max(1, n_users), 4),
        "users_with_positive": int(
            interactions.loc[interactions[V.IS_POSITIVE], V.USER_ID].nunique()
        ),
        "split_counts": {s: int(splits.get(s, 0)) for s in V.SPLITS},
        "top_10pct_products_interaction_share": round(
            float(per_item.head(top_decile).sum() / max(1, n_rows)), 4
        ),
        "time_range": {
            "first": interactions[V.TIMESTAMP].min().isoformat(),
            "last": interactions[V.TIMESTAMP].max().isoformat(),
        },
        "duplicates_removed": int(duplicates_removed),
        "dropped_rows": dict(dropped),
        "dropped_total": int(sum(dropped.values())),
        "merged_rows": dict(merged or {}),
        "merged_total": int(sum((merged or {}).values())),
    }
