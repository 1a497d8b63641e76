"""What every source adapter returns: canonical tables plus the rows it had to drop."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from recommender import vocabulary as V

CANONICAL_PRODUCT_COLUMNS: tuple[str, ...] = tuple(c for c in V.PRODUCT_COLUMNS if c != V.TEXT)


@dataclass(frozen=True)
class SourceTables:
    """Canonical tables of one raw source.

    ``products``: :data:`CANONICAL_PRODUCT_COLUMNS` (product_id str, skin_types list[str], …).
    ``interactions``: :data:`vocabulary.INTERACTION_COLUMNS` (ids str, rating float64 in 1–5,
    timestamp naive UTC datetime64[ns], weight float64 > 0, source str).
    ``dropped``: bad raw rows already removed by the adapter, per reason.
    ``merged``: good raw rows folded into another row on purpose, per reason (Hasaki's copies of
        one review on every variant of a product family): not errors, so counted apart.
    """

    name: str
    products: pd.DataFrame
    interactions: pd.DataFrame
    dropped: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        missing_p = [c for c in CANONICAL_PRODUCT_COLUMNS if c not in self.products.columns]
        missing_i = [c for c in V.INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing_p or missing_i:  # a programming error in an adapter, not bad input
            raise AssertionError(f"source {self.name} lacks columns {missing_p + missing_i}")
