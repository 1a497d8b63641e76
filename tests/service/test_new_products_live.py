"""New products on real servers: the model's own TF-IDF encoder, one real SQLite store file.

Two single-worker servers share the store: the first takes the writes; the second starts after
the PUT (so it replays it, as a restart does) and must follow every later change within 2 s.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from recommender import vocabulary as V
from recommender.embeddings import embeddings_path, encoder_dir, load_embeddings, load_encoder
from recommender.serving.new_products import product_text
from tests.fixtures.live_server import REPO, Server, live_server

ADMIN = "new-products-admin"
INGEST = "new-products-ingest"
NEW = "brand-new-twin"


def _env(store: Path) -> dict[str, str]:
    return {
        "RECSYS_INGEST_TOKEN": INGEST,
        "RECSYS_ADMIN_TOKEN": ADMIN,
        "RECSYS_EVENTS__SQLITE_PATH": str(store),
        "RECSYS_WARMUP__ENABLED": "false",
    }


@pytest.fixture(scope="module")
def twin(embedded_dir: Path) -> dict[str, Any]:
    """A known product whose name, brand and category the new product copies."""
    products = pd.read_parquet(embedded_dir / V.PRODUCTS_FILE)
    row = products.iloc[7]
    return {
        "product_id": str(row[V.PRODUCT_ID]),
        "name": str(row[V.NAME]),
        "brand": str(row[V.BRAND]),
        "category": str(row[V.CATEGORY]),
    }


@pytest.fixture(scope="module")
def expected_cosine(embedded_dir: Path, twin: dict[str, Any]) -> float:
    """The cosine of the new product to its twin under the model's own fitted encoder."""
    stored = load_embeddings(embeddings_path(embedded_dir))
    vector = load_encoder(encoder_dir(embedded_dir)).encode([product_text(_body(twin))])[0]
    return round(float(stored.embeddings[stored.index()[twin["product_id"]]] @ vector), 6)


@pytest.fixture(scope="module")
def servers(embedded_dir, registry_dir, tmp_path_factory, twin) -> Iterator[tuple[Server, Server]]:
    store = tmp_path_factory.mktemp("new-products") / "events.sqlite3"
    logs = tmp_path_factory.mktemp("new-products-logs")
    with live_server(embedded_dir, registry_dir, log_dir=logs, env=_env(store)) as first:
        put = _put(first.url, NEW, {**_body(twin), "price": 123_000})
        assert put.status_code == 200, put.text
        assert put.json()["known_to_model"] is False
        with live_server(embedded_dir, registry_dir, log_dir=logs, env=_env(store)) as second:
            yield first, second


def _body(twin: dict[str, Any]) -> dict[str, Any]:
    return {"name": twin["name"], "brand": twin["brand"], "category": twin["category"]}


def _put(url: str, product_id: str, body: dict[str, Any]) -> requests.Response:
    return requests.put(
        f"{url}/products/{product_id}", json=body, headers={"X-Admin-Token": ADMIN}, timeout=10
    )


def _patch(url: str, product_id: str, body: dict[str, Any]) -> requests.Response:
    return requests.patch(
        f"{url}/products/{product_id}", json=body, headers={"X-Admin-Token": ADMIN}, timeout=10
    )


def _post(url: str, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = requests.post(f"{url}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code in (200, 202), response.text
    return response.json()


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["product_id"] for item in items]


def _similar(url: str, product_id: str, **extra: Any) -> dict[str, Any]:
    return _post(url, "/similar_items", {"product_id": product_id, "topk": 5, **extra})


def test_a_new_product_is_served_at_once_on_both_servers(servers, twin, expected_cosine):
    assert expected_cosine > 0.5  # the twin shares name, brand and category
    for server in servers:  # the second replayed the PUT at start-up
        as_query = _similar(server.url, NEW)
        assert as_query["method"] == V.SIMILARITY_CONTENT
        assert as_query["similar_items"][0]["product_id"] == twin["product_id"]
        assert as_query["similar_items"][0]["score"] == pytest.approx(expected_cosine, abs=2e-6)
        neighbour = _similar(server.url, twin["product_id"], method=V.SIMILARITY_CONTENT)
        assert neighbour["similar_items"][0]["product_id"] == NEW
        assert neighbour["similar_items"][0]["score"] == as_query["similar_items"][0]["score"]
        # a visitor who viewed the twin has a content profile the new product matches
        visitor = f"visitor-of-{server.port}"
        _post(
            server.url,
            "/events",
            [{"user_id": visitor, "product_id": twin["product_id"], "type": "view"}],  # type: ignore[arg-type]
            **{"X-Ingest-Token": INGEST},
        )
        body = {"user_id": visitor, "topk": 5, "rerank_weights": {V.SIGNAL_CONTENT: 1}}
        answer = _post(server.url, "/recommend", body)
        assert answer["segment"] == V.SEGMENT_COLD
        # a view does not hide the twin (events.seen_types): it is first, the new product next
        assert _ids(answer["recommendations"])[:2] == [twin["product_id"], NEW]
        assert answer["recommendations"][1]["price"] == 123_000
        batch_body = {"user_ids": [visitor], "topk": 5, "rerank_weights": body["rerank_weights"]}
        batch = _post(server.url, "/batch_recommend", batch_body)
        assert _ids(batch["results"][0]["recommendations"]) == _ids(answer["recommendations"])
        cheap = _post(server.url, "/recommend", {**body, "filters": {"price_max": 100_000}})
        assert NEW not in _ids(cheap["recommendations"])
        explained = _post(server.url, "/recommend", {**body, "explain": True})
        entry = explained["recommendations"][1]
        signals = entry["explain"]["signals"]
        assert signals[V.SIGNAL_CONTENT]["contribution"] == entry["score"] > 0


def test_unavailable_new_product_leaves_the_second_server_within_two_seconds(servers, twin):
    first, second = servers
    body = {"user_id": "nobody-new", "topk": 50}
    patched = _patch(first.url, NEW, {"available": False})
    assert patched.status_code == 200, patched.text
    deadline = time.monotonic() + 2.0
    while True:
        similar = _similar(second.url, twin["product_id"], method=V.SIMILARITY_CONTENT)
        if NEW not in _ids(similar["similar_items"]):
            break
        assert time.monotonic() < deadline, "still listed on the second server after 2 s"
        time.sleep(0.05)
    assert NEW not in _ids(_post(second.url, "/recommend", body)["recommendations"])
    assert _patch(first.url, NEW, {"available": True}).status_code == 200


def test_readme_products_example_runs(servers):
    first, _ = servers
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- products-example -->", 1)[1].split("```bash\n", 1)[1]
    script = block.split("```", 1)[0].replace("demo-admin-token", ADMIN)
    script = script.replace("localhost:8000", f"127.0.0.1:{first.port}")
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    put, similar, hidden = _json_values(run.stdout)
    assert (put["product_id"], put["known_to_model"]) == ("new-serum-1", False)
    assert similar["method"] == V.SIMILARITY_CONTENT and len(similar["similar_items"]) == 3
    assert hidden["product_id"] == "new-serum-1"


def _json_values(text: str) -> list[dict]:
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return values
