"""The BPR benchmark runs end to end: old vs new time per epoch, NDCG@10 of both, PASS/MISS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts._server import REPO
from scripts.benchmark_bpr import synthetic_matrix


def test_synthetic_matrix_has_about_the_asked_interactions() -> None:
    matrix = synthetic_matrix(5000)
    assert matrix.shape == (1000, 100)
    assert 4000 < matrix.nnz <= 5000 and set(matrix.data.tolist()) == {1.0}


def test_benchmark_bpr_prints_both_times_and_scores(embedded_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark_bpr.py"), "--processed",
         str(embedded_dir), "--interactions", "3000", "--epochs", "5", "--old-epochs", "1",
         "--quality-epochs", "5", "--json", str(report)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    out = json.loads(report.read_text())
    speed = out["speed"]
    assert speed["new_epochs"] == 5 and speed["old_epochs"] == 1
    assert speed["speedup"] == speed["old_seconds_per_epoch"] / speed["new_seconds_per_epoch"]
    for stage in ("validation", "test"):
        for name in ("old", "new"):
            assert 0.0 <= out["quality"][f"{stage}_{name}_ndcg@10"] <= 1.0
    assert len(out["targets"]) == 3
    lines = [line for line in done.stdout.splitlines() if line[:4] in ("PASS", "MISS")]
    assert len(lines) == 3 and "20x faster" in lines[0] and "< 60 s" in lines[1]
    assert done.returncode == (0 if all(out["targets"].values()) else 1)
