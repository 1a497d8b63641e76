"""context_items on POST /recommend and user_id / filters on POST /similar_items, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN_ENV, TOKEN, make_client


def ids(body, key: str = "recommendations") -> list[str]:
    return [item["product_id"] for item in body[key]]


@pytest.fixture()
def live_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    with make_client(
        events={"sqlite_path": str(tmp_path / "events.sqlite3"), "popularity_refresh_seconds": 0}
    ) as client:
        yield client


def test_an_anonymous_visitor_with_a_cart_gets_the_cold_hybrid(client):
    body = {"user_id": "new-visitor", "topk": 5, "rerank": False, "context_items": ["p5"]}
    visitor = client.post("/recommend", json=body).json()
    cold = client.post("/recommend", json={"user_id": "c1", "topk": 5, "rerank": False}).json()
    assert (visitor["segment"], visitor["strategy"], visitor["fallback_method"]) == (
        "cold",
        "content",
        "cold_hybrid",
    )
    assert visitor["recommendations"] == cold["recommendations"]
    assert "p5" not in ids(visitor)


def test_context_answers_differ_per_context_and_without_it_stay_the_same(client):
    plain = client.post("/recommend", json={"user_id": "t2", "topk": 5}).json()
    empty = client.post("/recommend", json={"user_id": "t2", "topk": 5, "context_items": []})
    assert ids(empty.json()) == ids(plain)
    answers = {
        tuple(ids(client.post("/recommend", json={"user_id": "t2", "topk": 5, **extra}).json()))
        for extra in ({}, {"context_items": ["p20"]}, {"context_items": ["p17", "p11"]})
    }
    assert len(answers) == 3
    again = client.post("/recommend", json={"user_id": "t2", "topk": 5}).json()
    assert ids(again) == ids(plain)


def test_explain_lists_the_context(client):
    body = {"user_id": "t0", "topk": 2, "explain": True, "context_items": ["p9", "p10"]}
    items = client.post("/recommend", json=body).json()["recommendations"]
    assert [item["explain"]["context_items"] for item in items] == [["p9", "p10"]] * 2


@pytest.mark.parametrize(
    "context, fragment",
    [
        (["p1", "nope"], "context_items: product 'nope' is not in the catalogue"),
        (["p1"] * 51, "context_items has 51 products; at most 50 (requests.max_context_items)"),
        ("p1", "context_items"),
        ([True], "context_items.0"),
        ([" "], "context_items.0"),
    ],
)
def test_bad_context_is_a_422_naming_it(client, context, fragment):
    response = client.post("/recommend", json={"user_id": "t0", "context_items": context})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"]


def test_the_schema_declares_the_configured_context_limit():
    with make_client(requests={"max_context_items": 7}) as client:
        schema = client.get("/openapi.json").json()
    prop = schema["components"]["schemas"]["RecommendRequest"]["properties"]["context_items"]
    assert [b.get("maxItems") for b in prop["anyOf"] if b.get("type") == "array"] == [7]


def test_a_product_put_live_is_a_known_context_item(live_client):
    headers = {"X-Admin-Token": TOKEN}
    body = {"name": "Serum mới", "brand": "A", "category": "serum", "price": 150_000}
    assert live_client.put("/products/fresh-1", json=body, headers=headers).status_code == 200
    request = {"user_id": "new-visitor", "topk": 3, "context_items": ["fresh-1"]}
    answer = live_client.post("/recommend", json=request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["segment"] == "cold" and "fresh-1" not in ids(answer.json())
    unknown = live_client.post("/recommend", json={**request, "context_items": ["fresh-2"]})
    assert unknown.status_code == 422 and "'fresh-2'" in unknown.json()["error"]["message"]


def test_similar_items_for_a_user_leave_out_their_seen_products(client):
    plain = client.post("/similar_items", json={"product_id": "p4", "topk": 50}).json()
    mine = client.post(
        "/similar_items", json={"product_id": "p4", "topk": 50, "user_id": "t0"}
    ).json()
    assert set(ids(mine, "similar_items")) == set(ids(plain, "similar_items")) - {"p0", "p1", "p2"}
    scores = [item["score"] for item in mine["similar_items"]]
    assert scores == sorted(scores, reverse=True) and max(scores) <= 1.0
    assert mine["method"] == "cf" and mine["topk"] == 50


def test_similar_items_honour_filters(client):
    body = {"product_id": "p4", "topk": 5, "filters": {"category": ["toner"]}, "user_id": 7}
    answer = client.post("/similar_items", json=body)
    assert answer.status_code == 200, answer.text
    items = answer.json()["similar_items"]
    assert items and {item["category"] for item in items} == {"toner"}
    bad = client.post("/similar_items", json={"product_id": "p4", "filters": {"colour": ["x"]}})
    assert bad.status_code == 422 and "colour" in bad.json()["error"]["message"]


@pytest.fixture(scope="module")
def real_server(embedded_dir, registry_dir, tmp_path_factory):
    from tests.fixtures.live_server import live_server

    store = tmp_path_factory.mktemp("context-events") / "events.sqlite3"
    env = {"RECSYS_EVENTS__SQLITE_PATH": str(store), "RECSYS_WARMUP__ENABLED": "false"}
    logs = tmp_path_factory.mktemp("context-logs")
    with live_server(embedded_dir, registry_dir, log_dir=logs, env=env) as started:
        yield started


def test_readme_context_example_runs_on_a_real_server(real_server):
    import subprocess

    from tests.fixtures.live_server import REPO
    from tests.service.test_events_live import _json_values

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- context-example -->", 1)[1].split("```bash\n", 1)[1]
    script = block.split("```", 1)[0].replace("localhost:8000", f"127.0.0.1:{real_server.port}")
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    visitor, similar = _json_values(run.stdout)
    assert (visitor["segment"], visitor["fallback_method"]) == ("cold", "cold_hybrid")
    assert len(visitor["recommendations"]) == 3
    assert not {"p00001", "p00002"} & set(ids(visitor))
    assert similar["product_id"] == "p00001" and len(similar["similar_items"]) == 3
    plain = subprocess.run(
        ["bash", "-e", "-c", script.splitlines()[1].replace(', "user_id": 1', "")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    [neighbours] = _json_values(plain.stdout)
    scores = [item["score"] for item in similar["similar_items"]]
    assert scores == sorted(scores, reverse=True)
    assert neighbours["similar_items"] and neighbours["product_id"] == "p00001"
