"""POST /events and PUT/PATCH /products through the app (TestClient, real SQLite store file)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender import vocabulary as V
from tests.service.conftest import ADMIN_ENV, TOKEN, make_client

INGEST = "ingest-secret"
HEADERS = {"X-Ingest-Token": INGEST}


@pytest.fixture()
def events_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    monkeypatch.setenv("RECSYS_INGEST_TOKEN", INGEST)
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    with make_client(
        events={
            "sqlite_path": str(tmp_path / "events.sqlite3"),
            "popularity_refresh_seconds": 0,
            "sqlite_busy_timeout_ms": 200,  # a locked store answers 503 quickly
        }
    ) as client:
        yield client


def _ids(response) -> list[str]:
    return [item["product_id"] for item in response.json()["recommendations"]]


def test_event_is_acked_with_its_sequence_and_changes_the_next_answer(events_client):
    before = events_client.post("/recommend", json={"user_id": "shopper", "topk": 5}).json()
    assert before["strategy"] == V.STRATEGY_POPULARITY
    response = events_client.post(
        "/events",
        headers=HEADERS,
        json=[
            {"event_id": "e1", "user_id": "shopper", "product_id": "p3", "type": "view"},
            {"event_id": "e2", "user_id": "shopper", "product_id": "p8", "type": "view"},
        ],
    )
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "events": [{"event_id": "e1", "seq": 1}, {"event_id": "e2", "seq": 2}],
    }
    after = events_client.post("/recommend", json={"user_id": "shopper", "topk": 5}).json()
    assert (after["segment"], after["strategy"], after["fallback_method"]) == (
        V.SEGMENT_COLD,
        V.STRATEGY_CONTENT,
        V.FALLBACK_COLD_HYBRID,
    )
    # a retry of the same event is stored once and answers the original sequence number
    retry = events_client.post(
        "/events",
        headers=HEADERS,
        json={"event_id": "e1", "user_id": "shopper", "product_id": "p3", "type": "view"},
    )
    assert retry.status_code == 202 and retry.json()["events"] == [{"event_id": "e1", "seq": 1}]


def test_purchase_never_comes_back_on_single_and_batch(events_client):
    top = _ids(events_client.post("/recommend", json={"user_id": "t0", "topk": 24}))[0]
    ok = events_client.post(
        "/events", headers=HEADERS, json={"user_id": "t0", "product_id": top, "type": "purchase"}
    )
    assert ok.status_code == 202
    assert top not in _ids(events_client.post("/recommend", json={"user_id": "t0", "topk": 24}))
    batch = events_client.post("/batch_recommend", json={"user_ids": ["t0"], "topk": 24}).json()
    assert top not in [i["product_id"] for i in batch["results"][0]["recommendations"]]


@pytest.mark.parametrize(
    ("body", "field", "index"),
    [
        (
            [
                {"user_id": "u", "product_id": "p1", "type": "view"},
                {"user_id": "u", "product_id": "nope", "type": "view"},
            ],
            "product_id",
            1,
        ),
        ({"user_id": "u", "product_id": "p1", "type": "rating", "rating": 6}, "rating", 0),
        ({"user_id": "u", "product_id": "p1", "type": "view", "timestamp": 1e13}, "timestamp", 0),
        ({"user_id": "u", "product_id": "p1", "type": "like"}, "type", 0),
    ],
)
def test_bad_events_are_422_naming_the_item_and_nothing_is_stored(
    events_client, body, field, index
):
    response = events_client.post("/events", headers=HEADERS, json=body)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert message.startswith(f"events[{index}].{field}:")
    ok = events_client.post(
        "/events", headers=HEADERS, json={"user_id": "u", "product_id": "p1", "type": "view"}
    )
    assert ok.json()["events"][0]["seq"] == 1  # the bad batch stored nothing
    metrics = events_client.get("/metrics").text
    assert f'recsys_events_rejected_total{{field="{field}"}} 1.0' in metrics
    assert 'recsys_events_accepted_total{type="view"} 1.0' in metrics


def test_oversize_batch_is_422(events_client):
    body = [{"user_id": "u", "product_id": "p1", "type": "view"}] * 501
    response = events_client.post("/events", headers=HEADERS, json=body)
    assert response.status_code == 422
    assert "exceed the limit of 500" in response.json()["error"]["message"]


def test_ingest_token_is_required_and_closed_when_unset(events_client, monkeypatch):
    event = {"user_id": "u", "product_id": "p1", "type": "view"}
    assert events_client.post("/events", json=event).status_code == 401
    wrong = events_client.post("/events", headers={"X-Ingest-Token": "x"}, json=event)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "forbidden")
    monkeypatch.delenv("RECSYS_INGEST_TOKEN")
    closed = events_client.post("/events", headers=HEADERS, json=event)
    assert (closed.status_code, closed.json()["error"]["code"]) == (403, "ingest_disabled")


def test_store_unavailable_is_503_with_reason_and_recommend_keeps_answering(
    events_client, tmp_path
):
    path = tmp_path / "events.sqlite3"
    events_client.post(  # the store file exists and holds one event
        "/events", headers=HEADERS, json={"user_id": "u", "product_id": "p1", "type": "view"}
    )
    locker = sqlite3.connect(path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        response = events_client.post(
            "/events", headers=HEADERS, json={"user_id": "u", "product_id": "p2", "type": "view"}
        )
        assert response.status_code == 503
        body = response.json()["error"]
        assert body["code"] == "store_unavailable" and body["reason"]
        assert events_client.post("/recommend", json={"user_id": "u"}).status_code == 200
    finally:
        locker.rollback()
        locker.close()
    assert "recsys_event_store_errors_total" in events_client.get("/metrics").text


def test_products_put_and_patch_need_admin_and_change_answers(events_client):
    top = _ids(events_client.post("/recommend", json={"user_id": "nobody", "topk": 3}))[0]
    denied = events_client.patch(f"/products/{top}", json={"available": False})
    assert denied.status_code == 401
    admin = {"X-Admin-Token": TOKEN}
    patched = events_client.patch(f"/products/{top}", headers=admin, json={"available": False})
    assert patched.status_code == 200
    assert patched.json() == {"product_id": top, "seq": 1, "replace": False, "known_to_model": True}
    assert top not in _ids(events_client.post("/recommend", json={"user_id": "nobody", "topk": 24}))
    similar = events_client.post("/similar_items", json={"product_id": "p0", "topk": 23}).json()
    assert top not in [i["product_id"] for i in similar["similar_items"]]
    put = events_client.put(
        "/products/p4",
        headers=admin,
        json={"name": "Mới", "brand": "A", "category": "serum", "price": 5.0},
    )
    assert put.status_code == 200 and put.json()["replace"] is True
    cheap = events_client.post(
        "/recommend", json={"user_id": "nobody", "topk": 5, "filters": {"price_max": 10}}
    ).json()["recommendations"]
    assert [(i["product_id"], i["name"], i["price"]) for i in cheap] == [("p4", "Mới", 5.0)]
    new = events_client.put(
        "/products/brand-new",
        headers=admin,
        json={"name": "N", "brand": "A", "category": "serum", "price": 1.0},
    )
    assert new.json()["known_to_model"] is False
    event = {"user_id": "u", "product_id": "brand-new", "type": "view"}  # now a known product
    assert events_client.post("/events", headers=HEADERS, json=event).status_code == 202
    missing = events_client.patch("/products/never", headers=admin, json={"price": 1})
    assert missing.status_code == 404
    empty = events_client.patch("/products/p1", headers=admin, json={})
    assert empty.status_code == 422


def test_stats_report_what_this_worker_applied_from_the_store(events_client):
    before = events_client.get("/stats").json()["events"]
    assert (before["applied_seq"], before["events_applied"], before["users"]) == (0, 0, 0)
    events = [
        {"event_id": "s1", "user_id": "shopper", "product_id": "p3", "type": "view"},
        {"event_id": "s2", "user_id": "other", "product_id": "p8", "type": "purchase"},
    ]
    assert events_client.post("/events", headers=HEADERS, json=events).status_code == 202
    events_client.post("/recommend", json={"user_id": "shopper"})  # catches this worker up
    after = events_client.get("/stats").json()["events"]
    assert after == {
        "applied_seq": 2,
        "events_applied": 2,
        "users": 2,
        "unavailable_products": 0,
        "new_products": 0,
        "new_products_not_served": 0,
        "data_cutoff": before["data_cutoff"],
        "items_held": 3,  # shopper: 1 liked (a view is not "seen"); other: 1 seen + 1 liked
        "users_evicted": 0,
        "memory_bytes": after["memory_bytes"],
    }
    assert after["data_cutoff"] > 0 and after["memory_bytes"] > before["memory_bytes"] > 0


def test_live_state_memory_is_reported_in_stats_and_metrics(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_INGEST_TOKEN", INGEST)
    events = {"sqlite_path": str(tmp_path / "events.sqlite3"), "max_live_items": 5}
    with make_client(events=events) as client:
        for k in range(4):  # each purchase: 1 seen + 1 liked; the 3rd user evicts the 1st
            body = {"user_id": f"u{k}", "product_id": "p3", "type": "purchase"}
            assert client.post("/events", headers=HEADERS, json=body).status_code == 202
        client.post("/recommend", json={"user_id": "u0", "topk": 3})  # catches up
        live = client.get("/stats").json()["events"]
        metrics = client.get("/metrics").text
    assert (live["users"], live["items_held"], live["users_evicted"]) == (2, 4, 2)
    assert live["memory_bytes"] > 0
    lines = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("recsys_live_")
    )
    assert float(lines["recsys_live_state_bytes"]) == live["memory_bytes"]
    assert float(lines["recsys_live_state_items"]) == 4
    assert float(lines["recsys_live_state_users"]) == 2
    assert float(lines["recsys_live_state_users_evicted_total"]) == 2


def test_new_products_beyond_max_new_products_are_422(monkeypatch, tmp_path):
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    admin = {"X-Admin-Token": TOKEN}
    body = {"name": "Serum mới", "brand": "A", "category": "serum", "price": 1000}
    with make_client(
        events={"sqlite_path": str(tmp_path / "e.sqlite3"), "max_new_products": 1}
    ) as client:
        assert client.put("/products/new-1", headers=admin, json=body).status_code == 200
        again = client.put("/products/new-1", headers=admin, json={**body, "price": 900})
        assert again.status_code == 200  # the same product keeps its slot
        full = client.put("/products/new-2", headers=admin, json=body)
        assert full.status_code == 422
        assert full.json()["error"]["message"] == (
            "products['new-2']: the service already serves 1 products created since the model "
            "was built (events.max_new_products); build a new model to fold them in, or raise "
            "the limit."
        )
        assert client.put("/products/p1", headers=admin, json=body).status_code == 200
        answer = client.post(
            "/recommend", json={"user_id": "c1", "topk": 30, "filters": {"price_max": 950}}
        ).json()
        assert [item["product_id"] for item in answer["recommendations"]] == ["new-1"]
