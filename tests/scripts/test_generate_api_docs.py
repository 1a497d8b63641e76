"""docs/API.md is generated from the OpenAPI schema and must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.live_server import REPO

SCRIPT = REPO / "scripts" / "generate_api_docs.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_committed_reference_matches_the_code() -> None:
    result = run("--out", str(REPO / "docs" / "API.md"), "--check")
    assert result.returncode == 0, result.stderr


def test_reference_lists_every_endpoint_and_schema(tmp_path: Path) -> None:
    out = tmp_path / "API.md"
    assert run("--out", str(out)).returncode == 0
    text = out.read_text(encoding="utf-8")
    for endpoint in (
        "GET /health",
        "GET /model_info",
        "GET /stats",
        "GET /cache_stats",
        "GET /metrics",
        "POST /recommend",
        "POST /batch_recommend",
        "POST /similar_items",
        "POST /reload_model",
        "POST /cache_clear",
        "POST /cache_warmup",
    ):
        assert f"### {endpoint}\n" in text
    assert "### RecommendRequest\n" in text and "### ErrorResponse\n" in text
    assert "| `topk` |" in text and "| `user_id` |" in text


def test_check_fails_when_the_reference_drifts(tmp_path: Path) -> None:
    out = tmp_path / "API.md"
    assert run("--out", str(out)).returncode == 0
    out.write_text(out.read_text(encoding="utf-8") + "\nhand edit\n", encoding="utf-8")
    result = run("--out", str(out), "--check")
    assert result.returncode == 1 and "out of date" in result.stderr
    missing = run("--out", str(tmp_path / "nope.md"), "--check")
    assert missing.returncode == 1 and "missing" in missing.stderr
