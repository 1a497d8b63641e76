"""The catalogue as serving needs it: arrays, filter masks and one response record per product.

Everything here is built once per model version (at bundle load) so a request only indexes arrays:
no DataFrame, no per-request loop over the catalogue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from recommender import vocabulary as V


def filter_key(value: object) -> str:
    """How filter values (brand, category, skin type) are matched: trimmed and casefolded."""
    return str(value).strip().casefold()


def _clean(value: Any) -> Any:
    """A JSON-friendly scalar: numpy types unwrapped, NaN -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return []


def _single(value: Any) -> list[str]:
    value = _clean(value)
    return [str(value)] if value is not None and str(value).strip() else []


def _masks(values_per_item: list[list[str]], n: int) -> dict[str, np.ndarray]:
    """value key -> read-only boolean mask (n,) of the products carrying that value."""
    positions: dict[str, list[int]] = {}
    for index, values in enumerate(values_per_item):
        for value in values:
            positions.setdefault(filter_key(value), []).append(index)
    masks: dict[str, np.ndarray] = {}
    for key, rows in positions.items():
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        mask.setflags(write=False)
        masks[key] = mask
    return masks


@dataclass(frozen=True)
class Catalogue:
    """Products in canonical item order (the row order of factors and embeddings).

    Attributes:
        item_ids: product ids, ``item_ids[i]`` is item index ``i``.
        index: product id -> item index.
        records: one response record per product (``product_id``, ``name``, ``brand``, ``category``,
            ``price``, ``avg_rating``, ``num_ratings``, ``num_sold``, ``skin_types``); callers copy
            before adding per-request keys.
        price: (n,) float64, NaN where unknown (a price filter excludes those).
        brand_masks / category_masks / skin_type_masks: :func:`filter_key` value -> (n,) bool.
    """

    item_ids: tuple[str, ...]
    index: Mapping[str, int]
    records: tuple[dict[str, Any], ...]
    price: np.ndarray
    brand_masks: Mapping[str, np.ndarray]
    category_masks: Mapping[str, np.ndarray]
    skin_type_masks: Mapping[str, np.ndarray]

    @property
    def size(self) -> int:
        """Number of products."""
        return len(self.item_ids)

    @cached_property
    def ratings(self) -> tuple[np.ndarray, np.ndarray]:
        """``(n,)`` float64 average ratings (NaN where unknown) and rating counts (0 where
        unknown): what quality scores are computed from. Read from the records once: a worker
        that walks every record takes its own copy of the pages they lie on (the records of a
        model loaded before the fork, ``service/preload.py``, are shared until touched)."""
        avg = [r[V.AVG_RATING] if r[V.AVG_RATING] is not None else np.nan for r in self.records]
        counts = [r[V.NUM_RATINGS] or 0 for r in self.records]
        out = (np.array(avg, dtype=np.float64), np.array(counts, dtype=np.float64))
        for array in out:
            array.setflags(write=False)
        return out

    @classmethod
    def from_products(cls, products: pd.DataFrame) -> Catalogue:
        """Build from ``enriched_products.parquet`` rows (canonical order kept)."""
        n = len(products)
        ids = tuple(str(x) for x in products[V.PRODUCT_ID].tolist())

        def column(name: str, default: Any = None) -> list[Any]:
            if name in products.columns:
                return products[name].tolist()
            return [default] * n

        names, brands, categories = column(V.NAME, ""), column(V.BRAND, ""), column(V.CATEGORY, "")
        prices, ratings = column(V.PRICE), column(V.AVG_RATING)
        num_ratings, num_sold = column(V.NUM_RATINGS, 0), column(V.NUM_SOLD, 0)
        skin_types = [_as_list(v) for v in column(V.SKIN_TYPES)]
        records = []
        for i in range(n):
            records.append(
                {
                    V.PRODUCT_ID: ids[i],
                    V.NAME: _clean(names[i]),
                    V.BRAND: _clean(brands[i]),
                    V.CATEGORY: _clean(categories[i]),
                    V.PRICE: _clean(prices[i]),
                    V.AVG_RATING: _clean(ratings[i]),
                    V.NUM_RATINGS: _clean(num_ratings[i]),
                    V.NUM_SOLD: _clean(num_sold[i]),
                    V.SKIN_TYPES: skin_types[i],
                }
            )
        price = pd.to_numeric(pd.Series(prices, dtype=object), errors="coerce").to_numpy(np.float64)
        price.setflags(write=False)
        return cls(
            item_ids=ids,
            index={pid: i for i, pid in enumerate(ids)},
            records=tuple(records),
            price=price,
            brand_masks=_masks([_single(b) for b in brands], n),
            category_masks=_masks([_single(c) for c in categories], n),
            skin_type_masks=_masks(skin_types, n),
        )
