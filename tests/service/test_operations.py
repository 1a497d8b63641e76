"""Health, model info, stats, caches, metrics, similar items, admin, startup without a model."""

from __future__ import annotations

import os

import pytest

from tests.service.conftest import ADMIN_ENV, TOKEN, SwitchableLoader, make_client


def test_health_and_model_info(client):
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["model_id"] == "m1" and body["model_type"] == "als"
    assert (body["n_users"], body["n_trainable_users"], body["n_items"]) == (10, 6, 24)
    assert body["pid"] == os.getpid() and body["uptime_seconds"] >= 0
    info = client.get("/model_info").json()
    assert info["model_id"] == "m1" and info["factors"] == 4
    assert info["data_version"] == "dv1" and info["embedding_version"] == "ev1"
    assert info["embedding_model"] == "tfidf" and info["metrics"] == {"ndcg@10": 0.1}
    assert info["hybrid"]["weights"]["cold"]["cf"] == 0.5
    assert info["sample_user_ids"]["trainable"][:2] == ["t1", "t5"]
    assert set(info["sample_user_ids"]["cold"]) == {"c0", "c1", "c2", "c3"}
    assert info["loaded_at"] and info["reloads"] == 1


def test_stats_count_endpoints_paths_and_errors(client):
    for user in ("t0", "c0", "x1", "x2"):
        client.post("/recommend", json={"user_id": user})
    client.post("/batch_recommend", json={"user_ids": ["t1", "x3"]})
    client.post("/recommend", json={"user_id": "t0", "topk": 0})
    stats = client.get("/stats").json()
    assert stats["paths"] == {"cf": 2, "content": 1, "popularity": 3}
    recommend = stats["endpoints"]["/recommend"]
    assert (recommend["count"], recommend["errors"]) == (5, 1)
    latency = recommend["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert stats["endpoints"]["/batch_recommend"]["count"] == 1
    assert stats["requests_total"] == 6 and stats["errors_total"] == 1
    assert stats["model_id"] == "m1"


def test_cache_stats_shape_and_counters(client):
    client.post("/recommend", json={"user_id": "t0"})
    client.post("/recommend", json={"user_id": "t0", "topk": 5})
    client.post("/recommend", json={"user_id": "t0", "topk": 5})
    client.post("/similar_items", json={"product_id": "p2"})
    stats = client.get("/cache_stats").json()
    profile = stats["user_profile"]
    assert {
        k: profile[k] for k in ("size", "max_size", "hits", "misses", "hit_rate", "evictions")
    } == {
        "size": 1,
        "max_size": 50000,
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
        "evictions": 0,
    }
    assert stats["item_similarity"]["max_size"] == 5000
    assert stats["item_similarity"]["misses"] == 1
    assert {k: stats["results"][k] for k in ("size", "hits", "misses", "max_size")} == {
        "size": 2,
        "hits": 1,
        "misses": 2,
        "max_size": 10000,
    }
    assert stats["warmup"]["state"] == "disabled"  # warmup.enabled is false in these settings


def test_metrics_prometheus_text(client):
    client.post("/recommend", json={"user_id": "t0"})
    text = client.get("/metrics")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert 'recsys_http_requests_total{endpoint="/recommend",status="200"} 1.0' in text.text
    assert 'recsys_recommendations_total{path="cf"} 1.0' in text.text
    assert "recsys_http_request_duration_seconds_bucket" in text.text
    assert "recsys_model_loaded 1.0" in text.text
    assert 'recsys_model_info{data_version="dv1",embedding_version="ev1",model_id="m1"' in text.text


def test_similar_items_endpoint(client):
    body = client.post("/similar_items", json={"product_id": "p3", "topk": 4}).json()
    assert body["product_id"] == "p3" and body["method"] == "cf" and body["topk"] == 4
    assert len(body["similar_items"]) == 4 and "p3" not in [
        i["product_id"] for i in body["similar_items"]
    ]
    assert [i["rank"] for i in body["similar_items"]] == [1, 2, 3, 4]
    content = client.post("/similar_items", json={"product_id": "p3", "method": "content"}).json()
    assert content["method"] == "content" and len(content["similar_items"]) == 10


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"product_id": "nope"}, 404, "unknown_product"),
        ({"product_id": 123}, 404, "unknown_product"),
        ({"product_id": "p1", "topk": 0}, 422, "invalid_request"),
        ({"product_id": "p1", "topk": 51}, 422, "invalid_request"),
        ({"product_id": "p1", "method": "magic"}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
        ({"product_id": {"id": 1}}, 422, "invalid_request"),
    ],
)
def test_similar_items_errors(client, payload, status, code):
    response = client.post("/similar_items", json=payload)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_unknown_route_and_method(client):
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    response = client.get("/recommend")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_startup_without_model_then_reload_recovers(admin_token):
    loader = SwitchableLoader(model_id=None)
    with make_client(loader=loader) as client:
        health = client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable" and "no current model" in body["reason"]
        assert body["error"]["code"] == "not_ready"
        for path, payload in (
            ("/recommend", {"user_id": "t0"}),
            ("/batch_recommend", {"user_ids": ["t0"]}),
            ("/similar_items", {"product_id": "p1"}),
        ):
            response = client.post(path, json=payload)
            assert response.status_code == 503 and response.json()["error"]["code"] == "not_ready"
        assert client.get("/model_info").status_code == 503
        assert client.get("/stats").status_code == 200
        failed = client.post("/reload_model", headers=admin_token)
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "reload_failed"
        loader.model_id = "m7"  # a build happened
        reloaded = client.post("/reload_model", headers=admin_token)
        assert reloaded.status_code == 200
        assert reloaded.json()["previous_model_id"] is None and reloaded.json()["model_id"] == "m7"
        assert client.get("/health").json()["model_id"] == "m7"
        assert client.post("/recommend", json={"user_id": "t0"}).status_code == 200


def test_failed_reload_keeps_serving_and_is_reported(admin_token):
    loader = SwitchableLoader("m1")
    with make_client(loader=loader) as client:
        client.post("/recommend", json={"user_id": "t0"})
        loader.model_id = None
        failed = client.post("/reload_model", headers=admin_token)
        assert failed.status_code == 503
        assert failed.json()["error"]["still_serving"] == "m1"
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["model_id"] == "m1"
        assert "no current model" in health["last_reload_error"]["message"]
        assert client.post("/recommend", json={"user_id": "t0"}).json()["model_id"] == "m1"
        loader.model_id = "m2"
        ok = client.post("/reload_model", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.json() == {**ok.json(), "previous_model_id": "m1", "model_id": "m2"}
        assert client.get("/health").json()["last_reload_error"] is None
        stats = client.get("/cache_stats").json()
        assert stats["model_id"] == "m2" and stats["user_profile"]["size"] == 0  # cleared


@pytest.mark.parametrize("path", ["/reload_model", "/cache_clear", "/cache_warmup"])
def test_admin_auth(path, monkeypatch):
    monkeypatch.delenv(ADMIN_ENV, raising=False)
    with make_client() as client:
        disabled = client.post(path, headers={"X-Admin-Token": "anything"})
        assert disabled.status_code == 403
        assert disabled.json()["error"]["code"] == "admin_disabled"
        assert ADMIN_ENV in disabled.json()["error"]["message"]
        monkeypatch.setenv(ADMIN_ENV, TOKEN)
        missing = client.post(path)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        wrong = client.post(path, headers={"X-Admin-Token": "nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
        bearer_wrong = client.post(path, headers={"Authorization": "Bearer nope"})
        assert bearer_wrong.status_code == 403
        assert client.post(path, headers={"X-Admin-Token": TOKEN}).status_code == 200
        assert client.post(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_cache_clear_and_warmup(admin_token):
    with make_client(warmup={"enabled": True}) as client:
        client.app.state.holder.wait_for_warmup(5)
        warm = client.get("/cache_stats").json()
        assert warm["warmup"]["state"] == "done"
        assert warm["warmup"]["users_warmed"] == 10 and warm["user_profile"]["size"] == 10
        assert warm["item_similarity"]["size"] == 24
        cleared = client.post("/cache_clear", headers=admin_token).json()
        assert cleared["status"] == "cleared" and cleared["user_profile"]["size"] == 0
        rewarmed = client.post("/cache_warmup", headers=admin_token).json()
        assert rewarmed["status"] == "done" and rewarmed["user_profile"]["size"] == 10


def test_internal_errors_are_json_500_without_traceback():
    with make_client(raise_server_exceptions=False) as client:

        def boom(*_args, **_kwargs):
            raise RuntimeError("secret internals")

        client.app.state.holder.state.engine.recommend = boom
        response = client.post("/recommend", json={"user_id": "t0"})
        assert response.status_code == 500
        assert response.json() == {
            "error": {
                "code": "internal_error",
                "message": "internal server error; the incident is logged",
            }
        }
        assert "secret" not in response.text
