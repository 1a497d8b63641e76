"""POST /recommend, /batch_recommend and /similar_items through service.direct: answered without
the router's walk, and exactly as through the router (status, body, headers, errors, metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.api
from service.direct import DirectRoutes
from tests.service.conftest import SwitchableLoader, make_client

VOLATILE = ("recommendation_id", "latency_ms", "total_latency_ms")  # fresh on every answer
TOO_BIG = b'{"user_id": "t0", "topk": 5' + b" " * 70_000 + b"}"


class Routed(DirectRoutes):
    """Stands in for DirectRoutes: every request takes the router, as before service.direct."""

    def __init__(self, routes: Any) -> None:
        super().__init__(())


@pytest.fixture()
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TestClient]]:
    """(direct, routed): the same app twice, with and without direct dispatch."""
    limit = {"max_body_bytes": 65_536}
    with make_client(requests=limit) as direct:
        monkeypatch.setattr(service.api, "DirectRoutes", Routed)
        with make_client(requests=limit) as routed:
            yield direct, routed


def _stable(value: Any) -> Any:
    """``value`` with the per-answer id and timings blanked (everything else must be equal)."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE else _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _send(client: TestClient, path: str, kwargs: dict[str, Any]) -> Any:
    if kwargs.get("content") == "stream":
        kwargs = {**kwargs, "content": iter([TOO_BIG])}  # a fresh iterator for every request
    return client.post(path, **kwargs)


def _answer(response: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length")}
    try:
        body = _stable(response.json())
    except ValueError:
        body = response.text
    if response.status_code >= 400:  # error bodies have no volatile part: byte for byte
        headers["content-length"] = response.headers["content-length"]
        body = (body, response.content)
    return response.status_code, body, headers


JSON = {"Content-Type": "application/json"}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/recommend", {"json": {"user_id": "t0", "topk": 5}}),  # cf
    ("/recommend", {"json": {"user_id": "t0", "topk": 5}}),  # the same again: a cache hit
    ("/recommend", {"json": {"user_id": "c1", "topk": 3, "rerank": True}}),  # cold hybrid
    ("/recommend", {"json": {"user_id": 999999}}),  # unknown, int id echoed as a string
    ("/recommend", {"json": {"user_id": "t2", "explain": True, "topk": 2}}),
    ("/recommend", {"json": {"user_id": "new", "context_items": ["p3"], "exclude_seen": False}}),
    ("/recommend", {"json": {"user_id": "t1", "rerank_weights": {"cf": 1, "popularity": 0.5}}}),
    ("/recommend", {"json": {"user_id": "t1", "filters": {"price_max": 1e9, "brand": ["b1"]}}}),
    # every kind of bad input: 422 invalid_request with the same message and details
    ("/recommend", {"content": b'{"user_id": "t0"}'}),  # no Content-Type
    ("/recommend", {"content": b'{"user_id": "t0"}', "headers": {"Content-Type": "text/plain"}}),
    ("/recommend", {"content": b"{not json", "headers": JSON}),
    ("/recommend", {"content": b"", "headers": JSON}),
    ("/recommend", {"json": []}),
    ("/recommend", {"json": {}}),
    ("/recommend", {"json": {"user_id": "t0", "unknown": 1}}),
    ("/recommend", {"json": {"user_id": True}}),
    ("/recommend", {"json": {"user_id": " "}}),
    ("/recommend", {"json": {"user_id": "t0", "topk": "10"}}),
    ("/recommend", {"json": {"user_id": "t0", "topk": 0}}),
    ("/recommend", {"json": {"user_id": "t0", "topk": 100_000}}),  # over requests.max_topk
    ("/recommend", {"json": {"user_id": "t0", "rerank_weights": {"cf": 0}}}),
    ("/recommend", {"json": {"user_id": "t0", "rerank_weights": {"nope": 1}}}),
    ("/recommend", {"json": {"user_id": "t0", "filters": {"price_min": 9, "price_max": 1}}}),
    ("/recommend", {"json": {"user_id": "t0", "context_items": ["no-such-product"]}}),
    ("/recommend", {"content": TOO_BIG, "headers": JSON}),  # 413 from Content-Length
    ("/recommend", {"content": "stream", "headers": JSON}),  # 413 while streaming (no length)
    ("/batch_recommend", {"json": {"user_ids": ["t0", "c1", 7, "new"], "topk": 4}}),
    ("/batch_recommend", {"json": {"user_ids": []}}),
    ("/batch_recommend", {"json": {"user_ids": ["t0"] * 1001}}),  # over max_batch_size
    ("/batch_recommend", {"json": {"user_ids": ["t0"], "explain": True}}),
    ("/similar_items", {"json": {"product_id": "p3", "topk": 4}}),
    ("/similar_items", {"json": {"product_id": "p3", "topk": 4, "user_id": "t0"}}),
    ("/similar_items", {"json": {"product_id": "no-such-product"}}),
    ("/similar_items", {"json": {"product_id": "p3", "method": "magic"}}),
]


def test_direct_answers_exactly_as_the_router(clients, route_matches):
    direct, routed = clients
    for path, kwargs in REQUESTS:
        route_matches.clear()
        ours = _send(direct, path, kwargs)
        assert route_matches == [], (path, kwargs)  # answered without the router
        theirs = _send(routed, path, kwargs)
        assert _answer(ours) == _answer(theirs), (path, kwargs)
    statuses = {_send(direct, p, k).status_code for p, k in REQUESTS}
    assert statuses == {200, 404, 413, 422}


def test_metrics_count_direct_requests_as_routed_ones(clients):
    direct, routed = clients
    for path, kwargs in REQUESTS:
        _send(direct, path, kwargs)
        _send(routed, path, kwargs)

    def counted(client: TestClient) -> list[str]:
        names = ("recsys_http_requests_total{", "recsys_http_errors_total{", "recsys_recommend")
        text = client.get("/metrics").text.splitlines()
        return sorted(line for line in text if line.startswith(names) and "_bucket" not in line
                      and "_sum" not in line and "_created" not in line)  # fmt: skip

    ours = counted(direct)
    assert ours == counted(routed)
    assert 'recsys_http_requests_total{endpoint="/recommend",status="200"} 8.0' in ours
    assert 'recsys_http_errors_total{code="invalid_request",endpoint="/recommend"} 16.0' in ours
    assert 'recsys_http_errors_total{code="body_too_large",endpoint="/recommend"} 2.0' in ours
    # t0 twice, t2, t1 twice, then t0 in the batch; c1, the context visitor, c1 in the batch
    assert 'recsys_recommendations_total{path="cf"} 6.0' in ours
    assert 'recsys_recommendations_total{path="content"} 3.0' in ours
    assert 'recsys_recommend_request_duration_seconds_count{path="cf"} 5.0' in ours
    stats = direct.get("/stats").json()
    assert stats["endpoints"]["/recommend"]["count"] == 26


def test_other_methods_and_paths_still_take_the_router(clients, route_matches):
    direct, routed = clients
    for method, path in [("GET", "/recommend"), ("POST", "/recommend/"), ("PUT", "/similar_items")]:
        route_matches.clear()
        ours = direct.request(method, path, json={"user_id": "t0"}, follow_redirects=False)
        assert route_matches, (method, path)
        theirs = routed.request(method, path, json={"user_id": "t0"}, follow_redirects=False)
        assert _answer(ours) == _answer(theirs)
    assert direct.get("/recommend").headers["allow"] == "POST"


def test_not_ready_is_the_same_503_on_the_direct_path(monkeypatch):
    def answer() -> tuple[int, Any, dict[str, str]]:
        with make_client(loader=SwitchableLoader(model_id=None)) as client:
            return _answer(client.post("/recommend", json={"user_id": "t0"}))

    ours = answer()
    monkeypatch.setattr(service.api, "DirectRoutes", Routed)
    assert ours == answer()
    assert ours[0] == 503 and ours[1][0]["error"]["code"] == "not_ready"


def test_while_draining_direct_answers_close_the_connection_as_routed_ones(clients):
    """The drain's Connection: close now comes from RequestGuard, on both paths alike."""
    direct, routed = clients
    for client in (direct, routed):
        client.app.state.drain.started_at = 1.0  # what SIGTERM does
    for path, kwargs in REQUESTS[:4] + REQUESTS[8:10] + REQUESTS[24:26]:
        ours, theirs = _send(direct, path, kwargs), _send(routed, path, kwargs)
        assert _answer(ours) == _answer(theirs), (path, kwargs)
        assert ours.headers["connection"] == "close", (path, kwargs)
