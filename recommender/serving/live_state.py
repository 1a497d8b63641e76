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

- :attr:`new_items`: products the model does not know (PUT), in the appended index space
  ``n .. n + k - 1`` with their embeddings (see :mod:`.new_products`); events naming them count
  towards their popularity and the user's history. Beyond ``events.max_new_products`` they are
  remembered (events may name them) but not recommended until the next build.

A ``remove_from_cart`` cancels the user's earlier ``cart`` of that product: when the cart was
the only positive evidence (no view, purchase or high rating of it) the product leaves the live
positive history, and when it was the only seen-type event it is no longer excluded as seen.
Its popularity is not taken back (the interest was real; ``popularity_weights`` is the knob).

Thread-safe: writers take one lock; readers get arrays that are never mutated afterwards.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings
from recommender.events.model import EventRecord, ProductRecord, StoredRecord
from recommender.events.store import EventStore
from recommender.serving.bundle import ModelBundle
from recommender.serving.new_products import Embedder, NewItems, NewProducts

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


@dataclass(slots=True)
class _UserLog:
    seen: list[int] = field(default_factory=list)
    liked: list[int] = field(default_factory=list)
    kinds: dict[int, set[str]] = field(default_factory=dict)  # event types per item
    version: int = 0
    snapshot: LiveUser | None = None


# bytes per live user beyond their items: the _UserLog (slots), its two lists, the ordered
# dict's slot and link node (~90 bytes, measured); the id string is counted by its own size.
# Checked against tracemalloc by scripts/benchmark_live_memory.py.
_USER_BYTES = sys.getsizeof(_UserLog()) + 2 * sys.getsizeof([]) + 90
_ITEM_BYTES = 8  # a list slot; item indices are the catalogue index's own int objects


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
        embed: Embedder | None = None,
    ) -> None:
        self.bundle = bundle
        self.settings = settings
        self.clock = clock
        self.cutoff = data_cutoff(bundle)
        self.cursor = 0  # the last sequence number applied
        self._synced_hint = 0  # the store's hint as of the last catch-up that sync started
        self._lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._users: OrderedDict[str, _UserLog] = OrderedDict()  # least recently active first
        self._seen_types = set(settings.seen_types) | {V.EVENT_PURCHASE}
        self._weights: Mapping[str, float] = settings.popularity_weights.model_dump()
        n = bundle.n_items
        self.extra = NewProducts(bundle, settings.max_new_products, embed)
        size = n + self.extra.capacity  # popularity also counts the appended new products
        half_life = bundle.info.get("popularity_half_life_days")
        self._half_life = None if half_life is None else float(half_life) * _SECONDS_PER_DAY
        self._base = np.zeros(size, dtype=np.float64)
        self._base[:n] = base_popularity_counts(bundle, self._half_life)
        self._base_scale = 1.0
        self._anchor = self.cutoff
        self._acc = np.zeros(size, dtype=np.float64)
        self._live_weight = 0.0
        self._pop_dirty = False
        self._pop: np.ndarray | None = None
        self._pop_items: NewItems = self.extra.snapshot
        self._pop_at = 0.0
        self.popularity_version = 0
        self.available: np.ndarray = np.ones(n, dtype=bool)
        self.price: np.ndarray = bundle.catalogue.price
        self._records: dict[int, dict[str, Any]] = {}
        self.catalogue_version = 0
        self.new_products: set[str] = set()
        self.events_applied = 0
        self._max_user_items = settings.max_items_per_user
        self._max_items = settings.max_live_items
        self.items_held = 0  # seen + liked entries over every live user
        self.users_evicted = 0
        self._user_bytes = 0  # live users' ids and bookkeeping (see _USER_BYTES)

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
        """The response record of ``item`` after catalogue updates (new products included)."""
        if item >= self.bundle.n_items:
            return self.extra.snapshot.record(item)
        return self._records.get(item) or self.bundle.catalogue.records[item]

    @property
    def new_items(self) -> NewItems:
        """The recommendable new products (an immutable snapshot)."""
        return self.extra.snapshot

    def popularity_frame(self) -> tuple[np.ndarray | None, NewItems]:
        """(:meth:`popularity`, the new products it covers): read together, consistent."""
        pop = self.popularity()
        return pop, (self._pop_items if pop is not None else self.extra.snapshot)

    @property
    def has_catalogue_changes(self) -> bool:
        return self.catalogue_version > 0

    def popularity(self) -> np.ndarray | None:
        """``(n + k,)`` float32 trending popularity as of now (``k`` new products), or None
        while no live event counts and there is no new product."""
        if self._live_weight <= 0 and not self.extra.snapshot.k:
            return None
        now = self.clock()
        if self._pop is None or (
            self._pop_dirty and now - self._pop_at >= self.settings.popularity_refresh_seconds
        ):
            with self._lock:
                items = self.extra.snapshot
                size = self.bundle.n_items + items.k
                counts = self._base[:size] * self._base_scale + self._acc[:size]
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
            self._pop, self._pop_items = pop, items
            self.popularity_version += 1
        return self._pop

    def stats(self) -> dict[str, Any]:
        """What /health and metrics report: cursor, counts, cut-off."""
        return {
            "applied_seq": self.cursor,
            "events_applied": self.events_applied,
            "users": len(self._users),
            "items_held": self.items_held,
            "users_evicted": self.users_evicted,
            "memory_bytes": self.memory_bytes(),
            "unavailable_products": int((~self.available).sum())
            + int((~self.extra.snapshot.available).sum()),
            "new_products": self.extra.snapshot.k,
            "new_products_not_served": len(self.extra.rejected),
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
        """Catch up when the store may be ahead; True if it read the store.

        Per request, so it asks :meth:`EventStore.latest_seq_hint` (SQLite: a shared counter,
        no query). The hint is read *before* catching up: whatever was acknowledged before this
        call is at most the hint and is read; a hint above every record left (compaction of
        the newest rows) is remembered, so it does not trigger a read on every request.
        """
        hint = store.latest_seq_hint()
        if hint <= self.cursor or hint <= self._synced_hint:
            return False
        self.catch_up(store)
        self._synced_hint = hint
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
            if self.extra.commit(self.catalogue_version):
                self._pop = None  # the new products change the popularity vector's length

    def _apply_event(self, record: EventRecord) -> None:
        event = record.event
        if event.timestamp < self.cutoff:
            return  # the model has it (or compaction will drop it): never counted twice
        item = self.bundle.catalogue.index.get(event.product_id)
        if item is None:
            item = self.extra.index_of(event.product_id)
        if item is None:
            return  # a product the model cannot score (see module doc)
        entry = self._users.get(event.user_id)
        if entry is None:
            entry = self._users[event.user_id] = _UserLog()
            self._user_bytes += _USER_BYTES + sys.getsizeof(event.user_id)
        else:
            self._users.move_to_end(event.user_id)  # last = most recently active
        held = len(entry.seen) + len(entry.liked)
        positive = event.type in (V.EVENT_VIEW, V.EVENT_CART, V.EVENT_PURCHASE) or (
            event.type == V.EVENT_RATING
            and event.rating is not None
            and event.rating >= self.settings.positive_rating
        )
        if event.type == V.EVENT_REMOVE_FROM_CART:
            _cancel_cart(entry, item, self._seen_types)
        else:
            if event.type in self._seen_types:
                entry.seen.append(item)
                entry.kinds.setdefault(item, set()).add(event.type)
                if len(entry.seen) > self._max_user_items:  # the user's oldest seen item goes
                    del entry.seen[0]
            if positive:
                entry.kinds.setdefault(item, set()).add(_POSITIVE + event.type)
                if item not in entry.liked:
                    entry.liked.append(item)
                    if len(entry.liked) > self._max_user_items:
                        del entry.liked[0]
        self.items_held += len(entry.seen) + len(entry.liked) - held
        if self.items_held > self._max_items:
            self._evict(keep=event.user_id)
        entry.version += 1
        entry.snapshot = None
        self.events_applied += 1
        # a low rating is not demand: only positive evidence makes a product trend
        weight = float(self._weights.get(event.type, 0.0)) if positive else 0.0
        if weight > 0:
            self._add_popularity(item, weight, event.timestamp)

    def _evict(self, keep: str) -> None:
        """Drop the least recently active users' live history until the items held are at
        most 90% of ``events.max_live_items`` (amortised: one pass per 10% of the cap).

        Their events stay in the store (and in popularity); what they lose here is read-your-
        writes for those old events: an evicted user's live seen/liked items no longer shape
        their answers, until their next event starts a new live history.
        """
        target = int(self._max_items * 0.9)
        while self.items_held > target and len(self._users) > 1:
            user, entry = self._users.popitem(last=False)
            if user == keep:  # only reached when ``keep`` alone holds more than the target
                self._users[user] = entry
                break
            self.items_held -= len(entry.seen) + len(entry.liked)
            self._user_bytes -= _USER_BYTES + sys.getsizeof(user)
            self.users_evicted += 1

    def memory_bytes(self) -> int:
        """Bytes this live state holds: its arrays plus an estimate of the per-user lists."""
        arrays = (self._base, self._acc, self.available, self.price, self._pop)
        numpy_bytes = sum(a.nbytes for a in arrays if a is not None)
        return int(numpy_bytes + self._user_bytes + self.items_held * _ITEM_BYTES)

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
            fields = dict(record.fields)
            available = fields.pop(V.PRODUCT_AVAILABLE, True) is not False
            self.extra.upsert(record.product_id, fields, available)
            self.catalogue_version += 1
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


_POSITIVE = "+"  # prefix of the kinds that count an item as positive evidence


def _cancel_cart(entry: _UserLog, item: int, seen_types: set[str]) -> None:
    """``remove_from_cart``: the earlier cart of ``item`` no longer counts (see module doc)."""
    kinds = entry.kinds.get(item)
    if not kinds or not ({V.EVENT_CART, _POSITIVE + V.EVENT_CART} & kinds):
        return
    kinds.discard(V.EVENT_CART)
    kinds.discard(_POSITIVE + V.EVENT_CART)
    if not any(kind.startswith(_POSITIVE) for kind in kinds) and item in entry.liked:
        entry.liked.remove(item)
    if not (kinds & seen_types):
        entry.seen[:] = [seen for seen in entry.seen if seen != item]


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
