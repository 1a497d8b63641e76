"""The serving benchmark's request mix is the realistic one it claims (no server started here)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import _client  # noqa: E402
import benchmark_serving  # noqa: E402
import load_test  # noqa: E402
from benchmark_serving import percentile, user_mix  # noqa: E402


def test_user_mix_is_mostly_cold_and_unknown(processed_dir):
    bodies, batch = user_mix(processed_dir, 2000, seed=1)
    trainable = set(
        json.loads((processed_dir / "trainable_user_mapping.json").read_text())["user_ids"]
    )
    known = set(json.loads((processed_dir / "user_item_mappings.json").read_text())["user_ids"])
    users = [b["user_id"] for b in bodies]
    share_trainable = sum(u in trainable for u in users) / len(users)
    share_unknown = sum(u not in known for u in users) / len(users)
    assert 0.05 < share_trainable < 0.15  # the load test's "mixed": ~90% cold-start and unknown
    assert 0.5 < share_unknown < 0.7
    assert len(set(users)) < len(users) * 0.8  # skewed: visitors come back
    assert 0.05 < sum("filters" in b for b in bodies) / len(bodies) < 0.15
    assert 0.05 < sum("rerank_weights" in b for b in bodies) / len(bodies) < 0.15
    assert len(batch) == 1000
    assert 0.5 < sum(u not in known for u in batch) / len(batch) < 0.7  # the batch: same mix


def test_percentile():
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0


def test_one_percentile_and_one_traffic_mix_for_every_script():
    assert percentile is _client.percentile
    assert load_test.build_plan is _client.build_plan and load_test.MIXES is _client.MIXES


def test_scale_targets_are_issue_12s_at_1m_users_by_50k_products():
    """--scale: 2 ms per uncached known user and ready within 15 s; the demo shop keeps 0.25 / 5."""
    scale, demo = argparse.Namespace(scale=True), argparse.Namespace(scale=False)
    assert benchmark_serving._engine_target(scale) == "engine <= 2 ms per uncached known user"
    assert benchmark_serving._engine_target(demo) == "engine <= 0.25 ms per uncached known user"
    assert (benchmark_serving._startup_s(scale), benchmark_serving._startup_s(demo)) == (15, 5)


@pytest.mark.slow
def test_engine_only_reports_the_engine_times_and_their_targets(
    embedded_dir, registry_dir, tmp_path
):
    out = tmp_path / "engine.json"
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            str(repo / "scripts" / "benchmark_serving.py"),
            "--engine-only",
            "--processed",
            str(embedded_dir),
            "--registry",
            str(registry_dir),
            "--distinct",
            "100",
            "--compare",
            "5",
            "--engine-users",
            "10",
            "--batch-runs",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    engine = report["engine_in_process"]
    assert engine["trainable_ms_per_user"] > 0 and engine["cold_ms_per_user"] > 0
    assert engine["known_ms_per_user"] > 0 and engine["batch_over_one_by_one"] > 0
    assert set(report["targets"]) == {
        "batch <= 1/5 of one by one (engine)",
        "engine <= 0.25 ms per uncached known user",
    }
    assert "engine <= 0.25 ms per uncached known user" in done.stdout
    assert "mixes" not in report  # no server was started


def test_group_cpu_counts_the_cpu_of_the_server_process_group_only():
    from benchmark_serving import group_cpu_s

    burn = (
        "import sys, time\n"
        "while time.process_time() < 0.3: pass\n"  # bounded by its own CPU, not the clock
        "print('done', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", burn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,  # as ServerProcess starts a server: its own process group
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"done\n"
        assert 0.25 <= group_cpu_s(child.pid) < 30  # clock ticks of 10 ms, rounded down
        assert group_cpu_s(2**22 + 7) == 0.0  # above the kernel's pid_max: no such group
    finally:
        child.communicate(b"", timeout=60)
