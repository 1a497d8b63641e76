"""Drain state seen over HTTP, its config, and gunicorn's graceful_timeout against it.

The real SIGTERM path (uvicorn and gunicorn under load) is tests/service/test_deployment.py.
"""

from __future__ import annotations

import math
import runpy
import time
from pathlib import Path

import pytest

from recommender.config import load_serving_settings
from tests.service.conftest import make_client

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "config" / "gunicorn.conf.py"


def test_health_turns_503_draining_while_requests_are_still_served():
    with make_client(shutdown={"drain_seconds": 4}) as client:
        ok = client.get("/health")
        assert ok.status_code == 200 and "connection" not in ok.headers
        client.app.state.drain.started_at = time.time()  # what SIGTERM does
        health = client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert (body["status"], body["model_id"], body["error"]["code"]) == (
            "draining",
            "m1",
            "draining",
        )
        left = float(body["reason"].split(" stops accepting connections in ")[1].split(" s ")[0])
        assert 3.0 < left <= 4.0, body["reason"]
        served = client.post("/recommend", json={"user_id": "t0"})
        assert served.status_code == 200 and served.json()["recommendations"]
        assert served.headers["connection"] == "close"  # keep-alive clients reconnect elsewhere
        assert health.headers["connection"] == "close"


def test_no_signal_handler_outside_uvicorn():
    """Under the test client the app runs off the main thread: SIGTERM stays untouched."""
    with make_client() as client:
        drain = client.app.state.drain
        assert drain.install() is False and not drain.draining


def test_drain_seconds_default_and_env(monkeypatch):
    monkeypatch.delenv("RECSYS_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RECSYS_ENV", raising=False)
    monkeypatch.chdir(REPO)
    assert load_serving_settings().shutdown.drain_seconds == 5
    monkeypatch.setenv("RECSYS_SHUTDOWN__DRAIN_SECONDS", "1.5")
    assert load_serving_settings().shutdown.drain_seconds == 1.5


@pytest.mark.parametrize(("drain", "expected"), [("5", 35), ("12.5", 43)])
def test_gunicorn_graceful_timeout_exceeds_the_drain_period(drain, expected, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GUNICORN_GRACEFUL_TIMEOUT", raising=False)
    monkeypatch.setenv("RECSYS_SHUTDOWN__DRAIN_SECONDS", drain)
    conf = runpy.run_path(str(GUNICORN_CONF))
    assert conf["graceful_timeout"] == expected == math.ceil(float(drain)) + 30
    assert conf["worker_class"] == "uvicorn.workers.UvicornWorker"


def test_gunicorn_refuses_a_graceful_timeout_inside_the_drain_period(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RECSYS_SHUTDOWN__DRAIN_SECONDS", "10")
    monkeypatch.setenv("GUNICORN_GRACEFUL_TIMEOUT", "8")
    with pytest.raises(SystemExit, match="GUNICORN_GRACEFUL_TIMEOUT=8 must exceed"):
        runpy.run_path(str(GUNICORN_CONF))
