"""Faults with the Redis backend at the service level: a real 2-worker uvicorn on a real
``redis-server`` (tests/fixtures/redis_server.py), which is killed and restarted while serving.

- Redis down: ``/recommend`` keeps answering from the model and the live state it had (logged
  once per outage, counted in ``recsys_event_store_errors_total``); ``POST /events`` answers 503
  ``store_unavailable`` with the reason; nothing acknowledged is lost.
- Redis back (same port and data): the same worker processes reconnect and catch up; an event
  acknowledged then is in the next answer of either worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from recommender import vocabulary as V
from tests.fixtures.live_server import Server, live_server
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.service.test_events_live import INGEST, _answers, _ids, _post_events

DEADLINE_SECONDS = 30


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def server(embedded_dir, registry_dir, redis, tmp_path_factory) -> Iterator[Server]:
    env = {
        "RECSYS_INGEST_TOKEN": INGEST,
        "RECSYS_WARMUP__ENABLED": "false",
        "RECSYS_EVENTS__BACKEND": "redis",
        "RECSYS_EVENTS__REDIS_URL": redis.url,
        "RECSYS_EVENTS__REDIS_SOCKET_TIMEOUT_SECONDS": "0.3",
        "RECSYS_EVENTS__REDIS_RETRIES": "1",
        "RECSYS_EVENTS__ACK_TIMEOUT_SECONDS": "3",
    }
    logs = tmp_path_factory.mktemp("logs")
    with live_server(embedded_dir, registry_dir, log_dir=logs, workers=2, env=env) as started:
        yield started


def _pids(url: str) -> set[int]:
    pids: set[int] = set()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(pids) < 2 and time.monotonic() < deadline:
        response = requests.get(f"{url}/health", timeout=5, headers={"Connection": "close"})
        pids.add(response.json()["pid"])
    assert len(pids) == 2
    return pids


def _store_errors(session: requests.Session, url: str, operation: str) -> float:
    text = session.get(f"{url}/metrics", timeout=5).text
    prefix = f'recsys_event_store_errors_total{{operation="{operation}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    return max(values, default=0.0)


def _event(user: str, product: str, kind: str) -> dict:
    return {"user_id": user, "product_id": product, "type": kind}


def test_redis_down_degrades_then_a_restart_reconnects_without_restarting_workers(
    server: Server, redis: RedisServer
) -> None:
    pids = _pids(server.url)
    top, second = _ids(_answers(server.url, {"user_id": "nobody-at-all", "topk": 2}, 1)[0])
    _post_events(server.url, _event("redis-buyer", top, "purchase"))
    for answer in _answers(server.url, {"user_id": "redis-buyer", "topk": 30}):
        assert top not in _ids(answer)

    redis.kill()  # SIGKILL: appendfsync always kept the acked purchase
    refused = requests.post(
        f"{server.url}/events",
        json=_event("redis-visitor", second, "view"),
        headers={"X-Ingest-Token": INGEST},
        timeout=30,
    )
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error"]["code"] == "store_unavailable"
    assert "nothing was stored" in body["error"]["message"] and body["error"]["reason"]
    # recommendations keep coming from the model and the live state each worker had
    for answer in _answers(server.url, {"user_id": "redis-buyer", "topk": 30}):
        assert top not in _ids(answer) and answer["segment"] == V.SEGMENT_COLD
    for _ in range(4):  # a worker that answered during the outage counted a read error
        with requests.Session() as same_worker:  # one keep-alive connection: one worker
            answer = same_worker.post(
                f"{server.url}/recommend", json={"user_id": "redis-buyer"}, timeout=10
            )
            assert answer.status_code == 200
            assert _store_errors(same_worker, server.url, "read") >= 1
    assert "event store unavailable" in server.log_text()

    redis.start()  # same port, same data directory; the workers are not restarted
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        response = requests.post(
            f"{server.url}/events",
            json=[_event("redis-visitor", second, "view"), _event("redis-visitor", top, "view")],
            headers={"X-Ingest-Token": INGEST},
            timeout=30,
        )
        if response.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 202, response.text
    seqs = [ack["seq"] for ack in response.json()["events"]]
    assert seqs == [2, 3]  # the sequence went on from the acked purchase: nothing lost
    for answer in _answers(server.url, {"user_id": "redis-visitor", "topk": 5}):
        assert (answer["segment"], answer["fallback_method"]) == (
            V.SEGMENT_COLD,
            V.FALLBACK_COLD_HYBRID,
        )
    for answer in _answers(server.url, {"user_id": "redis-buyer", "topk": 30}):
        assert top not in _ids(answer)
    assert _pids(server.url) == pids
    assert "event store available again" in server.log_text()
