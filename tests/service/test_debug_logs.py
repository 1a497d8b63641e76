"""Staging's DEBUG level (``RECSYS_ENV=staging``) adds request- and reload-path lines; INFO none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.fixtures.live_server import live_server

pytestmark = pytest.mark.slow
TOKEN = "debug-secret"


def _lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def _exercise(url: str) -> None:
    for _ in range(3):  # cache.admission repeat: the first is held back, the second hits
        response = requests.post(f"{url}/recommend", json={"user_id": "1", "topk": 5}, timeout=10)
        assert response.status_code == 200 and response.json()["strategy"] == "cf"
    batch = {"user_ids": ["999999", "new-visitor"], "topk": 5}
    assert requests.post(f"{url}/batch_recommend", json=batch, timeout=10).status_code == 200
    reload = requests.post(f"{url}/reload_model", headers={"X-Admin-Token": TOKEN}, timeout=30)
    assert reload.status_code == 200


def _debug_messages(text: str) -> list[str]:
    return [e["message"] for e in _lines(text) if e.get("level") == "DEBUG"]


def test_staging_logs_route_segment_timings_cache_and_reload_at_debug(
    embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    env = {"RECSYS_ENV": "staging", "RECSYS_ADMIN_TOKEN": TOKEN}
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, env=env) as server:
        _exercise(server.url)
        text = server.log_text()
    messages = _debug_messages(text)
    joined = "\n".join(messages)
    assert "recommend user='1' segment=trainable results cache miss" in messages, joined
    assert "recommend user='1' segment=trainable results cache hit" in messages, joined
    assert any(m.startswith("POST /recommend -> 200 in ") and "(path cf" in m for m in messages)
    assert any(m.startswith("POST /batch_recommend -> 200 in ") for m in messages), joined
    # warm-up already scored the most active users' profiles: "1" is a profile-cache hit
    assert "scoring 1 trainable users: profile cache 1 hit(s), 0 to compute" in messages, joined
    # the batch's cold user is scored on the batch path (no profile cache)
    assert any(m.startswith("batch: scored 1 cold users together in ") for m in messages), joined
    assert any(m.startswith("computed 256 trainable profiles in ") for m in messages), joined
    assert "scored 1 unknown users with default weights (shared vector)" in messages, joined
    assert any(m.startswith("reload: loading the current model (serving ") for m in messages)
    assert any(m.startswith("loaded model ") and " trainable), " in m for m in messages), joined
    assert any(m.startswith("cache warm-up done: ") for m in messages), joined


def test_the_default_info_level_adds_no_debug_lines(
    embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    env = {"RECSYS_ADMIN_TOKEN": TOKEN}
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, env=env) as server:
        _exercise(server.url)
        text = server.log_text()
    assert _debug_messages(text) == []
    assert any(e.get("level") == "INFO" for e in _lines(text))
