"""benchmark_servers: the command line of each server, and granian really serves the app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from _server import ServerProcess, free_port, server_env  # noqa: E402
from benchmark_servers import SERVERS, command_for, distinct_users  # noqa: E402


def test_commands_of_every_server():
    uvicorn, granian, gunicorn = (command_for(kind, 8123, 2) for kind in SERVERS)
    assert uvicorn[1:4] == ["-m", "uvicorn", "service.api:app"]
    assert {"--loop", "uvloop", "--http", "httptools"} <= set(uvicorn)
    assert granian[1:3] == ["-m", "granian"] and granian[-1] == "service.api:app"
    assert granian[granian.index("--interface") + 1] == "asgi"
    assert granian[granian.index("--workers") + 1] == "2"
    assert "uvicorn.workers.UvicornWorker" in gunicorn and "-c" in gunicorn
    with pytest.raises(ValueError, match="unknown server"):
        command_for("hypercorn", 1, 1)


def test_distinct_users_are_distinct_known_users(processed_dir):
    bodies = distinct_users(processed_dir, 300, seed=1)
    users = [b["user_id"] for b in bodies]
    assert len(users) == len(set(users)) == 300


def test_granian_serves_the_app(embedded_dir, registry_dir):
    pytest.importorskip("granian")
    port = free_port()
    env = server_env(embedded_dir, registry_dir, {"RECSYS_LOGGING__LEVEL": "WARNING"})
    server = ServerProcess(command_for("granian", port, 1), env, port)
    try:
        server.wait_ready(timeout=120)
        body = requests.post(f"{server.url}/recommend", json={"user_id": "1", "topk": 3}).json()
        assert len(body["recommendations"]) == 3
    finally:
        server.stop()
