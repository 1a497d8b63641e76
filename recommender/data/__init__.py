"""Data layer: raw sources -> canonical tables -> validated, split, processed files.

Offers :func:`load_processed` / :class:`ProcessedData` (read side); the preparation pipeline and
sources are added by their modules.
"""

from recommender.data.processed import ProcessedData, load_processed

__all__ = ["ProcessedData", "load_processed"]
