"""Serving caches (``cachetools``) with hit/miss/eviction counters and a bounded warm-up report.

- user profiles: user id -> the user's hybrid score vector ``(n,)`` float32 under the model's
  default weights (requests with their own ``rerank_weights`` bypass it). ``4·n`` bytes per entry.
- item similarity: (item index, method) -> (neighbour indices, scores) of a product.
- results: (user id or ``None`` for users without history, options) -> the ranked records of a
  single ``/recommend`` answer; every visitor without history shares one entry per options.

One :class:`ServingCaches` belongs to one model version: a reload builds a new, empty one, so a
cache can never serve scores of the previous model. Access is lock-protected because the warm-up
thread fills the caches while requests read them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from recommender.config.serving import CacheSettings, CacheSpec


class _CountingTTLCache(TTLCache):
    """A TTL + LRU cache that counts evictions (size pressure and expiry alike)."""

    def __init__(self, maxsize: int, ttl: float) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl)
        self.evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evictions += 1
        return item

    def expire(self, time: float | None = None) -> list[tuple[Any, Any]]:
        expired = super().expire(time)
        self.evictions += len(expired)
        return expired


class CountingCache:
    """A named, thread-safe TTL/LRU cache with hit, miss and eviction counters."""

    def __init__(self, name: str, spec: CacheSpec) -> None:
        self.name = name
        self.max_size = int(spec.max_size)
        self.ttl_seconds = float(spec.ttl_seconds)
        self._cache = _CountingTTLCache(self.max_size, self.ttl_seconds)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, count: bool = True) -> Any | None:
        """The cached value or ``None``, counted as a hit or a miss unless ``count`` is False."""
        with self._lock:
            value = self._cache.get(key)
            if not count:
                return value
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._cache[key] = value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._cache

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def clear(self) -> None:
        """Drop every entry (counters are kept: they describe the process's history)."""
        with self._lock:
            self._cache.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            total = self.hits + self.misses
            return {
                "size": len(self._cache),
                "max_size": self.max_size,
                "ttl_seconds": self.ttl_seconds,
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else 0.0,
                "evictions": self._cache.evictions,
            }


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
        return cls(
            user_profiles=CountingCache("user_profile", settings.user_profile),
            item_similarity=CountingCache("item_similarity", settings.item_similarity),
            results=CountingCache("results", settings.results),
        )

    def clear(self) -> None:
        self.user_profiles.clear()
        self.item_similarity.clear()
        self.results.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "user_profile": self.user_profiles.stats(),
            "item_similarity": self.item_similarity.stats(),
            "results": self.results.stats(),
            "warmup": self.warmup.as_dict(),
        }
