"""/batch_recommend beside the storefront: bounded concurrent batches (429 batch_busy with
Retry-After), bounded users × topk, ranking and JSON encoding off the event loop, in chunks."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import service.batch
from recommender.serving import Engine
from tests.recommender.serving.conftest import COLD, TRAINABLE
from tests.service.conftest import make_client

USERS = list(TRAINABLE) + list(COLD) + ["visitor-1"]


def _slow_ranking(engine: Engine, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    rank = engine._rank

    def slow(users: list[str], options: Any, *memo: Any) -> Any:
        time.sleep(seconds)  # a long batch, on the worker thread
        return rank(users, options, *memo)

    monkeypatch.setattr(engine, "_rank", slow)


def test_excess_batch_waits_then_gets_429_with_retry_after(monkeypatch):
    with make_client(batch={"max_concurrent": 1, "max_wait_seconds": 0.1}) as client:
        state = client.app.state
        _slow_ranking(state.holder.require().engine, monkeypatch, 0.6)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/batch_recommend", json={"user_ids": USERS})
            deadline = time.monotonic() + 5
            while not state.batch_slots._semaphore.locked() and time.monotonic() < deadline:
                time.sleep(0.01)
            busy = client.post("/batch_recommend", json={"user_ids": ["t0"]})
            assert first.result(timeout=10).status_code == 200
        assert busy.status_code == 429
        assert busy.headers["retry-after"] == "1"
        error = busy.json()["error"]
        assert error["code"] == "batch_busy"
        assert "batch.max_concurrent" in error["message"] and "retry after 1 s" in error["message"]
        assert client.post("/batch_recommend", json={"user_ids": ["t0"]}).status_code == 200
        assert client.get("/stats").json()["errors_by_code"] == {"batch_busy": 1}
        metrics = client.get("/metrics").text
        assert (
            'recsys_http_errors_total{code="batch_busy",endpoint="/batch_recommend"} 1.0' in metrics
        )
        assert 'recsys_http_requests_total{endpoint="/batch_recommend",status="429"} 1.0' in metrics


def test_waiting_batch_gets_the_slot_when_it_frees_in_time(monkeypatch):
    with make_client(batch={"max_concurrent": 1, "max_wait_seconds": 5}) as client:
        _slow_ranking(client.app.state.holder.require().engine, monkeypatch, 0.2)
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda _: client.post("/batch_recommend", json={"user_ids": USERS}), range(2)
                )
            )
        assert [a.status_code for a in answers] == [200, 200]


def test_users_times_topk_is_bounded_with_the_fix():
    with make_client(requests={"max_batch_items": 20}) as client:
        ok = client.post("/batch_recommend", json={"user_ids": USERS[:4], "topk": 5})
        assert ok.status_code == 200
        over = client.post("/batch_recommend", json={"user_ids": USERS[:5], "topk": 5})
        assert over.status_code == 422
        assert over.json()["error"] == {
            "code": "invalid_request",
            "message": "user_ids × topk = 5 × 5 = 25 recommendations; at most 20 per batch "
            "(requests.max_batch_items). Lower topk to 4 or send at most 4 users per batch.",
        }


def test_payloads_and_json_are_built_off_the_event_loop_in_chunks(monkeypatch):
    calls: list[tuple[str, bool]] = []
    answer_json, next_part = service.batch.answer_json, service.batch._next_part

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def recording_answer_json(*args: Any, **kwargs: Any) -> bytes:
        calls.append(("answer", on_loop()))
        return answer_json(*args, **kwargs)

    def recording_next_part(*args: Any, **kwargs: Any) -> Any:
        part = next_part(*args, **kwargs)
        if part is not None:
            calls.append(("chunk", on_loop()))
        return part

    monkeypatch.setattr(service.batch, "answer_json", recording_answer_json)
    monkeypatch.setattr(service.batch, "_next_part", recording_next_part)
    with make_client(batch={"chunk_users": 3}) as client:
        response = client.post("/batch_recommend", json={"user_ids": USERS, "topk": 4})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
    assert calls.count(("answer", False)) == len(USERS)
    assert calls.count(("chunk", False)) == 4  # 11 users in chunks of 3
    assert not any(loop for _, loop in calls)
    assert [r["user_id"] for r in body["results"]] == USERS
    assert body["count"] == len(USERS)
    assert body["cf_users"] == len(TRAINABLE)
    assert body["fallback_users"] == len(USERS) - len(TRAINABLE)
    assert list(body) == [
        "results",
        "count",
        "cf_users",
        "fallback_users",
        "model_id",
        "topk",
        "total_latency_ms",
    ]


def test_chunked_answer_equals_single_answers():
    with make_client(batch={"chunk_users": 2}) as client:
        batch = client.post(
            "/batch_recommend", json={"user_ids": [*USERS, 7], "topk": 5, "rerank": True}
        ).json()
        for result in batch["results"]:
            single = client.post(
                "/recommend", json={"user_id": result["user_id"], "topk": 5, "rerank": True}
            ).json()
            assert result["recommendations"] == single["recommendations"]
            assert result["strategy"] == single["strategy"]
        assert batch["results"][-1]["user_id"] == "7"  # echoed in its string form


def test_a_failing_batch_releases_its_slot(monkeypatch):
    with make_client(
        raise_server_exceptions=False, batch={"max_concurrent": 1, "max_wait_seconds": 0}
    ) as client:
        engine = client.app.state.holder.require().engine
        rank = engine._rank
        failures = iter([True])

        def flaky(users: list[str], options: Any, *memo: Any) -> Any:
            if next(failures, False):
                raise RuntimeError("boom")
            return rank(users, options, *memo)

        monkeypatch.setattr(engine, "_rank", flaky)
        assert client.post("/batch_recommend", json={"user_ids": ["t0"]}).status_code == 500
        assert client.post("/batch_recommend", json={"user_ids": ["t0"]}).status_code == 200
        assert not client.app.state.batch_slots._semaphore.locked()
