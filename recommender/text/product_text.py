"""The string embedded for each product, built from its canonical columns.

Field weights are expressed by repetition: TF-IDF counts a repeated field more, and for a
transformer the repeated name dominates the mean-pooled vector. Name, brand and category say what
a product *is* and are favoured; skin types, ingredients and a bounded slice of the description
add detail. The text is normalised (NFC, cleaned, abbreviations expanded, case kept) but not
segmented: segmentation belongs to the encoder that needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.text.normalisation import is_missing, normalise_text

# (column, repetitions). Order matters: it is the order of the fields in the text.
FIELD_WEIGHTS: Final[tuple[tuple[str, int], ...]] = (
    (V.NAME, 3),
    (V.BRAND, 2),
    (V.CATEGORY, 2),
    (V.SKIN_TYPES, 1),
    (V.INGREDIENTS, 1),
    (V.DESCRIPTION, 1),
)
TEXT_FIELDS: Final[tuple[str, ...]] = tuple(field for field, _ in FIELD_WEIGHTS)
HEAD_FIELDS: Final[tuple[str, ...]] = (V.NAME, V.BRAND, V.CATEGORY)
BODY_FIELDS: Final[tuple[str, ...]] = (V.SKIN_TYPES, V.INGREDIENTS, V.DESCRIPTION)

# Shop descriptions run to thousands of characters of shipping/usage boilerplate; the first part
# carries the product-specific words, and segmenting the rest costs time for no measured gain
# (see scripts/embedding_quality.py).
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_INGREDIENTS_CHARS: Final = 500

SEPARATOR: Final = " . "


def _truncate(text: str, limit: int) -> str:
    """Cut at the last space before ``limit`` so no word is split."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit]


def _list_text(value: Any) -> str:
    """skin_types is a list[str] (or a numpy array of str after parquet, or a plain string)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (Sequence, np.ndarray)):
        return ", ".join(str(v) for v in value if not is_missing(v))
    return "" if is_missing(value) else str(value)


def field_text(column: str, value: Any, max_description_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """One field's normalised text ("" when missing), truncated where the field is long."""
    if column == V.SKIN_TYPES:
        value = _list_text(value)
    text = normalise_text(value, lowercase=False)
    if column == V.DESCRIPTION:
        return _truncate(text, max_description_chars)
    if column == V.INGREDIENTS:
        return _truncate(text, MAX_INGREDIENTS_CHARS)
    return text


def _row_text(
    row: Mapping[str, Any], fields: Iterable[tuple[str, int]], max_description_chars: int
) -> str:
    parts: list[str] = []
    for column, repeat in fields:
        text = field_text(column, row.get(column), max_description_chars)
        if text:
            parts.extend([text] * repeat)
    return SEPARATOR.join(parts)


def _records(products: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [c for c in TEXT_FIELDS if c in products.columns]
    return products[columns].to_dict("records") if columns else [{} for _ in range(len(products))]


def build_product_texts(
    products: pd.DataFrame,
    field_weights: Sequence[tuple[str, int]] = FIELD_WEIGHTS,
    max_description_chars: int = MAX_DESCRIPTION_CHARS,
) -> list[str]:
    """One weighted, normalised, unsegmented string per row of ``products``, in row order.

    Uses the canonical columns name, brand, category, skin_types, ingredients, description; any of
    them may be absent from the frame or missing/NaN/empty in a row. A row with nothing gives "".
    ``field_weights`` ((column, repetitions), in text order) and the description cut-off are
    parameters only so that scripts/embedding_quality.py can compare alternatives.
    """
    return [_row_text(row, field_weights, max_description_chars) for row in _records(products)]


def record_text(row: Mapping[str, Any]) -> str:
    """:func:`build_product_texts` of one product given as a mapping (no DataFrame): what the
    service embeds for a product created after the build."""
    return _row_text(row, FIELD_WEIGHTS, MAX_DESCRIPTION_CHARS)


def build_head_texts(products: pd.DataFrame) -> list[str]:
    """Name, brand and category only (same weights): the fallback text of a product."""
    head = [(c, w) for c, w in FIELD_WEIGHTS if c in HEAD_FIELDS]
    return [_row_text(row, head, MAX_DESCRIPTION_CHARS) for row in _records(products)]


def has_body_text(products: pd.DataFrame) -> np.ndarray:
    """bool (n,): whether a product has any skin type, ingredient or description text."""
    body = [c for c in BODY_FIELDS if c in products.columns]
    return np.array(
        [any(field_text(c, row.get(c)) for c in body) for row in _records(products)], dtype=bool
    )
