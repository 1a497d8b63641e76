"""Events on a real 2-worker uvicorn sharing one real SQLite store file (the trained fixtures).

Every check repeats its request on fresh connections, so that both workers answer it: an event
acknowledged by one worker must be in the next answer of either (read-your-writes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from recommender import vocabulary as V
from tests.fixtures.live_server import REPO, Server, live_server

INGEST = "live-ingest-token"
ADMIN = "live-admin-token"
TRIES = 16  # fresh connections per check: both workers answer (all on one: p = 2**-15)


def _env(store: Path) -> dict[str, str]:
    return {
        "RECSYS_INGEST_TOKEN": INGEST,
        "RECSYS_ADMIN_TOKEN": ADMIN,
        "RECSYS_EVENTS__SQLITE_PATH": str(store),
        "RECSYS_WARMUP__ENABLED": "false",
    }


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events") / "events.sqlite3"


@pytest.fixture(scope="module")
def server(embedded_dir, registry_dir, store_path, tmp_path_factory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("logs")
    with live_server(
        embedded_dir, registry_dir, log_dir=logs, workers=2, env=_env(store_path)
    ) as started:
        _both_workers_ready(started.url)
        yield started


def _both_workers_ready(url: str) -> None:
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2 and time.monotonic() < deadline:
        response = requests.get(f"{url}/health", timeout=5, headers={"Connection": "close"})
        if response.status_code == 200:
            pids.add(response.json()["pid"])
    assert len(pids) == 2


def _post_events(url: str, *events: dict) -> list[int]:
    response = requests.post(
        f"{url}/events", json=list(events), headers={"X-Ingest-Token": INGEST}, timeout=10
    )
    assert response.status_code == 202, response.text
    return [ack["seq"] for ack in response.json()["events"]]


def _answers(url: str, body: dict, tries: int = TRIES) -> list[dict]:
    out = []
    for _ in range(tries):
        response = requests.post(
            f"{url}/recommend", json=body, timeout=10, headers={"Connection": "close"}
        )
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


def _ids(answer: dict) -> list[str]:
    return [item["product_id"] for item in answer["recommendations"]]


def _top_products(url: str, count: int) -> list[str]:
    return _ids(_answers(url, {"user_id": "nobody-at-all", "topk": count}, 1)[0])


def test_two_views_turn_a_new_visitor_into_a_cold_hybrid_answer_on_both_workers(server):
    first, second = _top_products(server.url, 12)[5:7]
    visitor = "live-visitor-1"
    before = _answers(server.url, {"user_id": visitor, "topk": 10}, 4)
    assert {a["strategy"] for a in before} == {V.STRATEGY_POPULARITY}
    _post_events(
        server.url,
        {"user_id": visitor, "product_id": first, "type": "view"},
        {"user_id": visitor, "product_id": second, "type": "view"},
    )
    after = _answers(server.url, {"user_id": visitor, "topk": 10})
    assert {(a["segment"], a["strategy"], a["fallback_method"]) for a in after} == {
        (V.SEGMENT_COLD, V.STRATEGY_CONTENT, V.FALLBACK_COLD_HYBRID)
    }
    assert len({tuple(_ids(a)) for a in after}) == 1  # both workers answer alike


def test_a_purchased_item_never_comes_back(server):
    shopper = "live-buyer-1"
    _post_events(
        server.url,
        {"user_id": shopper, "product_id": _top_products(server.url, 1)[0], "type": "view"},
    )
    top = _ids(_answers(server.url, {"user_id": shopper, "topk": 5}, 1)[0])[0]
    _post_events(server.url, {"user_id": shopper, "product_id": top, "type": "purchase"})
    for answer in _answers(server.url, {"user_id": shopper, "topk": 50}):
        assert top not in _ids(answer)


def test_unavailable_product_disappears_within_two_seconds_on_every_worker(server):
    hidden = _top_products(server.url, 1)[0]
    response = requests.patch(
        f"{server.url}/products/{hidden}",
        json={"available": False},
        headers={"X-Admin-Token": ADMIN},
        timeout=10,
    )
    assert response.status_code == 200
    # every answer after the ack is already right (each request catches up with the store)
    for answer in _answers(server.url, {"user_id": "nobody-2", "topk": 50}):
        assert hidden not in _ids(answer)
    similar = requests.post(
        f"{server.url}/similar_items",
        json={"product_id": _top_products(server.url, 2)[1], "topk": 50},
        timeout=10,
    ).json()
    assert hidden not in [item["product_id"] for item in similar["similar_items"]]
    requests.patch(  # leave the catalogue as it was for the other tests
        f"{server.url}/products/{hidden}",
        json={"available": True},
        headers={"X-Admin-Token": ADMIN},
        timeout=10,
    )


def test_bad_event_and_missing_token_on_the_real_server(server):
    wrong = requests.post(
        f"{server.url}/events",
        json={"user_id": "u", "product_id": "no-such-product", "type": "view"},
        headers={"X-Ingest-Token": INGEST},
        timeout=10,
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["message"].startswith("events[0].product_id:")
    denied = requests.post(
        f"{server.url}/events",
        json={"user_id": "u", "product_id": "x", "type": "view"},
        timeout=10,
    )
    assert denied.status_code == 401


def test_kill_9_after_an_ack_loses_nothing(embedded_dir, registry_dir, tmp_path):
    store = tmp_path / "events.sqlite3"
    with live_server(
        embedded_dir, registry_dir, log_dir=tmp_path, workers=2, env=_env(store)
    ) as first:
        _both_workers_ready(first.url)
        top = _top_products(first.url, 1)[0]
        _post_events(first.url, {"user_id": "crash-buyer", "product_id": top, "type": "purchase"})
        os.killpg(first.process.pid, signal.SIGKILL)  # master and both workers, no shutdown
        first.process.wait(timeout=10)
    with live_server(
        embedded_dir, registry_dir, log_dir=tmp_path, workers=2, env=_env(store)
    ) as second:
        _both_workers_ready(second.url)
        for answer in _answers(second.url, {"user_id": "crash-buyer", "topk": 50}):
            assert top not in _ids(answer)
            assert answer["segment"] == V.SEGMENT_COLD  # the purchase is their history


def test_readme_curl_example_changes_the_next_answer(server):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- events-example -->", 1)[1].split("```bash\n", 1)[1]
    script = block.split("```", 1)[0].replace("demo-ingest-token", INGEST)
    script = script.replace("localhost:8000", f"127.0.0.1:{server.port}")
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    before, acked, after = _json_values(run.stdout)  # curl -s prints no newline between them
    assert before["strategy"] == V.STRATEGY_POPULARITY
    assert [event["seq"] > 0 for event in acked["events"]] == [True, True]
    assert (after["segment"], after["strategy"], after["fallback_method"]) == (
        V.SEGMENT_COLD,
        V.STRATEGY_CONTENT,
        V.FALLBACK_COLD_HYBRID,
    )


def _json_values(text: str) -> list[dict]:
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return values
