"""The running app really reads its config: changing a value changes behaviour."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from service.api import create_app
from tests.service.conftest import SwitchableLoader, make_client


def test_yaml_and_env_overrides_reach_the_app(monkeypatch, tmp_path):
    (tmp_path / "serving_config.yaml").write_text(
        "requests:\n  max_batch_size: 2\n  default_topk: 4\nwarmup:\n  enabled: false\n"
        "reload:\n  poll_interval_seconds: 0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("RECSYS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_CACHE__USER_PROFILE__MAX_SIZE", "7")
    with TestClient(create_app(loader=SwitchableLoader())) as client:
        assert (
            client.post("/batch_recommend", json={"user_ids": ["a", "b", "c"]}).status_code == 422
        )
        assert len(client.post("/recommend", json={"user_id": "t0"}).json()["recommendations"]) == 4
        assert client.get("/cache_stats").json()["user_profile"]["max_size"] == 7


def test_cache_size_changes_evictions():
    with make_client(cache={"user_profile": {"max_size": 2}}) as client:
        for user in ("t0", "t1", "t2", "c0"):
            client.post("/recommend", json={"user_id": user})
        profile = client.get("/cache_stats").json()["user_profile"]
        assert (profile["size"], profile["max_size"], profile["evictions"]) == (2, 2, 2)


def test_body_limit_from_config():
    payload = {"user_ids": [f"user-{i:05d}" for i in range(300)]}  # ~4.5 KB
    with make_client(requests={"max_body_bytes": 2048}) as client:
        assert client.post("/batch_recommend", json=payload).status_code == 413
    with make_client() as client:
        assert client.post("/batch_recommend", json=payload).status_code == 200


def test_max_topk_from_config():
    with make_client(requests={"max_topk": 5}) as client:
        assert client.post("/recommend", json={"user_id": "t0", "topk": 5}).status_code == 200
        response = client.post("/recommend", json={"user_id": "t0", "topk": 6})
        assert response.status_code == 422 and "between 1 and 5" in response.text


def test_cors_from_config():
    origin = "https://shop.example.vn"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    with make_client(cors={"allow_origins": [origin]}) as client:
        response = client.options("/recommend", headers=preflight)
        assert response.headers.get("access-control-allow-origin") == origin
        simple = client.get("/health", headers={"Origin": origin})
        assert simple.headers.get("access-control-allow-origin") == origin
    with make_client() as client:  # empty allow_origins: CORS off
        response = client.get("/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers


def test_admin_token_env_name_from_config(monkeypatch):
    monkeypatch.setenv("MY_SHOP_ADMIN", "abc")
    with make_client(admin={"token_env": "MY_SHOP_ADMIN"}) as client:
        assert client.post("/cache_clear", headers={"X-Admin-Token": "abc"}).status_code == 200


def test_rerank_defaults_from_config():
    def ranking(**rerank):
        with make_client(rerank=rerank) as client:
            body = client.post("/recommend", json={"user_id": "nobody", "topk": 8}).json()
            return [item["product_id"] for item in body["recommendations"]]

    relevance = ranking(enabled=False)
    assert ranking(enabled=True, diversity=0.0) == relevance
    assert ranking(enabled=True, diversity=0.9) != relevance


def test_rerank_weights_in_config_override_the_model():
    with make_client(rerank={"weights": {"unknown": {"quality": 1.0}}, "enabled": False}) as client:
        info = client.get("/model_info").json()
        assert info["hybrid"]["weights"]["unknown"] == {"quality": 1.0}
        assert info["hybrid"]["weights"]["cold"]["item_similarity"] == 0.3  # model's, kept
        body = client.post("/recommend", json={"user_id": "nobody", "topk": 3}).json()
        # quality = rating smoothed by count: the 4.8-star products with the most ratings win
        qualities = [item["avg_rating"] for item in body["recommendations"]]
        assert qualities == [4.8, 4.8, 4.8]


def test_warmup_settings_used():
    with make_client(warmup={"enabled": True, "popular_items": 5, "active_users": 2}) as client:
        client.app.state.holder.wait_for_warmup(5)
        warmup = client.get("/cache_stats").json()["warmup"]
        assert (warmup["state"], warmup["items_warmed"], warmup["users_warmed"]) == ("done", 5, 2)


def test_logging_level_from_config():
    with make_client(logging={"level": "DEBUG"}):
        assert logging.getLogger("recommender").level == logging.DEBUG
    with make_client(logging={"level": "WARNING"}):
        assert logging.getLogger("recommender").level == logging.WARNING


def test_shipped_yaml_loads_with_every_serving_key(monkeypatch):
    from recommender.config import load_serving_settings

    for name in list(__import__("os").environ):
        if name.startswith("RECSYS_"):
            monkeypatch.delenv(name)
    settings = load_serving_settings("config")
    assert settings.cache.user_profile.max_size == 50_000
    assert settings.cache.item_similarity.max_size == 5_000
    assert settings.cache.results.max_size == 10_000
    assert settings.requests.max_batch_size == 1000
    assert settings.admin.token_env == "RECSYS_ADMIN_TOKEN"
