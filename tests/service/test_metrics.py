"""GET /metrics parsed as Prometheus text: requests, paths, errors, caches, model, reloads, warm-up;
GET /stats carries the same numbers; multiprocess mode sums the workers."""

from __future__ import annotations

import time

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import SwitchableLoader, make_client

Samples = dict[tuple[str, frozenset], float]


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_recommend_counter_and_histogram_increment_by_exactly_n(client):
    before = scrape(client)
    for user in ("t0", "t1", "t2", "t3", "t4"):
        assert client.post("/recommend", json={"user_id": user}).status_code == 200
    after = scrape(client)
    key = {"endpoint": "/recommend", "status": "200"}
    assert (
        value(after, "recsys_http_requests_total", **key)
        - value(before, "recsys_http_requests_total", **key)
        == 5
    )
    count = "recsys_http_request_duration_seconds_count"
    assert (
        value(after, count, endpoint="/recommend") - value(before, count, endpoint="/recommend")
        == 5
    )
    assert (
        value(
            after, "recsys_http_request_duration_seconds_bucket", endpoint="/recommend", le="+Inf"
        )
        == 5
    )
    assert value(after, "recsys_http_request_duration_seconds_sum", endpoint="/recommend") > 0
    # the first scrape itself is counted by the second
    assert value(after, "recsys_http_requests_total", endpoint="/metrics", status="200") == 1


def test_paths_counted_per_request_and_per_user(client):
    for user in ("t0", "c0", "x1", "x2"):
        client.post("/recommend", json={"user_id": user})
    client.post("/batch_recommend", json={"user_ids": ["t1", "x3", "c1"]})
    samples = scrape(client)
    hist = "recsys_recommend_request_duration_seconds_count"
    assert [value(samples, hist, path=p) for p in ("cf", "content", "popularity")] == [1, 1, 2]
    users = "recsys_recommendations_total"
    assert [value(samples, users, path=p) for p in ("cf", "content", "popularity")] == [2, 2, 3]
    stats = client.get("/stats").json()
    assert stats["paths"] == {"cf": 2, "content": 2, "popularity": 3}
    by_path = stats["recommend_latency_ms_by_path"]
    assert by_path["popularity"]["p50"] > 0 and by_path["cf"]["p99"] > 0


def test_errors_counted_by_code(client, admin_token):
    client.post("/recommend", json={"user_id": "t0", "topk": 0})
    client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    client.post("/similar_items", json={"product_id": "nope"})
    client.post(
        "/recommend", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    client.get("/nope")
    client.post("/cache_clear")  # no token sent
    samples = scrape(client)
    errors = "recsys_http_errors_total"
    assert value(samples, errors, endpoint="/recommend", code="invalid_request") == 2
    assert value(samples, errors, endpoint="/recommend", code="body_too_large") == 1
    assert value(samples, errors, endpoint="/similar_items", code="unknown_product") == 1
    assert value(samples, errors, endpoint="other", code="not_found") == 1
    assert value(samples, errors, endpoint="/cache_clear", code="unauthorized") == 1
    assert value(samples, "recsys_http_requests_total", endpoint="/recommend", status="413") == 1
    assert client.get("/stats").json()["errors_by_code"] == {
        "body_too_large": 1,
        "invalid_request": 2,
        "not_found": 1,
        "unauthorized": 1,
        "unknown_product": 1,
    }


def test_cache_metrics_read_live_caches(client):
    client.post("/recommend", json={"user_id": "t0", "explain": True})  # profile miss, no result
    client.post("/recommend", json={"user_id": "t0", "topk": 5})  # result miss, profile hit
    client.post("/recommend", json={"user_id": "t0", "topk": 5})  # result hit
    client.post("/similar_items", json={"product_id": "p2"})
    samples = scrape(client)
    cache_stats = client.get("/cache_stats").json()
    for cache in ("user_profile", "item_similarity", "results"):
        for field in ("hits", "misses", "evictions"):
            assert (
                value(samples, f"recsys_cache_{field}_total", cache=cache)
                == cache_stats[cache][field]
            ), (cache, field)
        assert value(samples, "recsys_cache_size", cache=cache) == cache_stats[cache]["size"]
    assert value(samples, "recsys_cache_hits_total", cache="results") == 1
    assert value(samples, "recsys_cache_misses_total", cache="results") == 1
    assert value(samples, "recsys_cache_hits_total", cache="user_profile") == 1
    assert value(samples, "recsys_cache_misses_total", cache="item_similarity") == 1
    assert value(samples, "recsys_cache_max_size", cache="user_profile") == 50000
    assert value(samples, "recsys_cache_size", cache="results") == 1
    caches = client.get("/stats").json()["caches"]
    assert caches["results"]["hits"] == 1 and caches["user_profile"]["misses"] == 1


def test_cache_evictions_counted():
    with make_client(cache={"results": {"max_size": 2}}) as client:
        for user in ("t0", "t1", "t2", "t3"):
            client.post("/recommend", json={"user_id": user})
        samples = scrape(client)
    assert value(samples, "recsys_cache_evictions_total", cache="results") == 2
    assert value(samples, "recsys_cache_size", cache="results") == 2


def test_model_info_metric(client):
    samples = scrape(client)
    labels = {
        "model_id": "m1",
        "model_type": "als",
        "data_version": "dv1",
        "embedding_version": "ev1",
    }
    assert value(samples, "recsys_model_info", **labels) == 1
    assert value(samples, "recsys_model_loaded") == 1
    assert value(samples, "recsys_model_loaded_timestamp_seconds") > 0
    model = client.get("/stats").json()["model"]
    assert {k: model[k] for k in labels} == labels


def test_reload_counters_failure_then_success(admin_token):
    loader = SwitchableLoader("m1")
    with make_client(loader=loader) as client:
        started = time.time()
        before = scrape(client)
        assert value(before, "recsys_model_reloads_total", result="success") == 1  # startup
        client.post("/recommend", json={"user_id": "t0"})
        loader.model_id = None
        assert client.post("/reload_model", headers=admin_token).status_code == 503
        failed = scrape(client)
        assert value(failed, "recsys_model_reloads_total", result="failure") == 1
        assert value(failed, "recsys_model_reloads_total", result="success") == 1
        assert value(failed, "recsys_model_last_reload_timestamp_seconds", result="failure") >= (
            started
        )
        assert (
            value(
                failed, "recsys_http_errors_total", endpoint="/reload_model", code="reload_failed"
            )
            == 1
        )
        info = {"model_type": "als", "data_version": "dv1", "embedding_version": "ev1"}
        assert value(failed, "recsys_model_info", model_id="m1", **info) == 1
        assert value(failed, "recsys_cache_misses_total", cache="results") == 1
        loader.model_id = "m2"
        assert client.post("/reload_model", headers=admin_token).status_code == 200
        reloaded = scrape(client)
        assert value(reloaded, "recsys_model_reloads_total", result="success") == 2
        assert value(reloaded, "recsys_model_reloads_total", result="failure") == 1
        assert value(reloaded, "recsys_cache_misses_total", cache="results") == 0  # new caches
        infos = [k for k in reloaded if k[0] == "recsys_model_info"]
        assert [dict(k[1])["model_id"] for k in infos] == ["m2"]
        reloads = client.get("/stats").json()["reloads"]
        assert (reloads["successes"], reloads["failures"]) == (2, 1)
        assert reloads["last_failure_at"] >= started and reloads["last_error"] is None
        assert reloads["last_success_at"] >= reloads["last_failure_at"]


def test_failure_series_are_exported_at_zero_before_any_failure(client):
    """The alert rules' increase() needs the 0 before the first failure (deploy/prometheus)."""
    samples = scrape(client)
    keys = {key for key in samples}
    assert ("recsys_model_reloads_total", frozenset({("result", "failure")})) in keys
    assert value(samples, "recsys_model_reloads_total", result="failure") == 0
    for operation in ("append", "append_products", "read"):
        key = ("recsys_event_store_errors_total", frozenset({("operation", operation)}))
        assert samples[key] == 0, operation


def test_without_model_metrics_still_answer():
    with make_client(loader=SwitchableLoader(None)) as client:
        samples = scrape(client)
        stats = client.get("/stats").json()
    assert value(samples, "recsys_model_loaded") == 0
    assert value(samples, "recsys_model_reloads_total", result="failure") == 1
    assert not [k for k in samples if k[0].startswith(("recsys_model_info", "recsys_cache_"))]
    assert stats["model"] is None and stats["caches"] is None
    assert stats["reloads"]["failures"] == 1 and stats["reloads"]["successes"] == 0


def test_warmup_state_and_duration():
    with make_client(warmup={"enabled": True}) as client:
        client.app.state.holder.wait_for_warmup(10)
        samples = scrape(client)
        report = client.get("/cache_stats").json()["warmup"]
    assert report["state"] == "done"
    assert value(samples, "recsys_cache_warmup_state", state="done") == 1
    assert value(samples, "recsys_cache_warmup_state", state="running") == 0
    assert value(samples, "recsys_cache_warmup_duration_seconds") == report["seconds"]
    assert value(samples, "recsys_cache_warmup_items") == report["items_warmed"] > 0
    assert value(samples, "recsys_cache_warmup_users") == report["users_warmed"] > 0


def test_multiprocess_mode_sums_workers(tmp_path, monkeypatch):
    """Two apps standing for two workers (distinct process identifiers) share one directory:
    either one's /metrics shows both workers' requests and its own live caches."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    try:
        # metric values bind to a process's file when first used: each "worker" serves while
        # its process identifier is the active one
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 101))
        with make_client() as first:
            for _ in range(3):
                first.post("/recommend", json={"user_id": "t0"})
            monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 102))
            with make_client() as second:
                for _ in range(4):
                    second.post("/recommend", json={"user_id": "t0"})
            samples = scrape(first)
    finally:
        values.close_all_multiprocess_files()
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["counter_101.db", "counter_102.db"]
    assert value(samples, "recsys_http_requests_total", endpoint="/recommend", status="200") == 7
    assert value(samples, "recsys_recommendations_total", path="cf") == 7
    assert value(samples, "recsys_model_reloads_total", result="success") == 2
    # live state is the answering worker's: its results cache saw 1 miss and 2 hits
    assert value(samples, "recsys_cache_hits_total", cache="results") == 2
    assert value(samples, "recsys_model_loaded") == 1


@pytest.mark.parametrize("path", ["/stats", "/metrics"])
def test_stats_and_metrics_are_not_errors_without_traffic(client, path):
    assert client.get(path).status_code == 200


def test_internal_error_counted_as_500():
    with make_client(raise_server_exceptions=False) as client:

        def boom(*_args, **_kwargs):
            raise RuntimeError("bug")

        client.app.state.holder.state.engine.recommend = boom
        assert client.post("/recommend", json={"user_id": "t0"}).status_code == 500
        samples = scrape(client)
    assert value(samples, "recsys_http_requests_total", endpoint="/recommend", status="500") == 1
    errors = "recsys_http_errors_total"
    assert value(samples, errors, endpoint="/recommend", code="internal_error") == 1
