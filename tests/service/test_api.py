"""create_app on FastAPI releases with and without ``fastapi.telemetry`` (the floor, 0.110, has
none: ``make test-floor`` runs the whole suite there)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from service import api

TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def test_telemetry_is_switched_off_where_fastapi_has_it() -> None:
    has_telemetry = importlib.util.find_spec("fastapi.telemetry") is not None
    assert api._telemetry_off() == ({"telemetry": TELEMETRY_OFF} if has_telemetry else {})


def test_no_telemetry_argument_where_fastapi_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi.telemetry", None)  # importing it fails, as on 0.110
    assert api._telemetry_off() == {}
