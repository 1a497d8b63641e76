"""The one server launcher the benchmark, the deployment report and the live-server tests share."""

from __future__ import annotations

import sys

import pytest

from scripts._server import APP, GUNICORN_CONFIG, REPO, server_command, server_env
from tests.fixtures import live_server


def test_uvicorn_command_is_the_operators_on_localhost() -> None:
    assert server_command("uvicorn", 8123, 2, extra=["--no-access-log"]) == [
        sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", "8123",
        "--workers", "2", "--no-access-log",
    ]  # fmt: skip


def test_gunicorn_command_plain_or_with_the_production_config() -> None:
    plain = [APP, "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", "127.0.0.1:8123",
             "--no-control-socket"]  # fmt: skip
    assert server_command("gunicorn", 8123, 2) == [sys.executable, "-m", "gunicorn", *plain]
    configured = server_command("gunicorn", 8123, 2, gunicorn_config=GUNICORN_CONFIG)
    assert configured == [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), *plain]
    assert GUNICORN_CONFIG.is_file()
    with pytest.raises(ValueError, match="unknown server kind 'hypercorn'"):
        server_command("hypercorn", 8123, 1)


def test_tests_run_the_checklist_gunicorn_command_with_a_short_graceful_timeout() -> None:
    command = live_server.server_command("gunicorn", 8123, 2)
    assert command == server_command("gunicorn", 8123, 2) + ["--graceful-timeout", "20"]
    assert live_server.server_command("uvicorn", 8123, 1) == server_command("uvicorn", 8123, 1)


def test_server_env_replaces_settings_and_points_at_the_artifacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("RECSYS_CACHE__RESULTS__MAX_SIZE", "7")
    monkeypatch.setenv("RECSYS_PATHS__PROCESSED_DIR", "/elsewhere")
    env = server_env(tmp_path / "p", tmp_path / "r", {"RECSYS_WARMUP__ENABLED": "false"})
    assert "RECSYS_CACHE__RESULTS__MAX_SIZE" not in env
    assert env["RECSYS_PATHS__PROCESSED_DIR"] == str((tmp_path / "p").resolve())
    assert env["RECSYS_PATHS__REGISTRY_DIR"] == str((tmp_path / "r").resolve())
    assert env["RECSYS_WARMUP__ENABLED"] == "false" and env["PYTHONPATH"] == str(REPO)
    kept = server_env(tmp_path / "p", tmp_path / "r", drop_prefix="RECSYS_PATHS__")
    assert kept["RECSYS_CACHE__RESULTS__MAX_SIZE"] == "7"
    assert kept["RECSYS_PATHS__PROCESSED_DIR"] == str((tmp_path / "p").resolve())
