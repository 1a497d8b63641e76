"""Data layer: raw sources -> canonical tables -> validated, split, processed files.

Offers the read side :func:`load_processed` / :class:`ProcessedData`; the write side
:func:`prepare` (source -> ``data/processed``), :func:`load_source` / :data:`SOURCES` (raw adapters
``demo|shopee|hasaki|canonical``) and :func:`generate_demo` (the seeded demo shop).
"""

from recommender.data.preparation import prepare
from recommender.data.processed import ProcessedData, load_processed
from recommender.data.sources import SOURCES, SourceTables, generate_demo, load_source

__all__ = [
    "SOURCES",
    "ProcessedData",
    "SourceTables",
    "generate_demo",
    "load_processed",
    "load_source",
    "prepare",
]
