"""The ``canonical`` source: ``products.(csv|parquet)`` + ``interactions.(csv|parquet)``.

Columns are the canonical ones (:data:`vocabulary.PRODUCT_COLUMNS` without ``text``,
:data:`vocabulary.INTERACTION_COLUMNS`). Required: products ``product_id, name``; interactions
``user_id, product_id, rating, timestamp``. In CSV, ``skin_types`` may be a ``|``- or
comma-separated string; timestamps are ISO 8601 strings or epoch seconds.
"""

from __future__ import annotations

from pathlib import Path

from recommender import vocabulary as V
from recommender.data.sources.base import CANONICAL_PRODUCT_COLUMNS, SourceTables
from recommender.data.validation import (
    clean_interactions,
    clean_products,
    find_file,
    read_table,
)

NAME = "canonical"
PRODUCT_FILES = ("products.parquet", "products.csv")
INTERACTION_FILES = ("interactions.parquet", "interactions.csv")


def load(input_dir: str | Path, source: str = NAME) -> SourceTables:
    """Read and validate a canonical products/interactions pair from ``input_dir``."""
    directory = Path(input_dir)
    products_path = find_file(directory, PRODUCT_FILES, "canonical products file")
    interactions_path = find_file(directory, INTERACTION_FILES, "canonical interactions file")
    products, dropped = clean_products(
        read_table(products_path, (V.PRODUCT_ID, V.NAME)), products_path
    )
    raw = read_table(interactions_path, (V.USER_ID, V.PRODUCT_ID, V.RATING, V.TIMESTAMP))
    interactions, dropped_i = clean_interactions(raw, interactions_path, source)
    dropped.update(dropped_i)
    return SourceTables(source, products[list(CANONICAL_PRODUCT_COLUMNS)], interactions, dropped)
