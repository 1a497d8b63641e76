"""A real ``uvicorn --workers 2`` and gunicorn with its config (a preloading master), each with
PROMETHEUS_MULTIPROC_DIR: any worker's /metrics counts the requests of both; worker logs, uvicorn's
own lines included, are JSON."""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.live_server import live_server


def _recommend_count(url: str) -> float:
    response = requests.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=5)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "recsys_http_requests_total" and sample.labels == {
                "endpoint": "/recommend",
                "status": "200",
            }:
                return sample.value
    return 0.0


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn-conf"])  # the latter forks a loaded app
def test_multiprocess_metrics_and_json_logs(kind, embedded_dir, registry_dir, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "RECSYS_WARMUP__ENABLED": "false",
        "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
    }
    with live_server(
        embedded_dir, registry_dir, log_dir=tmp_path, kind=kind, workers=2, env=env
    ) as server:
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:  # both workers up and serving
            health = requests.get(f"{server.url}/health", headers={"Connection": "close"})
            if health.status_code == 200:
                pids.add(health.json()["pid"])
        assert len(pids) == 2
        for i in range(30):  # a new connection each time: the kernel spreads them over workers
            response = requests.post(
                f"{server.url}/recommend",
                json={"user_id": f"visitor-{i}", "topk": 3},
                headers={"Connection": "close"},
                timeout=5,
            )
            assert response.status_code == 200
        counts = {_recommend_count(server.url) for _ in range(6)}
        log = server.log_text()
    assert counts == {30.0}  # whichever worker answered the scrape
    files = {p.name for p in metrics_dir.iterdir()}
    assert {f"counter_{pid}.db" for pid in pids} <= files  # both workers wrote their counters
    worker_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    startup = [e for e in worker_lines if e["message"] == "Application startup complete."]
    assert len(startup) == 2 and all(e["logger"] == "uvicorn.error" for e in startup)
    assert any(e["logger"] == "recommender.serving.holder" for e in worker_lines)
