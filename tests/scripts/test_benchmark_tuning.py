"""The tuning benchmark runs end to end: search vs reference grid vs today's grid, PASS/MISS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts._server import REPO


def test_benchmark_tuning_compares_search_with_both_grids(
    embedded_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark_tuning.py"), "--processed",
         str(embedded_dir), "--models", "ease", "--trials", "3", "--json", str(report)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    out = json.loads(report.read_text())
    row = out["models"]["ease"]
    assert row["search"]["points"] == 3 and row["reference"]["points"] == 8
    assert row["today"]["points"] == 7
    # the reference grid holds every point of today's: its best is at least today's
    assert row["reference"]["validation"] >= row["today"]["validation"]
    lines = [line for line in done.stdout.splitlines() if line[:4] in ("PASS", "MISS")]
    assert len(lines) == 2 and "reference grid" in lines[0] and "today's grid" in lines[1]
    # each target carries the paired per-user difference behind it (is a MISS more than noise?)
    assert all("paired difference" in line for line in lines)
    for stage, rival in (("validation", "reference"), ("test", "today")):
        difference = row["differences"][stage]
        assert difference["mean"] == pytest.approx(row["search"][stage] - row[rival][stage])
        assert difference["low"] <= difference["mean"] <= difference["high"]
    assert done.returncode == (0 if all(out["targets"].values()) else 1)
