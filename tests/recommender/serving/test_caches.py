"""Caches: hits/misses/evictions, bypass for request weights, warm-up bounds, config sizes,
admission of repeat visitors."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from recommender.config.serving import CacheSpec, ServingSettings
from recommender.serving import CountingCache, ServingCaches
from recommender.serving.caches import (
    WINDOW_SHARE,
    Doorkeeper,
    SparseProfile,
    Window,
    pack_profile,
    profile_entry_bytes,
    result_entry_bytes,
)
from recommender.serving.ranked import Ranked
from tests.recommender.serving.conftest import COLD, N_ITEMS, TRAINABLE, make_engine


def test_counting_cache_counts_and_evicts_lru():
    cache = CountingCache("x", CacheSpec(max_size=2, ttl_seconds=60))
    assert cache.get("a") is None
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)  # evicts b
    assert "b" not in cache and "a" in cache
    assert cache.stats() == {
        "size": 2,
        "max_size": 2,
        "ttl_seconds": 60.0,
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
        "evictions": 1,
        "bytes": 2 * (200 + sys.getsizeof("a") + sys.getsizeof(1)),  # a and c
        "entry_max_bytes": None,
        "max_bytes": None,
        "admission": False,
        "not_admitted": 0,
    }
    cache.clear()
    assert len(cache) == 0 and cache.stats()["hits"] == 1 and cache.bytes == 0


def test_counting_cache_ttl_expiry_counts_as_eviction():
    cache = CountingCache("x", CacheSpec(max_size=10, ttl_seconds=0.05))
    cache.put("a", 1)
    time.sleep(0.08)
    assert cache.get("a") is None
    cache.put("b", 2)  # expiry runs on write
    assert cache.stats()["evictions"] == 1


def test_user_profile_cache_hit_after_miss():
    engine = make_engine()
    profiles = engine.caches.user_profiles
    first = engine.recommend("t0", topk=5)
    assert (profiles.hits, profiles.misses) == (0, 1)
    second = engine.recommend("t0", topk=6)  # other options: a new answer from the cached profile
    assert (profiles.hits, profiles.misses) == (1, 1)
    assert first.items == second.items[:5]
    engine.recommend("nobody", topk=5)  # unknown users have no profile: not counted
    assert (profiles.hits, profiles.misses, len(profiles)) == (1, 1, 1)


def test_results_cache_per_user_and_shared_by_unknown_users():
    engine = make_engine()
    results = engine.caches.results
    first = engine.recommend("c1", topk=4, filters={"brand": ["A"]})
    again = engine.recommend("c1", topk=4, filters={"brand": ["A"]})
    assert again.ranked is first.ranked and (results.hits, results.misses) == (1, 1)
    engine.recommend("c1", topk=4)  # other filters: another entry
    engine.recommend("c2", topk=4, filters={"brand": ["A"]})  # another user: another entry
    assert (results.hits, results.misses) == (1, 3)
    a = engine.recommend("visitor-1", topk=4, weights={"quality": 1})
    b = engine.recommend("visitor-2", topk=4, weights={"quality": 1.0})
    assert a.ranked is b.ranked and b.user_id == "visitor-2" and b.segment == "unknown"
    assert (results.hits, results.misses) == (2, 4)
    explained = engine.recommend("c1", topk=4, explain=True)
    assert "explain" in explained.items[0] and (results.hits, results.misses) == (2, 4)


def test_results_cache_equals_fresh_computation():
    cached, fresh = make_engine(), make_engine()
    for user in ("t0", "c0", "u"):
        cached.recommend(user, topk=7)
        assert (
            cached.recommend(user, topk=7).items == fresh.recommend_batch([user], topk=7)[0].items
        )


def test_doorkeeper_remembers_the_last_keys_in_two_generations():
    keeper = Doorkeeper(2)
    assert [keeper.seen_before(k) for k in ("a", "b", "a")] == [False, False, True]
    assert keeper.seen_before("c") is False  # the newer generation was full: a, b are older now
    assert keeper.seen_before("b") is True and keeper.seen_before("d") is False
    assert keeper.seen_before("e") is False  # {c, d} becomes the older: a and b are forgotten
    assert keeper.seen_before("a") is False and len(keeper) == 4  # {c, d} and {e, a}


def test_admission_stores_a_key_on_its_second_put():
    cache = CountingCache("x", CacheSpec(max_size=10, ttl_seconds=60), admission=True)
    assert cache.put("a", 1) is False and "a" not in cache
    assert cache.put("a", 1) is True and cache.get("a") == 1
    assert cache.put("b", 2, force=True) is True and "b" in cache  # warm-up: stored at once
    assert cache.stats()["not_admitted"] == 1 and cache.stats()["admission"] is True
    cache.clear()  # the remembered keys go with the entries
    assert cache.put("a", 1) is False


def _repeat_engine():
    settings = ServingSettings.model_validate({"cache": {"admission": "repeat"}})
    return make_engine(settings)


def test_repeat_admission_caches_a_user_from_their_second_request():
    engine, fresh = _repeat_engine(), make_engine()
    profiles, results = engine.caches.user_profiles, engine.caches.results
    for user in ("t0", "c0"):
        key = (user, engine.options(topk=7).digest)
        first = engine.recommend(user, topk=7)
        assert not any(k[0] == user for k in results._cache) and user not in profiles
        second = engine.recommend(user, topk=7)  # the held-back answer, from the window
        assert second.ranked is first.ranked and key not in results
        results.window.clear()  # (as when a stream of first visitors pushed it out)
        third = engine.recommend(user, topk=7)  # computed again: a repeat, now stored
        assert user in profiles and key in results
        fourth = engine.recommend(user, topk=7)  # answered from the results cache
        assert fourth.ranked is third.ranked is results.get(key, count=False)
        expected = fresh.recommend(user, topk=7)
        for answer in (first, second, third, fourth):
            assert answer.items == expected.items
            assert [i["score"] for i in answer.items] == [i["score"] for i in expected.items]
    assert profiles.not_admitted == 2 and results.not_admitted == 2
    assert (results.hits, results.window.hits, results.misses) == (4, 2, 4)


def test_the_window_keeps_held_back_values_until_their_ttl_least_recently_used_first():
    now = [0.0]
    window = Window(2, ttl=10.0, clock=lambda: now[0])
    window.put("a", 1)
    window.put("b", 2)
    assert window.get("a") == 1  # b is now the least recently used
    window.put("c", 3)
    assert window.get("b") is None and len(window) == 2
    now[0] = 9.9
    assert (window.get("a"), window.get("c")) == (1, 3)  # a hit does not extend the TTL
    now[0] = 10.0
    assert window.get("a") is None and window.get("c") is None and len(window) == 0


def test_a_window_answers_held_back_keys_and_is_bounded_and_cleared_with_the_cache():
    cache = CountingCache("x", CacheSpec(max_size=20, ttl_seconds=60), admission=True, window=0.1)
    assert cache.window.size == 2
    assert cache.put("a", 1) is False and "a" not in cache  # held back: not in the main cache
    assert cache.get("a") == 1 and cache.get("a", count=False) == 1
    assert cache.put("b", 2) is False and cache.put("c", 3) is False  # a goes (least recent)
    assert cache.get("a") is None and cache.get("b") == 2
    assert cache.put("c", 3) is True and "c" in cache and len(cache.window) == 1  # stored: moved
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["window_hits"]) == (2, 1, 2)
    assert (stats["window_size"], stats["window_max_size"]) == (1, 2)
    cache.clear()
    assert cache.get("b") is None and len(cache.window) == 0
    plain = CountingCache("p", CacheSpec(max_size=20, ttl_seconds=60), window=0.1)
    assert plain.window.size == 0 and "window_hits" not in plain.stats()  # no admission


def test_the_results_window_and_its_bound_under_max_bytes():
    caches = ServingCaches.from_settings(
        ServingSettings.model_validate({"cache": {"admission": "repeat"}}).cache
    )
    results, profiles = caches.results, caches.user_profiles
    assert results.window.size == int(results.max_size * WINDOW_SHARE)
    assert profiles.window.size == 0  # a profile is 4 bytes a product: never kept held back
    spec = CacheSpec(max_size=1000, ttl_seconds=60, max_bytes=10_000)
    bounded = CountingCache("b", spec, admission=True, window=0.25)
    bounded.bound_entry(100)  # 100 entries fit: main and window together
    assert (bounded.max_size, bounded.window.size) == (80, 20)
    assert bounded.stats()["max_bytes"] <= 10_000


def test_repeat_admission_keeps_warm_up_and_shared_visitor_entries():
    engine = _repeat_engine()
    engine.warm_up()
    assert len(engine.caches.user_profiles) == len(TRAINABLE) + len(COLD)  # warm-up is stored
    engine.recommend("t3")
    assert engine.caches.user_profiles.hits == 1
    first = engine.recommend("visitor-1", topk=4)
    second = engine.recommend("visitor-2", topk=4)  # visitors share one key: held back, then
    again = engine.recommend("visitor-3", topk=4)  # the window's
    assert engine.caches.results.hits == 2 and again.segment == "unknown"
    assert first.ranked is second.ranked is again.ranked


def test_request_weights_bypass_the_profile_cache():
    engine = make_engine()
    engine.recommend("c0", weights={"popularity": 1.0})
    assert engine.caches.user_profiles.stats()["size"] == 0
    assert engine.caches.user_profiles.misses == 0


def test_cache_size_from_config_bounds_entries():
    engine = make_engine(ServingSettings(cache={"user_profile": {"max_size": 3}}))
    for user in TRAINABLE:
        engine.recommend(user, topk=3)
    stats = engine.caches.user_profiles.stats()
    assert stats["size"] == 3 and stats["max_size"] == 3
    assert stats["evictions"] == len(TRAINABLE) - 3


def test_a_batch_neither_reads_nor_fills_the_profile_cache():
    """A campaign's users rarely return within the cache's lifetime: the batch path scores them
    together and leaves the profiles of the storefront's active users in place."""
    engine = make_engine()
    engine.recommend("c1")
    before = engine.caches.user_profiles.stats()
    batch = engine.recommend_batch(list(TRAINABLE) + ["c1", "c2"], topk=3)
    after = engine.caches.user_profiles.stats()
    assert (after["size"], after["hits"], after["misses"]) == (1, before["hits"], before["misses"])
    assert batch[-2] == make_engine().recommend("c1", topk=3)


def test_cached_profile_equals_fresh_scores():
    engine = make_engine()
    engine.recommend("c1")
    cached = engine.caches.user_profiles.get("c1")
    fresh = make_engine().recommend("c1", topk=5)
    assert not cached.flags.writeable
    assert np.isfinite(cached).all()
    assert engine.recommend("c1", topk=5).items == fresh.items


def test_similarity_cache():
    engine = make_engine()
    engine.similar_items("p3", topk=2)
    engine.similar_items("p3", topk=5)
    engine.similar_items("p3", topk=5, method="content")
    stats = engine.caches.item_similarity.stats()
    assert (stats["hits"], stats["misses"], stats["size"]) == (1, 2, 2)


def test_warm_up_fills_both_caches_without_counting():
    engine = make_engine()
    report = engine.warm_up()
    n_users = len(TRAINABLE) + len(COLD)
    assert report.state == "done"
    assert report.items_warmed == engine.bundle.n_items
    assert report.users_warmed == n_users
    stats = engine.caches.stats()
    assert stats["user_profile"]["size"] == n_users
    assert stats["item_similarity"]["size"] == engine.bundle.n_items
    assert stats["user_profile"]["misses"] == 0 and stats["item_similarity"]["misses"] == 0
    engine.recommend("t3")
    assert engine.caches.user_profiles.hits == 1


def test_warm_up_limits_from_config():
    engine = make_engine(ServingSettings(warmup={"popular_items": 3, "active_users": 2}))
    report = engine.warm_up()
    assert (report.items_warmed, report.users_warmed) == (3, 2)
    # the two most active users have 4 items each: t1 and t5
    assert "t1" in engine.caches.user_profiles and "t5" in engine.caches.user_profiles
    assert engine.caches.stats()["warmup"]["state"] == "done"


def test_warm_up_time_budget_and_disable():
    cut = make_engine(ServingSettings(warmup={"max_seconds": 0.0}))
    report = cut.warm_up()
    assert report.state == "partial" and report.items_warmed == 0
    off = make_engine(ServingSettings(warmup={"enabled": False}))
    assert off.warm_up().state == "disabled"
    assert len(off.caches.user_profiles) == 0


def _allocated(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes that ``build`` left allocated (tracemalloc; numpy reports its buffers too)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def test_maximal_filters_no_longer_grow_the_results_key():
    engine = make_engine()
    results = engine.caches.results
    plain = engine.recommend("visitor", topk=10)
    plain_bytes = results.bytes
    maximal = {  # the schema's limits: 1,000 excluded ids of 128 characters, 200 brands
        "exclude_product_ids": [f"{i:04d}" + "x" * 124 for i in range(1000)],
        "brand": ["A", "B", "C"] + [f"brand-{i:03d}" for i in range(197)],
    }
    filtered = engine.recommend("visitor", topk=10, filters=maximal)
    assert filtered.items == plain.items  # the filters exclude nothing: same answer
    assert len(results) == 2
    assert results.bytes == 2 * plain_bytes  # the second entry's key is no larger
    keys = list(results._cache.keys())
    assert [(owner, len(digest)) for owner, digest in keys] == [(None, 16), (None, 16)]


def test_estimated_bytes_match_measured_memory():
    n = 2000
    profiles = CountingCache("p", CacheSpec(max_size=400, ttl_seconds=60), profile_entry_bytes)
    used, _ = _allocated(
        lambda: [profiles.put(f"user-{i:05d}", np.ones(n, dtype=np.float32)) for i in range(400)]
    )
    assert profiles.bytes == 400 * (200 + sys.getsizeof("user-00000") + 112 + 4 * n)
    assert abs(used - profiles.bytes) / used < 0.05

    engine = make_engine()
    records = engine.bundle.catalogue.records
    results = CountingCache("r", CacheSpec(max_size=500, ttl_seconds=60), result_entry_bytes)
    rng = np.random.default_rng(0)
    scores = rng.random((500, 10))

    def fill() -> None:
        for u in range(500):
            ranked = Ranked([1000 + u * 10 + i for i in range(10)], scores[u].tolist(), records)
            results.put((f"user-{u:05d}", bytes(range(16))[:15] + bytes([u % 256])), ranked)

    used, _ = _allocated(fill)
    assert abs(used - results.bytes) / used < 0.1


def test_bound_per_entry_follows_model_and_limits():
    engine = make_engine(ServingSettings(requests={"max_topk": N_ITEMS}))
    caches = engine.caches
    widest = sys.getsizeof("\U0010ffff" * 128)
    vector = sys.getsizeof(np.zeros(N_ITEMS, dtype=np.float32))
    assert caches.user_profiles.entry_max_bytes == 200 + widest + vector
    engine.recommend("t1", topk=N_ITEMS, exclude_seen=False)
    stats = caches.stats()
    assert stats["results"]["bytes"] <= stats["results"]["entry_max_bytes"]
    assert stats["user_profile"]["bytes"] <= stats["user_profile"]["entry_max_bytes"]
    engine.similar_items("p3", topk=5)
    assert 0 < stats["item_similarity"]["entry_max_bytes"]
    assert caches.item_similarity.bytes <= caches.item_similarity.entry_max_bytes
    for name in ("user_profile", "item_similarity", "results"):
        cache = caches.stats()[name]
        assert cache["max_bytes"] == cache["max_size"] * cache["entry_max_bytes"]


def test_max_bytes_caps_the_profiles_a_wide_catalogue_keeps():
    spec = CacheSpec(max_size=50_000, ttl_seconds=60, max_bytes=1_000_000)
    profiles = CountingCache("p", spec, profile_entry_bytes, admission=True)
    wide = np.zeros(50_000, dtype=np.float32)  # a 50K-product profile: ~200 KB
    profiles.bound_entry(profile_entry_bytes("u" * 128, wide))
    assert profiles.max_size == 4  # 1 MB / ~200 KB, not 50,000 entries (10 GB)
    for i in range(10):
        profiles.put(f"user-{i}", wide.copy(), force=True)
    assert len(profiles) == 4 and profiles.bytes <= 1_000_000
    assert profiles.stats()["max_bytes"] <= 1_000_000
    assert profiles.doorkeeper is not None and profiles.doorkeeper.size == 4
    # a narrow catalogue keeps max_size: the byte bound is not reached
    narrow = CountingCache("n", spec.model_copy(update={"max_bytes": 10**9}), profile_entry_bytes)
    narrow.bound_entry(profile_entry_bytes("u" * 128, np.zeros(10, dtype=np.float32)))
    assert narrow.max_size == 50_000


def test_shipped_profile_cache_is_bounded_in_bytes():
    engine = make_engine()
    profiles = engine.caches.user_profiles
    assert profiles.max_bytes == 256 * 2**20
    assert profiles.max_size == 50_000  # the test shop's profiles are small: all fit


def test_a_candidate_profile_is_cached_sparse_and_restored_bit_for_bit():
    rng = np.random.default_rng(3)
    vector = np.full(50_000, -np.inf, dtype=np.float32)
    union = rng.choice(50_000, size=700, replace=False)
    vector[union] = rng.random(700, dtype=np.float32) - 0.5
    packed = pack_profile(vector)
    assert isinstance(packed, SparseProfile) and packed.indices.size == 700
    row = np.zeros(50_000, dtype=np.float32)
    packed.write_into(row)
    assert np.array_equal(row, vector)  # -inf outside the union, every score bit for bit
    sparse, dense = profile_entry_bytes("u1", packed), profile_entry_bytes("u1", vector.copy())
    assert sparse < dense / 20
    full = rng.random(2_000, dtype=np.float32)  # an exact profile stays a dense read-only copy
    kept = pack_profile(full)
    assert isinstance(kept, np.ndarray) and not kept.flags.writeable
    assert np.array_equal(kept, full) and kept is not full
