"""The HTTP ingest benchmark: one short real run (SQLite, and Redis where redis-server is on
PATH) on two servers sharing a store; every ack counted, and the lag measured on the second."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite"] + (["redis"] if shutil.which("redis-server") else [])


@pytest.mark.slow
def test_short_run_counts_every_ack_and_measures_the_lag(embedded_dir, registry_dir, tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "benchmark_ingest.py"),
            "--processed",
            str(embedded_dir),
            "--registry",
            str(registry_dir),
            "--backend",
            *BACKENDS,
            "--batch",
            "1",
            "10",
            "--clients",
            "4",
            "--seconds",
            "1",
            "--sample-every",
            "20",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [(r["backend"], r["events_per_post"]) for r in rows] == [
        (backend, batch) for backend in BACKENDS for batch in (1, 10)
    ]
    for row in rows:
        assert row["failed_posts"] == {}
        assert row["acked_events"] > 0 and row["acked_events"] % row["events_per_post"] == 0
        assert row["events_per_s"] == pytest.approx(row["acked_events"] / 1.0, rel=0.5)
        assert 0 < row["ack_p50_ms"] <= row["ack_p95_ms"] <= row["ack_p99_ms"] <= row["ack_max_ms"]
        # every sample became visible on the second server, and each got a lag
        assert row["lag_unseen"] == 0 and row["lag_samples"] > 0
        assert 0 < row["lag_p50_ms"] <= row["lag_p99_ms"] <= row["lag_max_ms"]
        # every acked event (warm-up included) is in the store, once: A and B applied them all
        assert row["backend_applied_seq_a_b"] == [row["backend_acked_events"]] * 2
        # the ceiling: /health with the same clients on A, and ingest's share of it
        assert row["health_rps"] > 0 and row["health_p99_ms"] > 0
        assert row["posts_over_health"] == round(row["posts_per_s"] / row["health_rps"], 3)
    for backend in BACKENDS:
        same = [r for r in rows if r["backend"] == backend]
        assert same[0]["backend_acked_events"] == sum(
            r["acked_events"] + r["warmup_acked_events"] for r in same
        )
    targets = report["targets"]
    assert set(targets) >= {
        "sqlite: >= 2000 events/s",
        "sqlite: ack p99 < 20 ms",
        "sqlite x10: >= 2000 events/s",
        "sqlite x10: ack p99 < 20 ms",
        "sqlite x10: lag max < 1 s, all seen",
    }
    sqlite_1 = rows[0]
    assert targets["sqlite: >= 2000 events/s"] == (sqlite_1["events_per_s"] >= 2000)
    assert targets["sqlite: ack p99 < 20 ms"] == (sqlite_1["ack_p99_ms"] < 20)
    for name, passed in targets.items():  # printed by the script itself, one line each
        assert f"{'PASS' if passed else 'MISS'}  {name}" in done.stdout
    header = done.stdout.splitlines()[0]
    assert header.startswith("| backend | durability | events_per_post | events_per_s | ack_p50_ms")
    assert header.endswith("| client_cpu_pct | health_rps | posts_over_health |")
