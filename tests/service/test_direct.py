"""POST /events through service.direct: answered without the router's walk, with the same
errors, metrics and body limit as through the router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.errors import StoreUnavailableError
from recommender.events.sqlite_store import SqliteEventStore
from tests.service.conftest import make_client

INGEST = "ingest-secret"
HEADERS = {"X-Ingest-Token": INGEST}
EVENT = {"event_id": "d1", "user_id": "shopper", "product_id": "p3", "type": "view"}


@pytest.fixture()
def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    monkeypatch.setenv("RECSYS_INGEST_TOKEN", INGEST)
    with make_client(events={"sqlite_path": str(tmp_path / "events.sqlite3")}) as test_client:
        yield test_client


def test_post_events_skips_the_router_and_other_requests_do_not(client, route_matches):
    response = client.post("/events", headers=HEADERS, json=EVENT)
    assert (response.status_code, response.json()) == (
        202,
        {"accepted": 1, "events": [{"event_id": "d1", "seq": 1}]},
    )
    assert route_matches == []
    assert client.get("/health").status_code == 200
    assert route_matches  # GET /health went through the router
    route_matches.clear()
    assert client.get("/events").status_code == 405  # other methods: the router, as before
    assert route_matches


def test_errors_on_the_direct_path_keep_the_contract(client, monkeypatch):
    missing = client.post("/events", json=EVENT)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    bad = client.post("/events", headers={**HEADERS, "Content-Type": "application/json"},
                      content=b"{not json")  # fmt: skip
    assert bad.status_code == 422 and "not JSON" in bad.json()["error"]["message"]
    unknown = client.post("/events", headers=HEADERS, json=[EVENT, {**EVENT, "product_id": "x"}])
    assert unknown.status_code == 422
    assert "events[1].product_id: unknown product 'x'" in unknown.json()["error"]["message"]

    async def down(self, events):  # type: ignore[no-untyped-def]
        raise StoreUnavailableError("disk full", backend="sqlite", reason="disk full")

    monkeypatch.setattr(SqliteEventStore, "append_async", down)
    refused = client.post("/events", headers=HEADERS, json=EVENT)
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "store_unavailable")
    assert refused.json()["error"]["reason"] == "disk full"


def test_body_limit_and_metrics_still_apply(client):
    limit = client.app.state.settings.requests.max_body_bytes

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b"[" + b" " * limit
        yield b"]"

    too_big = client.post("/events", headers=HEADERS, content=chunks())
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "body_too_large")
    assert client.post("/events", headers=HEADERS, json=EVENT).status_code == 202
    text = client.get("/metrics").text
    assert 'recsys_http_requests_total{endpoint="/events",status="202"} 1.0' in text
    assert 'recsys_http_requests_total{endpoint="/events",status="413"} 1.0' in text
