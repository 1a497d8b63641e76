"""Raw-data adapters: each turns one shop layout into canonical products + interactions tables.

Offers :data:`SOURCES` (name -> loader), :func:`load_source`, :class:`SourceTables` and the demo
generator :func:`generate_demo`. Sources: ``demo`` (seeded generator, see :mod:`.demo`), ``shopee``,
``hasaki`` (variant families merged), ``canonical``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recommender.data.sources import canonical, demo, hasaki, shopee
from recommender.data.sources.base import CANONICAL_PRODUCT_COLUMNS, SourceTables
from recommender.data.sources.demo import generate_demo
from recommender.errors import InvalidDataError

SOURCES: dict[str, Callable[[Path], SourceTables]] = {
    demo.NAME: demo.load,
    shopee.NAME: shopee.load,
    hasaki.NAME: hasaki.load,
    canonical.NAME: canonical.load,
}


def get_loader(name: str) -> Callable[[Path], SourceTables]:
    """The adapter called ``name``; an unknown name -> InvalidDataError listing the valid ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise InvalidDataError(
            f"unknown source {name!r}: expected one of {', '.join(SOURCES)}."
        ) from None


def load_source(name: str, input_dir: str | Path) -> SourceTables:
    """Read ``input_dir`` with the adapter called ``name`` (see :func:`get_loader`)."""
    return get_loader(name)(Path(input_dir))


__all__ = [
    "CANONICAL_PRODUCT_COLUMNS",
    "SOURCES",
    "SourceTables",
    "generate_demo",
    "get_loader",
    "load_source",
]
