"""The event store's contract, shared by every backend (SQLite on one host, Redis for several).

One log, one sequence: events and product updates are numbered by one strictly increasing
sequence, so a worker needs a single cursor (the last ``seq`` it applied) to catch up with
:meth:`EventStore.read_since`. Sequence numbers are never reused; compaction leaves gaps.

Guarantees every backend keeps (``tests/recommender/events/test_store_contract.py``):

- ``append`` returns only after the batch is durable (what "durable" means is the backend's
  setting: SQLite ``synchronous``, Redis ``appendfsync``); a batch is stored all-or-nothing.
- ``event_id`` is an idempotency key: appending an already stored id stores nothing and returns
  the original sequence number (first write wins) while that event is retained.
- any backend failure (down, locked, read-only, full, timed out) raises
  :class:`~recommender.errors.StoreUnavailableError`; nothing in a failed call was acknowledged.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from recommender.events.model import Event, ProductUpdate, StoredRecord


@dataclass(frozen=True)
class StoreHealth:
    """What ``/health`` reports about the store; ``detail`` says why when ``ok`` is false."""

    ok: bool
    backend: str
    latest_seq: int | None
    detail: str = ""


@dataclass(frozen=True)
class CompactionResult:
    """How many events older than the cut-off were deleted, and product records folded away."""

    events_deleted: int
    product_records_deleted: int


class EventStore(ABC):
    """Append-only log of events and product updates, shared by every worker."""

    backend: str

    @abstractmethod
    def append(self, events: Sequence[Event]) -> list[int]:
        """Store ``events`` atomically; their sequence numbers, in order, once durable."""

    @abstractmethod
    def append_products(self, updates: Sequence[ProductUpdate]) -> list[int]:
        """Store catalogue updates atomically, each folded onto the product's previous state."""

    @abstractmethod
    def read_since(self, seq: int, limit: int) -> list[StoredRecord]:
        """At most ``limit`` records with sequence > ``seq``, in sequence order."""

    @abstractmethod
    def latest_seq(self) -> int:
        """The highest sequence number ever assigned (0 for an empty store)."""

    def latest_seq_hint(self) -> int:
        """At least every sequence number acknowledged so far, read cheaply (default: exact).

        Every worker calls this on every request (read-your-writes), so a backend may answer
        from something cheaper than a query, as long as every sequence number acknowledged to a
        client before the call is at most the value returned.
        """
        return self.latest_seq()

    async def append_async(self, events: Sequence[Event]) -> list[int]:
        """:meth:`append` for an event loop (same guarantees); by default on a worker thread."""
        return await asyncio.to_thread(self.append, events)

    @abstractmethod
    def compact(self, before_timestamp: float) -> CompactionResult:
        """Delete events with ``timestamp < before_timestamp`` and superseded product records.

        The latest record of every product is kept whatever its age, so the catalogue state
        survives; call with the serving model's data cut-off.
        """

    @abstractmethod
    def health(self) -> StoreHealth:
        """A cheap probe that never raises."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads; the object is unusable afterwards."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replay(store: EventStore, after_seq: int = 0, batch_size: int = 5000) -> Iterator[StoredRecord]:
    """Every record after ``after_seq``, in order, read ``batch_size`` at a time.

    Stops at the store's end as of the last batch read; for ``build``/``prepare`` and a worker's
    start-up catch-up. Events older than the model's cut-off are the caller's to skip.
    """
    cursor = after_seq
    while True:
        batch = store.read_since(cursor, batch_size)
        yield from batch
        if len(batch) < batch_size:
            return
        cursor = batch[-1].seq
