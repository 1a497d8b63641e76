"""Live state beside the immutable bundle: events and catalogue updates after the model's data.

One :class:`LiveState` per serving model (a reload builds a new one and replays the store since
the model's data cut-off). It is filled from the shared event store by :meth:`LiveState.catch_up`
(a background tail thread, and each request when the store is ahead: read-your-writes across
workers) and read by the engine through small immutable snapshots:

- :meth:`user` -> :class:`LiveUser`: the user's live seen items (per ``events.seen_types``;
  purchases always) and positive items (view / cart / purchase / rating >= ``positive_rating``),
  with a version that changes on each of the user's events (cache keys include it);
- :meth:`popularity` -> trending popularity *as of now* (wall clock), the model's positives decayed
  with the model's half-life plus live events weighted by ``events.popularity_weights``, scaled as
  the bundle's (``log1p``, divided by the max); ``None`` while no live event counts;
- :attr:`available` / :attr:`price` / :meth:`record`: the catalogue after PUT/PATCH updates.

Thread-safe: writers take one lock; readers get arrays that are never mutated afterwards.
Products the model does not know are remembered (events may name them) but not recommended.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings
from recommender.events.model import EventRecord, ProductRecord, StoredRecord
from recommender.events.store import EventStore
from recommender.serving.bundle import ModelBundle

log = logging.getLogger(__name__)
_SECONDS_PER_DAY = 86400.0
_MAX_HALVINGS = 500.0  # rebase the popularity anchor before 2**x leaves float64's range
_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)


@dataclass(frozen=True)
class LiveUser:
    """One user's live evidence: seen and positive item indices (oldest first) and a version."""

    seen: np.ndarray
    liked: np.ndarray
    version: int


@dataclass
class _UserLog:
    seen: list[int] = field(default_factory=list)
    liked: list[int] = field(default_factory=list)
    version: int = 0
    snapshot: LiveUser | None = None


def trainable_fold_in(setting: bool | None, info: Mapping[str, Any]) -> bool:
    """Whether a trainable user's CF vector is folded in from their live history: the config
    (``events.trainable_fold_in``) when set, else the model's validated ``live_fold_in``, else
    True (models built before the live validation)."""
    if setting is not None:
        return setting
    chosen = info.get("live_fold_in")
    return True if chosen is None else bool(chosen)


def data_cutoff(bundle: ModelBundle) -> float:
    """Unix seconds of the model's newest interaction (0 without timestamps): live events
    at or after it are not in the model."""
    seconds = bundle.histories.seconds
    return float(seconds.max()) if seconds is not None and seconds.size else 0.0


class LiveState:
    """Events and catalogue updates applied after the model's data cut-off (see module doc)."""

    def __init__(
        self,
        bundle: ModelBundle,
        settings: EventsSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bundle = bundle
        self.settings = settings
        self.clock = clock
        self.cutoff = data_cutoff(bundle)
        self.cursor = 0  # the last sequence number applied
        self._lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._users: dict[str, _UserLog] = {}
        self._seen_types = set(settings.seen_types) | {V.EVENT_PURCHASE}
        self._weights: Mapping[str, float] = settings.popularity_weights.model_dump()
        n = bundle.n_items
        half_life = bundle.info.get("popularity_half_life_days")
        self._half_life = None if half_life is None else float(half_life) * _SECONDS_PER_DAY
        self._base = base_popularity_counts(bundle, self._half_life)
        self._base_scale = 1.0
        self._anchor = self.cutoff
        self._acc = np.zeros(n, dtype=np.float64)
        self._live_weight = 0.0
        self._pop_dirty = False
        self._pop: np.ndarray | None = None
        self._pop_at = 0.0
        self.popularity_version = 0
        self.available: np.ndarray = np.ones(n, dtype=bool)
        self.price: np.ndarray = bundle.catalogue.price
        self._records: dict[int, dict[str, Any]] = {}
        self.catalogue_version = 0
        self.new_products: set[str] = set()
        self.events_applied = 0

    # ------------------------------------------------------------------ reading
    def user(self, user_id: str) -> LiveUser | None:
        """The user's live evidence, or None when they have no live event."""
        entry = self._users.get(user_id)
        if entry is None:
            return None
        snapshot = entry.snapshot
        if snapshot is None:
            with self._lock:
                snapshot = LiveUser(
                    seen=_frozen(entry.seen), liked=_frozen(entry.liked), version=entry.version
                )
                entry.snapshot = snapshot
        return snapshot

    def knows_product(self, product_id: str) -> bool:
        """Whether events may name ``product_id`` (the model's catalogue or a PUT product)."""
        return product_id in self.bundle.catalogue.index or product_id in self.new_products

    def record(self, item: int) -> dict[str, Any]:
        """The response record of ``item`` after catalogue updates."""
        return self._records.get(item) or self.bundle.catalogue.records[item]

    @property
    def has_catalogue_changes(self) -> bool:
        return self.catalogue_version > 0

    def popularity(self) -> np.ndarray | None:
        """``(n,)`` float32 trending popularity as of now, or None while no live event counts."""
        if self._live_weight <= 0:
            return None
        now = self.clock()
        if self._pop is None or (
            self._pop_dirty and now - self._pop_at >= self.settings.popularity_refresh_seconds
        ):
            with self._lock:
                counts = self._base * self._base_scale + self._acc
                if self._half_life is not None:
                    counts = counts * math.exp2(
                        max(-1000.0, (self._anchor - now) / self._half_life)
                    )
                self._pop_dirty = False
                self._pop_at = now
            scores = np.log1p(counts)
            top = float(scores.max())
            pop = (scores / top if top > 0 else np.zeros_like(scores)).astype(np.float32)
            pop.setflags(write=False)
            self._pop = pop
            self.popularity_version += 1
        return self._pop

    def stats(self) -> dict[str, Any]:
        """What /health and metrics report: cursor, counts, cut-off."""
        return {
            "applied_seq": self.cursor,
            "events_applied": self.events_applied,
            "users": len(self._users),
            "unavailable_products": int((~self.available).sum()),
            "data_cutoff": self.cutoff,
        }

    # ------------------------------------------------------------------ applying
    def catch_up(self, store: EventStore) -> int:
        """Apply everything the store holds after :attr:`cursor`; the number of records read.

        One reader at a time: a request that finds the store ahead waits for the reader already
        running, so it sees every record acknowledged before it started.
        """
        total = 0
        with self._catch_up_lock:
            while True:
                batch = store.read_since(self.cursor, self.settings.replay_batch)
                self.apply(batch)
                total += len(batch)
                if len(batch) < self.settings.replay_batch:
                    return total

    def sync(self, store: EventStore) -> bool:
        """Catch up when the store's latest sequence is ahead (a cheap query); True if it was."""
        if store.latest_seq() <= self.cursor:
            return False
        self.catch_up(store)
        return True

    def apply(self, records: Iterable[StoredRecord]) -> None:
        """Apply records in sequence order; ones at or before :attr:`cursor` are skipped."""
        with self._lock:
            for record in records:
                if record.seq <= self.cursor:
                    continue
                if isinstance(record, EventRecord):
                    self._apply_event(record)
                elif isinstance(record, ProductRecord):
                    self._apply_product(record)
                self.cursor = record.seq

    def _apply_event(self, record: EventRecord) -> None:
        event = record.event
        if event.timestamp < self.cutoff:
            return  # the model has it (or compaction will drop it): never counted twice
        item = self.bundle.catalogue.index.get(event.product_id)
        if item is None:
            return  # a product the model cannot score yet (see module doc)
        entry = self._users.setdefault(event.user_id, _UserLog())
        if event.type in self._seen_types:
            entry.seen.append(item)
        positive = event.type in (V.EVENT_VIEW, V.EVENT_CART, V.EVENT_PURCHASE) or (
            event.type == V.EVENT_RATING
            and event.rating is not None
            and event.rating >= self.settings.positive_rating
        )
        if positive and item not in entry.liked:
            entry.liked.append(item)
        entry.version += 1
        entry.snapshot = None
        self.events_applied += 1
        weight = float(self._weights.get(event.type, 0.0))
        if weight > 0:
            self._add_popularity(item, weight, event.timestamp)

    def _add_popularity(self, item: int, weight: float, timestamp: float) -> None:
        if self._half_life is None:
            self._acc[item] += weight
        else:
            halvings = (timestamp - self._anchor) / self._half_life
            if halvings > _MAX_HALVINGS:  # move the anchor forward, rescaling what is there
                shrink = math.exp2(-halvings)
                self._acc *= shrink
                self._base_scale *= shrink
                self._anchor = timestamp
                halvings = 0.0
            self._acc[item] += weight * math.exp2(halvings)
        self._live_weight += weight
        self._pop_dirty = True

    def _apply_product(self, record: ProductRecord) -> None:
        item = self.bundle.catalogue.index.get(record.product_id)
        if item is None:
            self.new_products.add(record.product_id)
            return
        base = self.bundle.catalogue.records[item]
        fields = dict(record.fields)
        if record.replace:
            merged = {**base, **{k: None for k in V.PRODUCT_UPDATE_FIELDS}, **fields}
        else:
            merged = {**base, **fields}
        available = bool(merged.pop(V.PRODUCT_AVAILABLE, True) is not False)
        if available != bool(self.available[item]):
            mask = self.available.copy()
            mask[item] = available
            mask.setflags(write=False)
            self.available = mask
        price = merged.get(V.PRICE)
        price_value = float(price) if isinstance(price, int | float) else math.nan
        same = price_value == self.price[item] or (
            math.isnan(price_value) and math.isnan(self.price[item])
        )
        if not same:
            prices = self.price.copy()
            prices[item] = price_value
            prices.setflags(write=False)
            self.price = prices
        self._records[item] = merged
        self.catalogue_version += 1


def _frozen(values: list[int]) -> np.ndarray:
    if not values:
        return _EMPTY
    array = np.array(values, dtype=np.int64)
    array.setflags(write=False)
    return array


def base_popularity_counts(bundle: ModelBundle, half_life_seconds: float | None) -> np.ndarray:
    """``(n,)`` the model's positive interactions per item, decayed to the data cut-off."""
    hist = bundle.histories
    n = bundle.n_items
    liked = hist.positive_mask()
    items = hist.indices[liked].astype(np.int64)
    if hist.seconds is None or half_life_seconds is None:
        return np.bincount(items, minlength=n).astype(np.float64)
    seconds = hist.seconds[liked].astype(np.float64)
    weights = np.exp2((seconds - data_cutoff(bundle)) / half_life_seconds)
    return np.bincount(items, weights=weights, minlength=n)
