"""scripts/load_test.py against a real uvicorn server started on the test artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.live_server import REPO, Server, free_port, live_server, run_script

sys.path.insert(0, str(REPO / "scripts"))
import load_test  # noqa: E402

pytestmark = pytest.mark.slow
BUCKETS = (
    "<=1",
    "<=2.5",
    "<=5",
    "<=10",
    "<=25",
    "<=50",
    "<=100",
    "<=200",
    "<=500",
    "<=1000",
    ">1000",
)


def load(port: int, *extra: str) -> subprocess.CompletedProcess:
    return run_script("load_test.py", port, *extra)


@pytest.fixture(scope="module")
def server(embedded_dir: Path, registry_dir: Path, tmp_path_factory) -> Iterator[Server]:
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path_factory.mktemp("load")) as srv:
        yield srv


def test_mixed_load_meets_the_targets(server: Server, embedded_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = load(
        server.port,
        "--total",
        "300",
        "--concurrency",
        "8",
        "--warmup",
        "100",
        "--processed-dir",
        str(embedded_dir),
        "--output",
        str(out),
        "--max-p99-ms",
        "2000",  # this test checks the script; the 200 ms target is checked on real deployments
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report
    assert (report["total"], report["ok"], report["errors"], report["error_rate"]) == (
        300,
        300,
        0,
        0,
    )
    assert report["status_counts"] == {"200": 300}
    assert report["passed"] is True and report["failures"] == []
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 2000
    assert report["thresholds"] == {"p99_ms": 2000.0, "error_rate": 0.01}
    segments = report["requested_segments"]
    assert sum(segments.values()) == 300
    assert segments["unknown"] > segments["cold"] > segments["trainable"] > 0
    # routing: exactly the trainable users' requests are answered by CF
    assert report["cf_requests"] == segments["trainable"] == report["strategies"]["cf"]
    assert report["fallback_requests"] == 300 - segments["trainable"]
    assert report["strategies"]["popularity"] >= segments["unknown"]
    cache = report["cache"]
    assert cache["after"]["hits"] >= cache["before"]["hits"]
    assert cache["during"]["hits"] == cache["after"]["hits"] - cache["before"]["hits"]
    assert 0.0 <= cache["after"]["hit_rate"] <= 1.0
    assert report["throughput_rps"] > 0 and report["duration_s"] > 0
    histogram = [(row["bucket"], row["count"]) for row in report["latency_histogram_ms"]]
    assert [bucket for bucket, _ in histogram] == list(BUCKETS)
    assert sum(count for _, count in histogram) == 300
    # off a terminal: no bar, one line per phase with its time, then the one-screen summary
    stderr = result.stderr.splitlines()
    assert [line.split(" in ")[0] for line in stderr if line.startswith("[load]")] == [
        "[load] warm-up: 100 requests",
        "[load] measured: 300 requests",
    ]
    assert "\r" not in result.stderr  # no tqdm bar redraws
    start = stderr.index(next(line for line in stderr if line.startswith("latency (ms) of 300")))
    rows = stderr[start + 1 : start + 12]
    assert [row.split()[:2] for row in rows] == [[k, str(v)] for k, v in histogram]
    assert stderr[start + 12].startswith(f"  p50 {lat['p50']}  p90 {lat['p90']}")
    assert stderr[-1].startswith("PASS: 300 requests")
    assert len(stderr) <= 20  # one screen


def test_cf_mix_is_all_cf(server: Server, embedded_dir: Path) -> None:
    result = load(
        server.port,
        "--total",
        "60",
        "--concurrency",
        "4",
        "--warmup",
        "0",
        "--mix",
        "cf",
        "--processed-dir",
        str(embedded_dir),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requested_segments"] == {"trainable": 60}
    assert report["strategies"] == {"cf": 60} and report["cf_share"] == 1.0


def test_a_missed_target_exits_non_zero(server: Server, embedded_dir: Path) -> None:
    result = load(
        server.port,
        "--total",
        "20",
        "--concurrency",
        "2",
        "--warmup",
        "0",
        "--processed-dir",
        str(embedded_dir),
        "--max-p99-ms",
        "0.001",
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["errors"] == 0
    assert report["failures"][0].startswith("p99 ")
    assert "FAIL: 20 requests" in result.stderr


def test_a_dead_port_exits_non_zero() -> None:
    result = load(free_port(), "--total", "5", "--concurrency", "1")
    assert result.returncode == 2
    assert "cannot reach" in result.stderr and result.stdout == ""


def test_latency_histogram_buckets_include_their_upper_edge() -> None:
    latencies = [0.2, 1.0, 1.01, 9.9, 10.0, 250.0, 1000.0, 1000.5, 4e3]
    histogram = load_test.latency_histogram(latencies)
    assert [row["bucket"] for row in histogram] == list(BUCKETS)
    assert [row["count"] for row in histogram] == [2, 1, 0, 2, 0, 0, 0, 0, 1, 1, 2]
    assert [row["count"] for row in load_test.latency_histogram([])] == [0] * 11
