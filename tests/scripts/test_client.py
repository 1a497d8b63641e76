"""The scripts' shared helpers and the load test's request plan (no server needed)."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import _client  # noqa: E402

CATALOGUE = {"product_id": ["p1", "p2"], "brand": ["B"], "category": ["C"], "price": [1.0, 9.0]}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _client.percentile(values, 50) == 50.0
    assert _client.percentile(values, 99) == 99.0
    assert _client.percentile(values, 100) == 100.0
    assert _client.percentile([7.0], 95) == 7.0
    assert _client.percentile([], 95) == 0.0


def test_cache_counters_sum_every_cache_wherever_nested() -> None:
    stats = {
        "caches": {
            "user_profile": {"size": 3, "hits": 8, "misses": 2, "evictions": 1, "hit_rate": 0.8},
            "item_similarity": {"size": 1, "hits": 1, "misses": 9, "evictions": 0},
        },
        "warmup": {"done": True},
    }
    assert _client.cache_counters(stats) == {"hits": 9, "misses": 11, "evictions": 1}
    assert _client.per_cache(stats) == {
        "user_profile": {"hits": 8, "misses": 2},
        "item_similarity": {"hits": 1, "misses": 9},
    }
    assert _client.hit_rate(9, 11) == 0.45
    assert _client.hit_rate(0, 0) is None


def test_users_come_from_the_service_before_the_files(tmp_path: Path) -> None:
    (tmp_path / "trainable_user_mapping.json").write_text(json.dumps({"user_ids": ["1", "2"]}))
    (tmp_path / "user_item_mappings.json").write_text(json.dumps({"user_ids": ["1", "2", 3]}))
    from_files = _client.discover_users([None, {"status": "ok"}], tmp_path)
    assert (from_files.trainable, from_files.cold) == (["1", "2"], ["3"])
    advertised = {"sample_user_ids": {"trainable": [10], "cold": ["c"]}}
    from_service = _client.discover_users([advertised], tmp_path)
    assert (from_service.trainable, from_service.cold) == (["10"], ["c"])
    load_pool = _client.discover_users([advertised], tmp_path, prefer_files=True)
    assert (load_pool.trainable, load_pool.cold) == (["1", "2"], ["3"])
    only_service = _client.discover_users([advertised], tmp_path / "missing", prefer_files=True)
    assert only_service.source == "service:sample_user_ids"
    assert _client.discover_users([], tmp_path / "missing").source == "none"


def test_admin_token_comes_from_the_services_variable(monkeypatch) -> None:
    monkeypatch.delenv("RECSYS_ADMIN_TOKEN", raising=False)
    assert _client.admin_token_default() is None and _client.admin_headers(None) == {}
    monkeypatch.setenv("RECSYS_ADMIN_TOKEN", "t0ken")
    assert _client.admin_token_default() == "t0ken"
    assert _client.admin_headers("t0ken") == {"X-Admin-Token": "t0ken"}


def test_cold_users_from_the_files_have_a_positive_interaction(tmp_path: Path) -> None:
    import pandas as pd

    (tmp_path / "trainable_user_mapping.json").write_text(json.dumps({"user_ids": ["1"]}))
    (tmp_path / "user_item_mappings.json").write_text(json.dumps({"user_ids": ["1", "2", "3"]}))
    pd.DataFrame(
        {"user_id": ["1", "1", "2", "3", "3"], "is_positive": [True, True, False, True, False]}
    ).to_parquet(tmp_path / "interactions.parquet")
    pool = _client.discover_users([None], tmp_path)
    # "2" only rated below the threshold: the service answers them like an unknown user
    assert (pool.trainable, pool.cold) == (["1"], ["3"])


def test_unknown_ids_are_fresh() -> None:
    pool = _client.UserPool(["1"], ["2"])
    first, second = pool.unknown(5), pool.unknown(5)
    assert len(set(first)) == 5 and not set(first) & set(second) and "1" not in first


def test_mixed_plan_is_mostly_cold_start_and_zipf_skewed() -> None:
    pool = _client.UserPool([f"t{i}" for i in range(50)], [f"c{i}" for i in range(200)])
    plan = _client.build_plan(pool, "mixed", 4000, CATALOGUE, seed=1)
    segments = Counter(segment for segment, _ in plan)
    assert segments["unknown"] / 4000 == pytest.approx(0.6, abs=0.03)
    assert segments["cold"] / 4000 == pytest.approx(0.3, abs=0.03)
    assert segments["trainable"] / 4000 == pytest.approx(0.1, abs=0.02)
    cold_users = Counter(p["user_id"] for s, p in plan if s == "cold")
    top_share = sum(n for _, n in cold_users.most_common(20)) / segments["cold"]
    assert top_share > 0.5  # 10% of the users make most of the requests
    with_filters = sum("filters" in p for _, p in plan)
    with_weights = sum("rerank_weights" in p for _, p in plan)
    assert 300 < with_filters < 500 and 300 < with_weights < 500
    again = _client.build_plan(pool, "mixed", 4000, CATALOGUE, seed=1)
    assert [s for s, _ in again] == [s for s, _ in plan]


def test_cf_mix_needs_trainable_users() -> None:
    plan = _client.build_plan(_client.UserPool(["t"], []), "cf", 10, CATALOGUE, seed=0)
    assert {s for s, _ in plan} == {"trainable"}
    with pytest.raises(_client.Unreachable, match="no user ids"):
        _client.build_plan(_client.UserPool([], ["c"]), "cf", 10, CATALOGUE, seed=0)


def test_filters_only_use_catalogue_values() -> None:
    rng = random.Random(3)
    seen = [_client.random_filter(CATALOGUE, rng) for _ in range(200)]
    assert {next(iter(f)) for f in seen} == {
        "exclude_product_ids",
        "brand",
        "category",
        "price_max",
    }
    assert all(f.get("brand", ["B"]) == ["B"] and f.get("price_max", 9.0) == 9.0 for f in seen)


def test_scripts_default_paths_are_the_librarys() -> None:
    from recommender import vocabulary as V

    assert _client.DEFAULT_PROCESSED_DIR == V.DEFAULT_PROCESSED_DIR == "data/processed"
    assert _client.DEFAULT_REGISTRY_DIR == V.DEFAULT_REGISTRY_DIR == "artifacts/cf"
