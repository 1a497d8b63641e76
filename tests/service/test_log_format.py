"""configure_logging: the project's and uvicorn's loggers log JSON at the configured level."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest
import requests

from service.log_format import configure_logging
from tests.fixtures.live_server import live_server
from tests.service.conftest import settings_with

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


def test_uvicorn_loggers_get_the_json_handler_at_the_configured_level():
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler())  # as uvicorn's config
    for level in ("WARNING", "DEBUG"):  # idempotent: reconfiguring replaces, never duplicates
        configure_logging(settings_with(logging={"level": level}))
        for name in ("recommender", "service", *UVICORN):
            log = logging.getLogger(name)
            assert log.level == getattr(logging, level), name
            assert len(log.handlers) == 1 and getattr(log.handlers[0], "_recsys", False), name
            assert log.propagate is False


def test_access_and_error_lines_are_json():
    configure_logging(settings_with(logging={"level": "INFO"}))
    access = logging.getLogger("uvicorn.access")
    record = access.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/recommend", "1.1", 200),
        None,
    )
    entry = json.loads(access.handlers[0].format(record))
    assert entry["message"] == '127.0.0.1:5000 - "POST /recommend HTTP/1.1" 200'
    assert (entry["logger"], entry["level"], entry["method"], entry["path"], entry["status"]) == (
        "uvicorn.access",
        "INFO",
        "POST",
        "/recommend",
        200,
    )
    error = logging.getLogger("uvicorn.error")
    record = error.makeRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "Application startup failed", (), None
    )
    entry = json.loads(error.handlers[0].format(record))
    assert entry == {
        "time": entry["time"],
        "level": "ERROR",
        "logger": "uvicorn.error",
        "pid": os.getpid(),
        "message": "Application startup failed",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), entry["time"]


def test_plain_format_when_json_is_off():
    configure_logging(settings_with(logging={"level": "INFO", "json_format": False}))
    handler = logging.getLogger("uvicorn.error").handlers[0]
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "hello", (), None)
    assert handler.format(record).endswith("INFO uvicorn.error: hello")
    configure_logging(settings_with(logging={"level": "INFO"}))


@pytest.mark.slow
def test_gunicorn_and_app_lines_share_one_format(
    embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    """gunicorn -c config/gunicorn.conf.py: its own lines, the app's and the access lines are JSON
    objects with the same keys (access lines add their fields), so one parser reads them all."""
    with live_server(
        embedded_dir, registry_dir, log_dir=tmp_path, kind="gunicorn-conf", workers=1
    ) as server:
        assert requests.post(f"{server.url}/recommend", json={"user_id": "x"}).status_code == 200
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    by_logger = {entry["logger"]: entry for entry in entries}
    base = {"time", "level", "logger", "pid", "message"}
    gunicorn, app = by_logger["gunicorn.error"], by_logger["recommender.serving.bundle"]
    assert set(gunicorn) == set(app) == base, (gunicorn, app)
    assert set(by_logger["uvicorn.access"]) == base | {
        "client",
        "method",
        "path",
        "http_version",
        "status",
    }
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert all(re.fullmatch(stamp, entry["time"]) for entry in entries)
