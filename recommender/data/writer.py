"""Writing data files atomically: a staging folder per run, parquet with ``data_version`` metadata.

:func:`staged_files` is how ``prepare`` and ``demo-data`` keep a failed run from touching previous
outputs: everything is written into a hidden sibling folder first and moved in file by file (one
atomic rename each) only after every file was written. Files of the target folder that the run does
not produce (``content_based_embeddings/`` written by ``embed``) are left in place.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recommender import vocabulary as V
from recommender.data.processed import DATA_VERSION_KEY
from recommender.storage import atomic_write_json, replace_files


@contextlib.contextmanager
def staged_files(target_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success move its files into ``target_dir``.

    On an exception nothing in ``target_dir`` changes and the staging folder is removed.
    """
    target = Path(target_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield stage
        replace_files(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_parquet(frame: pd.DataFrame, path: Path, data_version: str) -> None:
    """Write ``frame`` (no index) with ``data_version`` in the parquet schema metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[DATA_VERSION_KEY] = data_version.encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def write_processed(
    stage: Path,
    data_version: str,
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    trainable_user_ids: list[str],
    popular: dict[str, Any],
    stats: dict[str, Any],
) -> None:
    """Write every processed file (contract: :mod:`recommender.data.processed`) into ``stage``."""
    # ``available`` only exists once the event store brought a product record (data/event_input)
    optional = [V.PRODUCT_AVAILABLE] if V.PRODUCT_AVAILABLE in products else []
    columns = list(V.PRODUCT_COLUMNS) + optional
    write_parquet(products[columns], stage / V.PRODUCTS_FILE, data_version)
    write_parquet(
        interactions[list(V.PROCESSED_INTERACTION_COLUMNS)],
        stage / V.INTERACTIONS_FILE,
        data_version,
    )
    user_ids = sorted(interactions[V.USER_ID].unique().tolist())
    atomic_write_json(
        stage / V.USER_ITEM_MAPPINGS_FILE,
        {
            "data_version": data_version,
            "item_ids": products[V.PRODUCT_ID].tolist(),
            "user_ids": user_ids,
        },
    )
    atomic_write_json(
        stage / V.TRAINABLE_USER_MAPPING_FILE,
        {"data_version": data_version, "user_ids": trainable_user_ids},
    )
    atomic_write_json(stage / V.TOP_K_POPULAR_FILE, {"data_version": data_version, **popular})
    atomic_write_json(stage / V.DATA_STATS_FILE, stats)
