"""scripts/time_to_first_answer.py: milestones of a real server, PASS/MISS against the target."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from scripts import time_to_first_answer as ttfa
from scripts._server import APP, REPO, free_port, server_env

pytestmark = pytest.mark.slow


def test_a_real_server_reaches_both_milestones(embedded_dir: Path, registry_dir: Path) -> None:
    port = free_port()
    command = shlex.join(
        [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)]
    )
    lines: list[str] = []
    report = ttfa.measure(
        command,
        REPO,
        port,
        timeout=120,
        say=lines.append,
        env=server_env(embedded_dir, registry_dir),
    )
    milestones = report["milestones_s"]
    assert list(milestones) == ["health_ready", "personalised"], lines[-20:]
    assert 0 < milestones["health_ready"] <= milestones["personalised"] < 120
    assert any(line.endswith("= personalised answer for 1") for line in lines)
    assert report["exit_code"] is not None  # the server was stopped


def test_a_command_that_never_serves_has_no_milestone(tmp_path: Path) -> None:
    lines: list[str] = []
    report = ttfa.measure(
        "echo 'done in 0:01 (prepare 0:01): current model x'",
        tmp_path,
        free_port(),
        30,
        lines.append,
    )
    assert report["milestones_s"] == {}
    assert report["exit_code"] == 0
    assert report["build_summary"] == "done in 0:01 (prepare 0:01): current model x"
    assert ttfa.verdict(None, 360) == "MISS  no personalised answer (target 360s)"


def test_verdict_against_six_minutes() -> None:
    assert ttfa.verdict(359.6, 360) == "PASS  first personalised answer after 6:00 (target 6:00)"
    assert ttfa.verdict(361, 360) == "MISS  first personalised answer after 6:01 (target 6:00)"
    assert (
        ttfa.verdict(307, 360, "make install included")
        == "PASS  first personalised answer after 5:07 (make install included) (target 6:00)"
    )


def test_only_a_cf_answer_with_items_counts() -> None:
    assert ttfa.is_personalised({"strategy": "cf", "recommendations": [{"product_id": "a"}]})
    assert not ttfa.is_personalised({"strategy": "popularity", "recommendations": [{}]})
    assert not ttfa.is_personalised({"strategy": "cf", "recommendations": []})
    assert not ttfa.is_personalised(None)
