"""The new-products benchmark runs end to end and reports a ratio and a verdict per request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts._server import REPO


def test_benchmark_new_products_reports_ratios_and_targets(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark_new_products.py"), "--items", "80",
         "--users", "300", "--new", "20", "--repeat", "3", "--json", str(report)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: a MISS on a loaded machine, not a crash
    data = json.loads(report.read_text())
    names = ["trainable", "cold", "unknown", "similar (content)"]
    assert sorted(data["ratios"]) == sorted(names) and data["new_products"] == 20
    assert all(value > 0 for value in data["ratios"].values())
    assert len(data["targets"]) == 4
    lines = done.stdout.splitlines()
    assert lines[0] == "80 items, 300 users, 20 new products, median of 3 uncached calls"
    assert [line.split()[0] for line in lines if line.startswith(("PASS", "MISS"))] == [
        "PASS" if passed else "MISS" for passed in data["targets"].values()
    ]
