"""A client that closes mid-body is a client abort (499 ``client_closed_request``), not a server
error: one log line, no traceback, nothing in the 5xx series (issue 10)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.live_server import live_server
from tests.service.conftest import make_client

PARTIAL = b'{"user_id": 1'  # 13 of the 100 bytes announced
LOG_LINE = "client closed the connection before sending the whole body: POST /recommend"


def _statuses(metrics_text: str, endpoint: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (
                sample.name == "recsys_http_requests_total"
                and sample.labels["endpoint"] == endpoint
            ):
                found[sample.labels["status"]] = sample.value
    return found


async def _send_partial_body(app) -> list[dict]:
    """Drive the ASGI app as a server would: 13 body bytes, then the client is gone."""
    messages = [
        {"type": "http.request", "body": PARTIAL, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/recommend",
        "raw_path": b"/recommend",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_disconnect_mid_body_is_a_client_abort_in_asgi():
    collected = _Records()
    with make_client() as client:
        logger = logging.getLogger("service")  # configure_logging's logger (does not propagate)
        logger.addHandler(collected)
        try:
            sent = asyncio.run(_send_partial_body(client.app))
        finally:
            logger.removeHandler(collected)
        stats = client.get("/stats").json()
        metrics = client.get("/metrics").text
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert stats["errors_by_code"] == {"client_closed_request": 1}
    assert stats["endpoints"]["/recommend"] == {**stats["endpoints"]["/recommend"], "count": 1}
    assert _statuses(metrics, "/recommend") == {"499": 1.0}
    assert [(r.levelname, r.name, r.getMessage()) for r in collected.records] == [
        ("INFO", "service.errors", LOG_LINE)
    ]
    assert collected.records[0].exc_info is None  # no traceback


def test_disconnect_mid_body_on_a_live_server(embedded_dir, registry_dir, tmp_path):
    env = {"RECSYS_WARMUP__ENABLED": "false", "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0"}
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, env=env) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + PARTIAL
            )
        deadline = time.monotonic() + 10
        statuses: dict[str, float] = {}
        while time.monotonic() < deadline and not statuses:  # the server notices the close
            statuses = _statuses(
                requests.get(f"{server.url}/metrics", timeout=5).text, "/recommend"
            )
            time.sleep(0.05)
        stats = requests.get(f"{server.url}/stats", timeout=5).json()
        assert requests.post(f"{server.url}/recommend", json={"user_id": 1}).status_code == 200
        log = server.log_text()
    assert statuses == {"499": 1.0}
    assert stats["errors_by_code"] == {"client_closed_request": 1}
    assert log.count(LOG_LINE) == 1
    assert "Traceback" not in log and "ClientDisconnect" not in log
