"""Read the processed data set (``data/processed/``) written by ``recsys prepare``.

File contract (all carry the same ``data_version``):

- ``enriched_products.parquet``: canonical product columns (:data:`vocabulary.PRODUCT_COLUMNS`);
  row order is the canonical item index used everywhere (factors, embeddings, masks).
  Parquet schema metadata ``data_version``.
- ``interactions.parquet``: :data:`vocabulary.PROCESSED_INTERACTION_COLUMNS` — one row per
  (user, product) after dedup; ``split`` is ``train``/``val``/``test`` (val/test only for trainable
  users). Parquet schema metadata ``data_version``.
- ``user_item_mappings.json``: ``{"data_version", "item_ids": [...], "user_ids": [...]}`` —
  item_ids in canonical order, user_ids every known user (any history).
- ``trainable_user_mapping.json``: ``{"data_version", "user_ids": [...]}`` — CF row ``i`` is
  ``user_ids[i]``.
- ``top_k_popular_items.json``: ``{"data_version", "method", "items": [{"product_id", "score",
  "count"}]}`` best first, computed on all interactions.
- ``data_stats.json``: sizes, sparsity, rating distribution, trainable share, dropped rows,
  data_version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recommender import vocabulary as V
from recommender.errors import InvalidDataError
from recommender.storage import read_json

DATA_VERSION_KEY = b"data_version"


@dataclass(frozen=True)
class ProcessedData:
    """Everything ``recsys prepare`` wrote, loaded and cross-checked."""

    directory: Path
    data_version: str
    products: pd.DataFrame
    interactions: pd.DataFrame
    item_ids: list[str]
    user_ids: list[str]
    trainable_user_ids: list[str]
    popular: list[dict[str, Any]]
    stats: dict[str, Any]

    @property
    def item_index(self) -> dict[str, int]:
        """product_id -> canonical item index."""
        return {pid: i for i, pid in enumerate(self.item_ids)}

    @property
    def trainable_index(self) -> dict[str, int]:
        """user_id -> CF row."""
        return {uid: i for i, uid in enumerate(self.trainable_user_ids)}


def unix_seconds(frame: pd.DataFrame) -> np.ndarray:
    """``(len(frame),)`` int64 Unix seconds of the interactions' timestamp column (NaT: the epoch).

    The one conversion evaluation (request times, sessions, popularity) and serving (histories)
    share, so both order and decay interactions on the same clock.
    """
    times = pd.to_datetime(frame[V.TIMESTAMP], errors="coerce", utc=True)
    return times.to_numpy(dtype="datetime64[s]", na_value=np.datetime64(0, "s")).astype(np.int64)


def parquet_data_version(path: Path) -> str | None:
    """The ``data_version`` stored in a parquet file's schema metadata, if any."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(DATA_VERSION_KEY)
    return raw.decode() if raw else None


def _json(directory: Path, name: str) -> dict[str, Any]:
    try:
        data = read_json(directory / name, name)
    except FileNotFoundError as exc:
        raise InvalidDataError(
            f"{exc}. Run `python -m recommender prepare` (or `build`) to create the processed data."
        ) from exc
    except ValueError as exc:
        raise InvalidDataError(f"{exc}. Re-run `python -m recommender prepare`.") from exc
    if not isinstance(data, dict):
        raise InvalidDataError(f"{directory / name}: expected a JSON object. Re-run prepare.")
    return data


def _parquet(directory: Path, name: str) -> pd.DataFrame:
    path = directory / name
    if not path.is_file():
        raise InvalidDataError(
            f"{name} not found at {path}. Run `python -m recommender prepare` (or `build`) first."
        )
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InvalidDataError(
            f"{path} is not a readable parquet file ({exc}). Re-run prepare."
        ) from exc


def load_processed(directory: str | Path, *, interactions: bool = True) -> ProcessedData:
    """Load and cross-check every processed file; all must carry one data_version.

    ``interactions=False`` checks the interactions file's data_version but leaves its rows unread
    (an empty frame): serving reads histories from its memory-mapped arrays instead.
    """
    d = Path(directory)
    if not d.is_dir():
        raise InvalidDataError(
            f"processed data directory {d} does not exist. "
            "Run `python -m recommender prepare` first."
        )
    mappings = _json(d, V.USER_ITEM_MAPPINGS_FILE)
    trainable = _json(d, V.TRAINABLE_USER_MAPPING_FILE)
    popular = _json(d, V.TOP_K_POPULAR_FILE)
    stats = _json(d, V.DATA_STATS_FILE)
    products = _parquet(d, V.PRODUCTS_FILE)
    rows = _parquet(d, V.INTERACTIONS_FILE) if interactions else pd.DataFrame()
    version = str(mappings.get("data_version", ""))
    versions = {
        V.USER_ITEM_MAPPINGS_FILE: version,
        V.TRAINABLE_USER_MAPPING_FILE: trainable.get("data_version"),
        V.TOP_K_POPULAR_FILE: popular.get("data_version"),
        V.DATA_STATS_FILE: stats.get("data_version"),
        V.PRODUCTS_FILE: parquet_data_version(d / V.PRODUCTS_FILE),
        V.INTERACTIONS_FILE: parquet_data_version(d / V.INTERACTIONS_FILE),
    }
    mismatched = {k: v for k, v in versions.items() if v != version}
    if not version or mismatched:
        raise InvalidDataError(
            f"processed files in {d} disagree on data_version ({versions}); they come from "
            "different prepare runs. Re-run `python -m recommender prepare`."
        )
    item_ids = [str(x) for x in mappings["item_ids"]]
    if item_ids != products[V.PRODUCT_ID].astype(str).tolist():
        raise InvalidDataError(
            f"{V.USER_ITEM_MAPPINGS_FILE} item order differs from {V.PRODUCTS_FILE}. "
            "Re-run prepare."
        )
    return ProcessedData(
        directory=d,
        data_version=version,
        products=products,
        interactions=rows,
        item_ids=item_ids,
        user_ids=[str(x) for x in mappings["user_ids"]],
        trainable_user_ids=[str(x) for x in trainable["user_ids"]],
        popular=list(popular.get("items", [])),
        stats=stats,
    )
