"""configure_logging: the project's and uvicorn's loggers log JSON at the configured level."""

from __future__ import annotations

import json
import logging

from service.log_format import configure_logging
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
        "message": "Application startup failed",
    }


def test_plain_format_when_json_is_off():
    configure_logging(settings_with(logging={"level": "INFO", "json_format": False}))
    handler = logging.getLogger("uvicorn.error").handlers[0]
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "hello", (), None)
    assert handler.format(record).endswith("INFO uvicorn.error: hello")
    configure_logging(settings_with(logging={"level": "INFO"}))
