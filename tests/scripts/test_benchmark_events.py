"""The ingest benchmark runs end to end on both backends and prints one row per backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts._server import REPO


def test_benchmark_events_reports_rate_and_latency_per_backend(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH (.ci/run installs it)")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark_events.py"), "--seconds", "0.5",
         "--clients", "2", "--json", str(report)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(report.read_text())
    assert [r["backend"] for r in rows] == ["sqlite", "redis"]
    for row in rows:
        assert row["events"] > 0 and row["errors"] == 0 and row["events_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert done.stdout.splitlines()[0].startswith("backend | clients | processes | events_per_s")
