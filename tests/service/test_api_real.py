"""The app on the real fixtures (trained registry + processed demo shop), in-process and as real
uvicorn processes: smoke items, routing on real users, startup without a model, multi-worker reload.
"""

from __future__ import annotations

import random
import shutil
import time

import pytest
import requests
from fastapi.testclient import TestClient

from recommender.config.serving import ServingSettings
from recommender.registry import Registry
from service.api import create_app
from tests.fixtures.live_server import live_server, models_by_pid


@pytest.fixture(scope="module")
def real_client(embedded_dir, registry_dir):
    settings = ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry_dir)},
            "reload": {"poll_interval_seconds": 0},
        }
    )
    with TestClient(create_app(settings)) as client:
        client.app.state.holder.wait_for_warmup(10)
        yield client


def test_checklist_smoke_items(real_client, registry_dir):
    current = Registry(registry_dir).current().model_id
    for path in ("/health", "/model_info", "/cache_stats", "/stats", "/metrics"):
        assert real_client.get(path).status_code == 200, path
    assert real_client.get("/health").json()["model_id"] == current
    assert real_client.get("/cache_stats").json()["warmup"]["state"] == "done"
    info = real_client.get("/model_info").json()
    trainable, cold = info["sample_user_ids"]["trainable"][0], info["sample_user_ids"]["cold"][0]
    cf = real_client.post("/recommend", json={"user_id": trainable, "topk": 10}).json()
    assert cf["strategy"] == "cf" and not cf["is_fallback"] and len(cf["recommendations"]) == 10
    fallback = real_client.post("/recommend", json={"user_id": cold, "topk": 10}).json()
    assert fallback["segment"] == "cold" and fallback["is_fallback"]
    # the checklist's ids exist in every demo shop: 999999 is a known cold user, "3" only rated
    # products low (popularity), 1 and 2 are trainable
    cold_example = real_client.post("/recommend", json={"user_id": 999999, "topk": 10}).json()
    assert (cold_example["strategy"], cold_example["fallback_method"]) == ("content", "cold_hybrid")
    unknown = real_client.post("/recommend", json={"user_id": "new-visitor", "topk": 10}).json()
    assert unknown["strategy"] == "popularity" and unknown["segment"] == "unknown"
    batch = real_client.post("/batch_recommend", json={"user_ids": [1, 2, 3], "topk": 5})
    assert batch.status_code == 200
    assert (batch.json()["cf_users"], batch.json()["fallback_users"]) == (2, 1)
    product = cf["recommendations"][0]["product_id"]
    similar = real_client.post("/similar_items", json={"product_id": product, "topk": 5}).json()
    assert len(similar["similar_items"]) == 5
    reranked = real_client.post(
        "/recommend",
        json={"user_id": trainable, "rerank": True, "rerank_weights": {"cf": 0.7, "quality": 0.3}},
    )
    assert reranked.status_code == 200


def test_real_users_single_equals_batch_on_every_path(real_client, embedded_dir):
    holder = real_client.app.state.holder
    histories = holder.state.bundle.histories
    rng = random.Random(3)
    users = rng.sample(list(histories.user_ids), 60) + [f"new-{i}" for i in range(5)]
    options = {"topk": 10, "filters": {"price_max": 400000}}
    batch = real_client.post("/batch_recommend", json={"user_ids": users, **options}).json()
    segments = set()
    for result in batch["results"]:
        single = real_client.post("/recommend", json={"user_id": result["user_id"], **options})
        single = single.json()
        segments.add(single["segment"])
        assert [i["product_id"] for i in result["recommendations"]] == [
            i["product_id"] for i in single["recommendations"]
        ]
        seen = (
            set(histories.items(histories.index[result["user_id"]]).tolist())
            if (result["user_id"] in histories.index)
            else set()
        )
        items = [
            holder.state.bundle.catalogue.index[i["product_id"]] for i in single["recommendations"]
        ]
        assert not seen & set(items) and len(set(items)) == len(items) == 10
        assert all(i["price"] <= 400000 for i in single["recommendations"])
    assert segments == {"trainable", "cold", "unknown"}


@pytest.mark.slow
def test_live_uvicorn_starts_without_model_and_recovers(embedded_dir, registry_dir, tmp_path):
    registry = tmp_path / "cf"
    env = {"RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0.5"}
    with live_server(
        embedded_dir, registry, log_dir=tmp_path, env=env, require_ready=False
    ) as server:
        health = requests.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503 and "no current model" in health.json()["reason"]
        response = requests.post(f"{server.url}/recommend", json={"user_id": 1}, timeout=5)
        assert response.status_code == 503
        shutil.copytree(registry_dir, registry)  # a build finished
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if requests.get(f"{server.url}/health", timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        response = requests.post(f"{server.url}/recommend", json={"user_id": 1}, timeout=5)
        assert response.status_code == 200


@pytest.mark.slow
def test_two_workers_both_pick_up_a_promoted_model(embedded_dir, registry_dir, tmp_path):
    registry_root = tmp_path / "cf"
    shutil.copytree(registry_dir, registry_root)
    registry = Registry(registry_root)
    current = registry.current().model_id
    other = next(r.model_id for r in registry.list() if r.model_id != current)
    env = {"RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0.5", "RECSYS_WARMUP__ENABLED": "false"}
    with live_server(embedded_dir, registry_root, log_dir=tmp_path, workers=2, env=env) as server:
        deadline = time.monotonic() + 60
        before: dict[int, str] = {}
        while len(before) < 2 and time.monotonic() < deadline:  # both workers ready
            before.update(models_by_pid(server.url, 2, 5))
        assert len(before) == 2 and set(before.values()) == {current}
        registry.promote(other, force=True)
        promoted_at = time.monotonic()
        latest: dict[int, str] = {}
        while time.monotonic() - promoted_at < 20:
            latest.update(models_by_pid(server.url, 2, 2))
            if set(latest) >= set(before) and all(latest[p] == other for p in before):
                break
            time.sleep(0.1)
        assert {pid: latest.get(pid) for pid in before} == {pid: other for pid in before}
        # load time + poll interval, with generous slack for a busy 2-core machine
        assert time.monotonic() - promoted_at < 20
        body = requests.post(f"{server.url}/recommend", json={"user_id": 1}, timeout=5).json()
        assert body["model_id"] == other
