"""``make fuzz``: schemathesis over every public and admin operation of a real server.

A uvicorn on a free loopback port serves the session's trained test model with an admin token
set, and ``schemathesis run <server>/openapi.json --checks all`` must report no failure: no 5xx,
every status documented, every schema-valid request accepted and every schema-invalid one
rejected, responses matching their schemas. Deselected from ``make test`` (marker ``fuzz``);
``FUZZ_EXAMPLES`` (default 40) bounds the examples per operation and ``FUZZ_SEED`` fixes the
run, so CI's run is reproducible.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.live_server import REPO, live_server

pytestmark = pytest.mark.fuzz
TOKEN = "fuzz-admin-token"
INGEST_TOKEN = "fuzz-ingest-token"


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def test_schemathesis_finds_nothing(embedded_dir, registry_dir, tmp_path):
    examples = os.environ.get("FUZZ_EXAMPLES", "40")
    seed = os.environ.get("FUZZ_SEED", "1")
    env = {
        "RECSYS_ADMIN_TOKEN": TOKEN,
        "RECSYS_INGEST_TOKEN": INGEST_TOKEN,
        "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
        "RECSYS_WARMUP__ENABLED": "false",
    }
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, env=env) as server:
        run = subprocess.run(
            [
                _schemathesis(),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"X-Admin-Token: {TOKEN}",
                "--header",
                f"X-Ingest-Token: {INGEST_TOKEN}",
                "--max-examples",
                examples,
                "--seed",
                seed,
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--report-dir",
                str(tmp_path / "schemathesis"),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
            },
            timeout=900,
        )
        stats = requests.get(f"{server.url}/stats", timeout=10).json()
        metrics = requests.get(f"{server.url}/metrics", timeout=10).text
        log = server.log_text()
    summary = run.stdout[-6000:]
    print(summary)
    assert run.returncode == 0, summary + run.stderr[-3000:]
    # a clean run says "No issues found"; the one warning allowed is schemathesis noting that the
    # experiment operations answer 404 for the random names it invents (none is configured)
    if "No issues found" not in run.stdout:
        assert re.search(r"=+ 1 warning in [\d.]+s =+", run.stdout), summary
        missing = run.stdout.split("Missing test data:", 1)[1].split("💡", 1)[0]
        listed = re.findall(r"- (\w+ \S+)", missing)
        assert listed and all("/experiments/" in op for op in listed), summary
    assert stats["requests_total"] > 500  # the run really exercised the server
    assert "internal_error" not in stats["errors_by_code"]
    assert _statuses(metrics) and max(_statuses(metrics)) < 500
    assert "Traceback" not in log


def _statuses(metrics: str) -> set[int]:
    """Every status the server answered (its request counter's labels)."""
    return {
        int(sample.labels["status"])
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "recsys_http_requests_total"
    }
