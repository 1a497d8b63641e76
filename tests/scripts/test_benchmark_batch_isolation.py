"""The batch isolation benchmark: its summary maths, and one short real run that prints both
p99s and their ratio from a single run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from benchmark_batch_isolation import known_users, summarise  # noqa: E402


def test_summarise_counts_failures_and_nearest_rank_percentiles():
    latencies = [float(i) for i in range(1, 101)]
    assert summarise(latencies, failures=2, wall_s=2.0) == {
        "requests": 102,
        "failed": 2,
        "achieved_rps": 51.0,
        "p50_ms": 50.0,
        "p95_ms": 95.0,
        "p99_ms": 99.0,
        "max_ms": 100.0,
    }


def test_known_users_are_distinct_and_known(processed_dir):
    users = known_users(processed_dir, seed=1)
    known = set(json.loads((processed_dir / "user_item_mappings.json").read_text())["user_ids"])
    interactions = pd.read_parquet(processed_dir / "interactions.parquet")
    liked = set(interactions.loc[interactions["is_positive"], "user_id"].astype(str))
    # users without a positive interaction are answered like unknown visitors: not "known" here
    assert len(users) == len(set(users)) == len({str(u) for u in known} & liked)
    assert set(users) == {str(u) for u in known} & liked


@pytest.mark.slow
def test_short_run_prints_both_p99s_and_the_ratio(embedded_dir, registry_dir, tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "benchmark_batch_isolation.py"),
            "--processed",
            str(embedded_dir),
            "--registry",
            str(registry_dir),
            "--rate",
            "50",
            "--requests",
            "100",
            "--batch-users",
            "200",
            "--settle",
            "0.3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["alone"]["requests"] == report["beside_batches"]["requests"] == 100
    assert report["p99_ratio"] == round(report["p99_beside_batches_ms"] / report["p99_alone_ms"], 3)
    assert all(s["batches_ok"] >= 1 for s in report["batch_streams"])
    assert "ratio" in done.stdout and "p99 alone" in done.stdout
    assert report["alone"]["failed"] == report["beside_batches"]["failed"] == 0
