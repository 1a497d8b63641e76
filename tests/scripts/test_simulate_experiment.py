"""The A/B simulation runs end to end on a small shop and prints the verdict and its check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from scripts._server import REPO
from tests.fixtures.models import fast_settings
from tests.recommender.replay.test_replay import _paired_shop


def test_simulation_prints_offline_difference_online_table_and_verdict(tmp_path: Path) -> None:
    raw = _paired_shop(tmp_path / "raw")
    config = tmp_path / "config"
    config.mkdir()
    (config / "training.yaml").write_text(yaml.safe_dump(fast_settings().model_dump()))
    report = tmp_path / "sim.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "simulate_experiment.py"), "--source",
         "canonical", "--input", str(raw), "--fraction", "0.25", "--config-dir", str(config),
         "--workdir", str(tmp_path / "work"), "--json", str(report)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(report.read_text())
    rows = {r["variant"]: r for r in data["online"]["variants"]}
    assert sorted(rows) == ["hybrid", "popularity"]
    events = data["offline"]["events"]
    assert events > 50
    assert rows["hybrid"]["impressions"] + rows["popularity"]["impressions"] == events
    for row in rows.values():  # a click is a hit of that variant's list: at most one per list
        assert 0 <= row["clicks"] <= row["impressions"]
    lines = done.stdout.splitlines()
    assert lines[-1].split(":")[0] == ("MATCH" if data["match"] else "MISMATCH")
    assert any(line.startswith("verdict (admin table): ") for line in lines)
    assert done.returncode == (0 if data["match"] else 1)


def test_simulation_runs_a_model_vs_model_experiment(tmp_path: Path) -> None:
    raw = _paired_shop(tmp_path / "raw")
    config = tmp_path / "config"
    config.mkdir()
    (config / "training.yaml").write_text(yaml.safe_dump(fast_settings().model_dump()))
    report = tmp_path / "sim.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "simulate_experiment.py"), "--source",
         "canonical", "--input", str(raw), "--fraction", "0.25", "--config-dir", str(config),
         "--workdir", str(tmp_path / "work"), "--control", "model", "--json", str(report)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(report.read_text())
    current, challenger = data["models"]["current"], data["models"]["challenger"]
    assert challenger is not None and challenger != current
    rows = {r["variant"]: r for r in data["online"]["variants"]}
    assert sorted(rows) == ["challenger", "current"]
    assert data["online"]["experiment"] == "current-vs-challenger"
    events = data["offline"]["events"]
    assert rows["current"]["impressions"] + rows["challenger"]["impressions"] == events
    assert sorted(data["offline"]["hit_rate"]) == ["challenger", "current"]
    assert f"models: current {current}, challenger {challenger}" in done.stdout
    assert done.stdout.splitlines()[-1].split(":")[0] == ("MATCH" if data["match"] else "MISMATCH")
