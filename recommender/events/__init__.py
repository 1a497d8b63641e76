"""Live events and catalogue updates: validated records and the store every worker shares.

Offers the records (:class:`Event`, :class:`ProductUpdate`, and what the store gives back,
:class:`EventRecord` / :class:`ProductRecord`), the validators at the door
(:func:`validate_events`, :func:`validate_product_update`), the store contract
(:class:`EventStore`, :func:`replay`) with its backends (:class:`SqliteEventStore`,
:class:`RedisEventStore`, imported on use) and :func:`open_event_store` from settings.
No HTTP here: the service maps :class:`~recommender.errors.InvalidEventError` to 422 and
:class:`~recommender.errors.StoreUnavailableError` to 503.
"""

from __future__ import annotations

from recommender.events.factory import open_event_store
from recommender.events.model import (
    Event,
    EventRecord,
    EventType,
    ProductRecord,
    ProductUpdate,
    StoredRecord,
    validate_events,
    validate_product_update,
)
from recommender.events.sqlite_store import SqliteEventStore
from recommender.events.store import CompactionResult, EventStore, StoreHealth, replay

__all__ = [
    "CompactionResult",
    "Event",
    "EventRecord",
    "EventStore",
    "EventType",
    "ProductRecord",
    "ProductUpdate",
    "SqliteEventStore",
    "StoreHealth",
    "StoredRecord",
    "open_event_store",
    "replay",
    "validate_events",
    "validate_product_update",
]
