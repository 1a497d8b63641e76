"""The ranking benchmark compares the former ranking with top_k_items and finds them identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reports_both_methods_identical_for_every_case_with_a_verdict():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark_ranking.py")]
        + ["--items", "6000", "--users", "24", "--k", "10"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: MISS (speed, never asserted here)
    lines = [line for line in done.stdout.splitlines() if "ms/row" in line]
    assert len(lines) == 3 and all(line.endswith("identical True") for line in lines)
    assert done.stdout.strip().splitlines()[-1].split(":")[0] in ("PASS", "MISS")
