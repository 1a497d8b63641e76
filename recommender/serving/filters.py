"""Request filters -> one boolean eligibility mask over the catalogue, from precomputed masks.

Semantics: values inside one list are OR-ed (``brand: [a, b]`` = brand a or b); different filters
are AND-ed. Matching is case-insensitive (:func:`catalogue.filter_key`). A value the catalogue
does not know matches nothing (a brand the shop does not sell: no recommendations), and
unknown ``exclude_product_ids`` are ignored (there is nothing to exclude).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from recommender.errors import InvalidRequestError
from recommender.serving.catalogue import Catalogue, filter_key


@dataclass(frozen=True)
class Filters:
    """One request's filters; ``None``/empty means "no constraint"."""

    brand: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    skin_type: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    exclude_product_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise InvalidRequestError(
                    f"filters.{name}={value!r}: must be a finite number >= 0."
                )
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise InvalidRequestError(
                f"filters.price_min={self.price_min} is greater than price_max={self.price_max}; "
                "swap them or drop one."
            )

    @property
    def is_empty(self) -> bool:
        """True when the filters constrain nothing."""
        return not (
            self.brand
            or self.category
            or self.skin_type
            or self.exclude_product_ids
            or self.price_min is not None
            or self.price_max is not None
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> Filters:
        """Build from a request's ``filters`` object (lists of str/int, prices as numbers)."""
        if not data:
            return cls()

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if value is None:
                return ()
            if isinstance(value, (str, int)):
                value = [value]
            if not isinstance(value, Iterable):
                raise InvalidRequestError(f"filters.{key}: expected a list of strings.")
            return tuple(str(v) for v in value)

        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)  # type: ignore[arg-type]

        return cls(
            brand=strings("brand"),
            category=strings("category"),
            skin_type=strings("skin_type"),
            price_min=number("price_min"),
            price_max=number("price_max"),
            exclude_product_ids=strings("exclude_product_ids"),
        )


_FIRST_PREFIX = 256  # first_allowed's first prefix of the order


def _any_of(masks: Mapping[str, np.ndarray], values: tuple[str, ...], n: int) -> np.ndarray:
    result = np.zeros(n, dtype=bool)
    for value in values:
        mask = masks.get(filter_key(value))
        if mask is not None:
            result |= mask
    return result


def eligibility_mask(
    catalogue: Catalogue, filters: Filters, price: np.ndarray | None = None
) -> np.ndarray | None:
    """(n,) bool mask of products passing ``filters``; ``None`` when nothing is filtered.

    ``price``: the live price array (catalogue updates) instead of the model's."""
    if filters.is_empty:
        return None
    n = catalogue.size
    mask = np.ones(n, dtype=bool)
    if filters.brand:
        mask &= _any_of(catalogue.brand_masks, filters.brand, n)
    if filters.category:
        mask &= _any_of(catalogue.category_masks, filters.category, n)
    if filters.skin_type:
        mask &= _any_of(catalogue.skin_type_masks, filters.skin_type, n)
    if filters.price_min is not None or filters.price_max is not None:
        price = catalogue.price if price is None else price
        with np.errstate(invalid="ignore"):
            if filters.price_min is not None:
                mask &= price >= filters.price_min
            if filters.price_max is not None:
                mask &= price <= filters.price_max
    if filters.exclude_product_ids:
        rows = [catalogue.index[p] for p in filters.exclude_product_ids if p in catalogue.index]
        mask[rows] = False
    return mask


def first_allowed(order: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    """``order[mask[order]][:width]``: the first ``width`` items of ``order`` that ``mask``
    allows, read in doubling prefixes of ``order`` so that a filter keeping a few percent of
    50,000 products gathers a few hundred entries, not the whole order (at most ~2× the full
    pass when it keeps almost nothing)."""
    n = order.shape[0]
    size = min(n, max(_FIRST_PREFIX, 8 * width))
    start, found = 0, 0
    parts: list[np.ndarray] = []
    while start < n:
        chunk = order[start : start + size]
        kept = chunk[mask[chunk]]
        parts.append(kept)
        found += kept.size
        start += size
        if found >= width:
            break
        size *= 2
    if len(parts) <= 1:
        return (parts[0] if parts else order)[:width]
    return np.concatenate(parts)[:width]
