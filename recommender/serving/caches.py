"""Serving caches (``cachetools``) with hit/miss/eviction counters, estimated bytes and a bounded
warm-up report.

- user profiles: user id -> the user's hybrid score vector ``(n,)`` float32 under the model's
  default weights (requests with their own ``rerank_weights`` bypass it). ``4·n`` bytes per entry;
  a candidate-stage profile (``-inf`` outside its candidates) keeps only its candidates
  (:class:`SparseProfile`).
- item similarity: (item index, method) -> (neighbour indices, scores) of a product.
- results: (user id or ``None`` for users without history, 16-byte digest of the options) -> the
  :class:`~recommender.serving.ranked.Ranked` of a single ``/recommend`` answer (product indices
  and scores; the records are the catalogue's, shared); every visitor without history shares one
  entry per options. An entry costs two lists of at most ``requests.max_topk`` numbers.

Memory is bounded in bytes as well as entries: each cache sizes every entry it stores (a
running total, ``bytes`` in :meth:`CountingCache.stats`), and :meth:`ServingCaches.bound_entries`
sets the largest entry the model and the request limits allow (``entry_max_bytes``), so
``max_bytes = max_size × entry_max_bytes`` is the most a full cache can hold; a spec's own
``max_bytes`` (the user-profile cache's: 256 MiB) lowers ``max_size`` to what fits in it, so the
bound holds at any catalogue size.

Admission (``cache.admission: repeat``, the shipped config's; the code default ``always`` stores
every key): the user-profile and results caches store a key only when it was offered before,
remembered by a :class:`Doorkeeper` (TinyLFU's idea: most of a storefront's distinct visitors come
once, so storing their first answer costs a write, its sizing and an eviction for nothing). A
repeat visitor is cached from their second request. The results cache keeps the answers it held
back in a small *window* as well (W-TinyLFU's window: ``WINDOW_SHARE`` of ``max_size`` entries,
the oldest going first, each until its own TTL), so a visitor's second request within it is a
hit instead of a second computation of the same answer (at 1M users × 50K products an uncached
known user costs ~1.5 ms), while one-off visitors still never push the main cache's entries out.
A window entry is never moved into the main cache (it would outlive its TTL there): the key is
stored there on its next miss, as before.

One :class:`ServingCaches` belongs to one model version: a reload builds a new, empty one, so a
cache can never serve scores of the previous model. Access is lock-protected because the warm-up
thread fills the caches while requests read them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cachetools import TTLCache

from recommender.config.serving import CacheSettings, CacheSpec
from recommender.serving.ranked import Ranked

Sizer = Callable[[Any, Any], int]
ENTRY_OVERHEAD_BYTES = 200  # cachetools' per-key links and dicts + the size ledger (measured)
SPARSE_SHARE = 0.125  # a profile with fewer finite scores is cached as a SparseProfile
MAX_ID_CHARS = 128  # longest user id a request may send (the service schema's bound)
_WIDEST_ID = "\U0010ffff" * MAX_ID_CHARS  # 4 bytes per character: the largest such str
_DIGEST_BYTES = 16  # RecommendOptions.digest
_INT_BYTES = sys.getsizeof(2**20)  # a product index (small ints are shared, larger ones not)
_FLOAT_BYTES = sys.getsizeof(0.5)
WINDOW_SHARE = 0.1  # the results cache's window, a share of its max_size (see the docstring)


def generic_entry_bytes(key: Any, value: Any) -> int:
    """Shallow size of key and value plus the cache's bookkeeping (for simple values)."""
    return ENTRY_OVERHEAD_BYTES + sys.getsizeof(key) + sys.getsizeof(value)


@dataclass(frozen=True)
class SparseProfile:
    """A profile scored over a candidate union only (``-inf`` elsewhere, the ANN candidate
    stage), kept as its other entries: at 50K products ~1,000 of 50,000 scores, ~8 KB instead
    of 200 KB, so a cache bounded in bytes holds ~25× more of them."""

    indices: np.ndarray  # (m,) int32, ascending
    values: np.ndarray  # (m,) float32

    def write_into(self, row: np.ndarray) -> None:
        """The dense profile, bit for bit, into ``row``."""
        row.fill(-np.inf)
        row[self.indices] = self.values


def pack_profile(vector: np.ndarray) -> np.ndarray | SparseProfile:
    """What the profile cache stores for ``vector``: its non-``-inf`` entries when they are
    under ``SPARSE_SHARE`` of it (a candidate-stage profile), else a read-only copy (or
    ``vector`` itself when it is already a read-only array owning its data)."""
    if not vector.size or vector.min() > -np.inf:  # dense: one reduction, no index array
        return _read_only(vector)
    kept = np.flatnonzero(vector != -np.inf)
    if kept.size < SPARSE_SHARE * vector.size:
        values = vector[kept]
        indices = kept.astype(np.int32)
        values.setflags(write=False)
        indices.setflags(write=False)
        return SparseProfile(indices, values)
    return _read_only(vector)


def _read_only(vector: np.ndarray) -> np.ndarray:
    """``vector`` if it owns its data and is read-only (nobody can change it), else such a
    copy: the cache counts an entry's bytes with ``sys.getsizeof``, which sees owned data only."""
    if vector.base is None and not vector.flags.writeable:
        return vector
    copy = vector.copy()
    copy.setflags(write=False)
    return copy


def profile_entry_bytes(key: str, value: np.ndarray | SparseProfile) -> int:
    """A user-profile entry: the id and the (n,) float32 vector (which owns its data), or a
    :class:`SparseProfile`'s two arrays."""
    if isinstance(value, SparseProfile):
        arrays = sys.getsizeof(value.indices) + sys.getsizeof(value.values)
        return ENTRY_OVERHEAD_BYTES + sys.getsizeof(key) + sys.getsizeof(value) + arrays
    return ENTRY_OVERHEAD_BYTES + sys.getsizeof(key) + sys.getsizeof(value)


def neighbour_entry_bytes(key: tuple[int, str], value: tuple[np.ndarray, np.ndarray]) -> int:
    """An item-similarity entry: (index, method) and its (indices, scores) arrays."""
    key_bytes = sys.getsizeof(key) + sys.getsizeof(key[0])  # the method name is interned
    value_bytes = sys.getsizeof(value) + sum(sys.getsizeof(array) for array in value)
    return ENTRY_OVERHEAD_BYTES + key_bytes + value_bytes


def result_entry_bytes(key: tuple[str | None, bytes], value: Ranked) -> int:
    """A results entry: (owner, digest) and the answer's index and score lists (an int and a
    float object per item; the records are the catalogue's and are not counted)."""
    owner, digest = key
    key_bytes = sys.getsizeof(key) + sys.getsizeof(digest)
    key_bytes += 0 if owner is None else sys.getsizeof(owner)
    lists = sys.getsizeof(value.indices) + sys.getsizeof(value.scores)
    items = len(value.indices) * (_INT_BYTES + _FLOAT_BYTES)
    return ENTRY_OVERHEAD_BYTES + key_bytes + sys.getsizeof(value) + lists + items


class _CountingTTLCache(TTLCache):
    """A TTL + LRU cache that counts evictions (size pressure and expiry alike) and keeps a
    running total of its entries' estimated bytes."""

    def __init__(self, maxsize: int, ttl: float, sizer: Sizer) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl)
        self.evictions = 0
        self.bytes = 0
        self._sizer = sizer
        self._sizes: dict[Any, int] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)  # may evict others (popitem / expire below)
        size = self._sizer(key, value)
        self.bytes += size - self._sizes.get(key, 0)
        self._sizes[key] = size

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.bytes -= self._sizes.pop(key, 0)

    def clear(self) -> None:
        super().clear()  # TTLCache drops its tables directly, without __delitem__
        self._sizes.clear()
        self.bytes = 0

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evictions += 1
        return item

    def expire(self, time: float | None = None) -> list[tuple[Any, Any]]:
        expired = super().expire(time)  # removes through Cache.__delitem__, not ours
        self.evictions += len(expired)
        for key, _ in expired:
            self.bytes -= self._sizes.pop(key, 0)
        return expired


class Doorkeeper:
    """The keys offered recently: two generations of at most ``size`` keys each (the newer is
    filled, then becomes the older when full), so it remembers the last ``size`` to
    ``2·size`` distinct keys in bounded memory, at a set lookup per offer. Not thread-safe on
    its own (its cache's lock guards it)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._new: set[Hashable] = set()
        self._old: set[Hashable] = set()

    def seen_before(self, key: Hashable) -> bool:
        """Whether ``key`` was offered before (and remembered); remembers it when not."""
        if key in self._new or key in self._old:
            return True
        if len(self._new) >= self.size:
            self._old, self._new = self._new, set()
        self._new.add(key)
        return False

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def clear(self) -> None:
        self._new.clear()
        self._old.clear()


class Window:
    """The values of keys admission held back: at most ``size``, the least recently used going
    first, each until ``ttl`` seconds after it was put (a hit does not extend it). Not
    thread-safe on its own (its cache's lock guards it)."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = max(0, int(size))
        self.ttl = ttl
        self._clock = clock  # TTLCache's default timer
        self._entries: dict[Hashable, tuple[float, Any]] = {}  # key -> (expiry, value)
        self.hits = 0  # counted by the cache (lookups that count)

    def put(self, key: Hashable, value: Any) -> None:
        if not self.size:
            return
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (self._clock() + self.ttl, value)
        if len(entries) > self.size:
            del entries[next(iter(entries))]

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        if entry[0] <= self._clock():  # expired: gone
            return None
        self._entries[key] = entry  # most recently used last
        return entry[1]

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class CountingCache:
    """A named, thread-safe TTL/LRU cache with hit, miss and eviction counters; with
    ``admission`` a key is stored on its second :meth:`put` only (see :class:`Doorkeeper`),
    and with a ``window`` share as well the held-back values wait in a :class:`Window` of
    ``window × max_size`` entries, where :meth:`get` finds them (counted as hits)."""

    def __init__(
        self,
        name: str,
        spec: CacheSpec,
        sizer: Sizer = generic_entry_bytes,
        admission: bool = False,
        window: float = 0.0,
    ) -> None:
        self.name = name
        self.max_size = int(spec.max_size)
        self.ttl_seconds = float(spec.ttl_seconds)
        self.max_bytes = spec.max_bytes
        self.entry_max_bytes: int | None = None  # set by ServingCaches.bound_entries
        self._sizer = sizer
        self._cache = _CountingTTLCache(self.max_size, self.ttl_seconds, sizer)
        self._lock = threading.Lock()
        # remembers as many keys as the cache holds entries: a key evicted from it is still
        # likely to be remembered, so a returning visitor is stored again on their next request
        self.doorkeeper = Doorkeeper(self.max_size) if admission else None
        self._window_share = window if admission else 0.0
        self.window = Window(self._window_entries(self.max_size), self.ttl_seconds)
        self.hits = 0
        self.misses = 0
        self.not_admitted = 0

    def _window_entries(self, max_size: int) -> int:
        return int(max_size * self._window_share) if self._window_share > 0 else 0

    def bound_entry(self, entry_max_bytes: int) -> None:
        """Set the largest entry's size; under the spec's ``max_bytes`` the cache then holds no
        more entries than fit in it (a 50,000-product profile is 200 KB: 50,000 of them would
        be 10 GB a worker). Called before the cache is used: shrinking it drops its entries."""
        self.entry_max_bytes = entry_max_bytes
        if self.max_bytes is None:
            return
        fitting = max(1, self.max_bytes // entry_max_bytes)
        if fitting < self.max_size + self.window.size:  # the window's entries fit as well
            fitting = max(1, int(fitting / (1 + self._window_share)))
            with self._lock:
                self.max_size = fitting
                self._cache = _CountingTTLCache(fitting, self.ttl_seconds, self._sizer)
                if self.doorkeeper is not None:
                    self.doorkeeper = Doorkeeper(fitting)
                self.window = Window(self._window_entries(fitting), self.ttl_seconds)

    def get(self, key: Hashable, count: bool = True) -> Any | None:
        """The cached value or ``None``, counted as a hit or a miss unless ``count`` is False."""
        with self._lock:
            value = self._cache.get(key)
            windowed = False
            if value is None and self.window.size:
                value = self.window.get(key)
                windowed = value is not None
            if not count:
                return value
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self.window.hits += windowed
            return value

    def admits(self, key: Hashable) -> bool:
        """Whether a :meth:`put` of ``key`` would store it now (remembering the key when
        admission holds it back, as that put would): lets a caller skip building the value."""
        with self._lock:
            return self._admits(key)

    def _admits(self, key: Hashable) -> bool:
        keeper = self.doorkeeper
        if keeper is None or keeper.seen_before(key):
            return True
        self.not_admitted += 1
        return False

    def put(self, key: Hashable, value: Any, force: bool = False) -> bool:
        """Store ``value`` (the least recently used entry goes when the cache is full), unless
        admission holds a first-seen key back; ``force`` (warm-up, or after :meth:`admits`)
        stores it anyway. Whether it was stored."""
        with self._lock:
            if not force and not self._admits(key):
                self.window.put(key, value)  # (no-op without a window)
                return False
            self._cache[key] = value
            if self.window.size:
                self.window.discard(key)  # (an expired one's leftover)
            return True

    def __contains__(self, key: Hashable) -> bool:
        """Whether the main cache holds ``key`` (not its window)."""
        with self._lock:
            return key in self._cache

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def clear(self) -> None:
        """Drop every entry and remembered key (counters are kept: they describe the
        process's history)."""
        with self._lock:
            self._cache.clear()
            self.window.clear()
            if self.doorkeeper is not None:
                self.doorkeeper.clear()

    @property
    def bytes(self) -> int:
        """Estimated bytes held by the entries now."""
        with self._lock:
            return self._cache.bytes

    def stats(self) -> dict[str, Any]:
        """Size, capacity, counters and memory: ``bytes`` now, ``entry_max_bytes`` (largest
        entry) and ``max_bytes`` (``(max_size + window_max_size) × entry_max_bytes``, the
        bound) when known; ``not_admitted``: first-seen keys held back by admission
        (``admission`` on/off); with a window, its size, bound and hits (in ``hits`` too)."""
        with self._lock:
            total = self.hits + self.misses
            bound = self.entry_max_bytes
            window = self.window
            stats = {
                "size": len(self._cache),
                "max_size": self.max_size,
                "ttl_seconds": self.ttl_seconds,
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else 0.0,
                "evictions": self._cache.evictions,
                "bytes": self._cache.bytes,
                "entry_max_bytes": bound,
                "max_bytes": None if bound is None else bound * (self.max_size + window.size),
                "admission": self.doorkeeper is not None,
                "not_admitted": self.not_admitted,
            }
            if window.size:
                stats.update(
                    window_size=len(window), window_max_size=window.size, window_hits=window.hits
                )
            return stats


@dataclass
class WarmupReport:
    """What the last warm-up did; ``state`` is ``pending``, ``running``, ``done``, ``partial``
    (stopped by the time budget), ``disabled`` or ``failed``."""

    state: str = "pending"
    items_warmed: int = 0
    users_warmed: int = 0
    seconds: float = 0.0
    max_seconds: float = 0.0
    started_at: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "state": self.state,
            "items_warmed": self.items_warmed,
            "users_warmed": self.users_warmed,
            "seconds": round(self.seconds, 4),
            "max_seconds": self.max_seconds,
            "started_at": self.started_at,
            "error": self.error,
        }


@dataclass
class ServingCaches:
    """The caches of one model version and its warm-up report."""

    user_profiles: CountingCache
    item_similarity: CountingCache
    results: CountingCache
    warmup: WarmupReport = field(default_factory=WarmupReport)
    _started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> ServingCaches:
        """The caches ``settings`` describe; admission applies to the per-user caches (a
        product's neighbours are asked for by many users: stored at once); the results cache
        keeps what it held back in a window (an answer is small, a profile is not)."""
        repeat = settings.admission == "repeat"
        return cls(
            user_profiles=CountingCache(
                "user_profile", settings.user_profile, profile_entry_bytes, repeat
            ),
            item_similarity=CountingCache(
                "item_similarity", settings.item_similarity, neighbour_entry_bytes
            ),
            results=CountingCache(
                "results", settings.results, result_entry_bytes, repeat, WINDOW_SHARE
            ),
        )

    def bound_entries(
        self,
        n_items: int,
        record: Mapping[str, Any],
        max_topk: int,
        max_neighbours: int,
    ) -> None:
        """Set each cache's largest entry from the model and request limits: a profile of
        ``n_items`` scores, ``max_neighbours`` neighbours, ``max_topk`` records shaped like
        ``record``; the keys with the widest id a request may send."""
        profile = np.zeros(n_items, dtype=np.float32)
        indices = np.zeros(min(max_neighbours, n_items), dtype=np.int64)
        answer = Ranked(list(range(max_topk)), [0.5] * max_topk, [record])
        self.user_profiles.bound_entry(profile_entry_bytes(_WIDEST_ID, profile))
        self.item_similarity.bound_entry(
            neighbour_entry_bytes(
                (n_items + 1000, "content"), (indices, indices.astype(np.float64))
            )
        )
        self.results.bound_entry(result_entry_bytes((_WIDEST_ID, bytes(_DIGEST_BYTES)), answer))

    def clear(self) -> None:
        """Drop every entry of every cache."""
        self.user_profiles.clear()
        self.item_similarity.clear()
        self.results.clear()

    def stats(self) -> dict[str, Any]:
        """Per-cache stats and the warm-up report (the body of ``/cache_stats``)."""
        return {
            "user_profile": self.user_profiles.stats(),
            "item_similarity": self.item_similarity.stats(),
            "results": self.results.stats(),
            "warmup": self.warmup.as_dict(),
        }
