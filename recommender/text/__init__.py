"""Vietnamese product text: normalisation, pyvi word segmentation, the embedded product string.

Offers :func:`build_product_texts` (one normalised, weighted, unsegmented string per product),
:func:`normalise_text` / :func:`clean_text` / :func:`expand_abbreviations`, and :func:`segment` /
:func:`segment_many`.
"""

from recommender.text.normalisation import (
    ABBREVIATIONS,
    clean_text,
    expand_abbreviations,
    normalise_text,
)
from recommender.text.product_text import (
    TEXT_FIELDS,
    build_head_texts,
    build_product_texts,
    has_body_text,
)
from recommender.text.segmentation import segment, segment_many

__all__ = [
    "ABBREVIATIONS",
    "TEXT_FIELDS",
    "build_head_texts",
    "build_product_texts",
    "clean_text",
    "expand_abbreviations",
    "has_body_text",
    "normalise_text",
    "segment",
    "segment_many",
]
