"""deploy/prometheus: promtool accepts the rules and the config, and the rules' unit tests pass,
with a firing and a quiet case for every alert; the checklist's rollback triggers are there with
the checklist's thresholds, and a wrong threshold fails the unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.live_server import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ROLLBACK_TRIGGERS = {  # RELEASE_CHECKLIST.md, "Rollback Trigger Conditions"
    "RecsysHighErrorRate": "5m",
    "RecsysHighP99Latency": "5m",
    "RecsysServiceUnavailable": "2m",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip(
            "promtool not found on PATH: install it (apt-get install -y prometheus, as .ci/run "
            "does) to check the alert rules"
        )
    return binary


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def _rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_rules(promtool):
    run = _run(promtool, "check", "rules", RULES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in run.stdout


def test_promtool_check_config_loads_the_rules(promtool):
    run = _run(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 1 rule files found" in run.stdout


def test_promtool_unit_tests_pass(promtool):
    run = _run(promtool, "test", "rules", *UNIT_TESTS)
    print(run.stdout)  # the closing note quotes it
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == len(UNIT_TESTS) == 2


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert len(alerts) == 11
    assert alerts == firing == quiet


def test_rollback_triggers_are_the_checklists():
    rules = {rule["alert"]: rule for rule in _rules()}
    marked = {name for name, rule in rules.items() if rule["labels"].get("rollback") == "true"}
    assert marked == set(ROLLBACK_TRIGGERS)
    for name, duration in ROLLBACK_TRIGGERS.items():
        assert rules[name]["for"] == duration
        assert rules[name]["labels"]["severity"] == "critical"
    assert re.search(r"\)\s*> 0\.05$", rules["RecsysHighErrorRate"]["expr"].strip())
    assert re.search(r"\)\s*> 0\.5$", rules["RecsysHighP99Latency"]["expr"].strip())


@pytest.mark.parametrize(
    ("original", "mutated"),
    [
        ("> 0.05\n", "> 0.15\n"),  # error rate threshold
        (") > 0.5\n", ") > 1.0\n"),  # p99 threshold
        ("for: 2m", "for: 5m"),  # the 2-minute durations (service unavailable)
        (") < 0.5\n", ") < 0.2\n"),  # cache hit rate threshold
    ],
)
def test_a_wrong_threshold_fails_the_unit_tests(promtool, tmp_path, original, mutated):
    text = RULES.read_text(encoding="utf-8")
    assert original in text
    (tmp_path / "alerts.yml").write_text(text.replace(original, mutated), encoding="utf-8")
    copies = tmp_path / "tests"
    copies.mkdir()
    for path in UNIT_TESTS:
        shutil.copy(path, copies / path.name)
    run = _run(promtool, "test", "rules", *sorted(copies.glob("*.yml")))
    assert run.returncode == 1
    assert "FAILED" in run.stdout + run.stderr
