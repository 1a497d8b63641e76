"""The ``shopee`` source: the layout of the shop this service was first written for (SPEC §3).

Files (plain names, or with the ``shopee_`` prefix of the recovered copies):

- reviews: ``data_reviews_purchase.csv`` — ``user_id, product_id, rating, cmt_date``
  (``%Y-%m-%d %H:%M:%S``); the 1,000-row ``shopee_reviews_sample_1000.csv`` has the same four
  columns and is accepted in its place.
- catalogue: ``data_product.csv`` — ``product_id, product_name`` required; ``brand, type, price,
  avg_star, num_sold_time, processed_description, skin_kind, num_rating, origin`` used when present.
- optional ``data_product_attribute.csv`` — ``product_id, ingredient, feature, skin_type,
  capacity``.

Category is parsed from the product name (the ``type`` column is a texture: "dạng kem"); a missing
brand ("no_brand") is parsed from the name too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recommender import vocabulary as V
from recommender.data.sources import taxonomy
from recommender.data.sources.base import CANONICAL_PRODUCT_COLUMNS, SourceTables
from recommender.data.validation import (
    clean_interactions,
    clean_products,
    find_file,
    id_strings,
    read_table,
)

NAME = "shopee"
REVIEW_FILES = (
    "data_reviews_purchase.csv",
    "shopee_data_reviews_purchase.csv",
    "shopee_reviews_sample_1000.csv",
)
PRODUCT_FILES = ("data_product.csv", "shopee_data_product.csv")
ATTRIBUTE_FILES = ("data_product_attribute.csv", "shopee_data_product_attribute.csv")
REVIEW_COLUMNS = ("user_id", "product_id", "rating", "cmt_date")
PRODUCT_COLUMNS = ("product_id", "product_name")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_MISSING = {"no_skin", "no_type", "no_origin", "no_brand", "nan", ""}


def _clean_text(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    text = text.replace("_", " ").strip()  # processed_description is word-segmented ("nổi_trội")
    return "" if text.lower() in _MISSING else text


def _skin_types(kind: object, attribute: object) -> list[str]:
    # skin_kind holds short tokens ("Dầu", "Khô", "Da mụn trứng cá"): read each as "da <token>"
    tokens = [t.strip() for t in _clean_text(kind).split(",") if t.strip()]
    found = set()
    for token in tokens:
        found.update(taxonomy.parse_skin_types(f"da {token}"))
    found.update(taxonomy.parse_skin_types(_clean_text(attribute)))
    return [s for s in taxonomy.SKIN_TYPES if s in found]


def _products(directory: Path) -> tuple[pd.DataFrame, Path]:
    path = find_file(directory, PRODUCT_FILES, "Shopee product catalogue")
    raw = read_table(path, PRODUCT_COLUMNS)
    raw = raw.assign(product_id=id_strings(raw["product_id"]))
    attr_path = next((directory / n for n in ATTRIBUTE_FILES if (directory / n).is_file()), None)
    if attr_path is not None:
        attrs = read_table(attr_path, ("product_id",))
        attrs = attrs.assign(product_id=id_strings(attrs["product_id"]))
        keep = [
            c
            for c in ("product_id", "ingredient", "feature", "skin_type", "capacity")
            if c in attrs
        ]
        raw = raw.merge(
            attrs[keep].drop_duplicates("product_id"),
            on="product_id",
            how="left",
            suffixes=("", "_attr"),
        )

    def col(name: str) -> pd.Series:
        return raw[name] if name in raw else pd.Series([None] * len(raw), index=raw.index)

    names = col("product_name").map(_clean_text)
    brands = [
        taxonomy.canonical_brand(_clean_text(b)) or taxonomy.parse_brand(n)
        for b, n in zip(col("brand"), names, strict=True)
    ]
    descriptions = [
        " ".join(p for p in (_clean_text(f), _clean_text(d)) if p)
        for f, d in zip(col("feature"), col("processed_description"), strict=True)
    ]
    frame = pd.DataFrame(
        {
            V.PRODUCT_ID: raw["product_id"],
            V.NAME: names,
            V.BRAND: brands,
            V.CATEGORY: names.map(taxonomy.parse_category),
            V.PRICE: col("price"),
            V.AVG_RATING: col("avg_star"),
            V.NUM_RATINGS: col("num_rating"),
            V.NUM_SOLD: col("num_sold_time"),
            V.SKIN_TYPES: [
                _skin_types(k, f"{_clean_text(a)} {_clean_text(f)} {n}")
                for k, a, f, n in zip(
                    col("skin_kind"), col("skin_type"), col("feature"), names, strict=True
                )
            ],
            V.INGREDIENTS: col("ingredient").map(_clean_text),
            V.DESCRIPTION: descriptions,
        }
    )
    return frame, path


def load(input_dir: str | Path) -> SourceTables:
    """Read the Shopee catalogue (+ attributes) and review/purchase file into canonical tables."""
    directory = Path(input_dir)
    frame, products_path = _products(directory)
    products, dropped = clean_products(frame, products_path)
    reviews_path = find_file(directory, REVIEW_FILES, "Shopee review/purchase file")
    raw = read_table(reviews_path, REVIEW_COLUMNS)
    canonical = pd.DataFrame(
        {
            V.USER_ID: raw["user_id"],
            V.PRODUCT_ID: raw["product_id"],
            V.RATING: raw["rating"],
            V.TIMESTAMP: raw["cmt_date"],
        }
    )
    interactions, dropped_i = clean_interactions(
        canonical, reviews_path, NAME, DATE_FORMAT, {V.TIMESTAMP: "cmt_date"}
    )
    dropped.update(dropped_i)
    return SourceTables(NAME, products[list(CANONICAL_PRODUCT_COLUMNS)], interactions, dropped)
