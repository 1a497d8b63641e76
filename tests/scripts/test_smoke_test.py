"""scripts/smoke_test.py against a real uvicorn server started on the test artifacts."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.live_server import Server, free_port, live_server, run_script
from tests.test_docs import readme_recommend_payload

TOKEN = "smoke-secret"
CHECKS = (
    "health",
    "model info",
    "cache stats",
    "stats",
    "metrics",
    "recommend (trainable, CF path)",
    "recommend (cold-start, known user)",
    "recommend (unknown user)",
    "batch recommend",
    "reranking",
    "similar items",
    "latency",
    "admin auth",
)

pytestmark = pytest.mark.slow


def smoke(port: int, *extra: str) -> subprocess.CompletedProcess:
    return run_script("smoke_test.py", port, *extra)


def verdicts(stdout: str) -> dict[str, str]:
    """check name -> PASS/FAIL/SKIP from the one-line-per-check output."""
    out = {}
    for line in stdout.splitlines():
        head, _, _ = line.partition(":")
        verdict, _, name = head.partition(" ")
        if verdict in ("PASS", "FAIL", "SKIP"):
            out[name] = verdict
    return out


@pytest.fixture(scope="module")
def server(embedded_dir: Path, registry_dir: Path, tmp_path_factory) -> Iterator[Server]:
    with live_server(
        embedded_dir,
        registry_dir,
        log_dir=tmp_path_factory.mktemp("smoke"),
        env={"RECSYS_ADMIN_TOKEN": TOKEN},
    ) as srv:
        yield srv


def test_every_checklist_check_passes(server: Server, embedded_dir: Path) -> None:
    result = smoke(server.port, "--processed-dir", str(embedded_dir), "--admin-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == {name: "PASS" for name in CHECKS}, result.stdout
    assert "OK: 0 check(s) failed" in result.stdout


def test_the_demo_example_ids_pass_every_check(server: Server, embedded_dir: Path) -> None:
    # the README / checklist ids of every demo shop: "1" trainable (CF), "999999" cold hybrid
    result = smoke(
        server.port, "--processed-dir", str(embedded_dir),
        "--trainable-user", "1", "--cold-user", "999999",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS recommend (trainable, CF path): user=1 strategy=cf" in result.stdout
    assert "PASS recommend (cold-start, known user): user=999999 strategy=content" in result.stdout
    # the README's curl example, as written, is answered by CF with ranked scores
    body = requests.post(f"{server.url}/recommend", json=readme_recommend_payload(), timeout=10)
    answer = body.json()
    assert (body.status_code, answer["strategy"], answer["segment"]) == (200, "cf", "trainable")
    assert len({item["score"] for item in answer["recommendations"]}) > 1


def test_a_cold_example_answered_by_popularity_fails(server: Server, embedded_dir: Path) -> None:
    # demo user "3" rated everything below the positive threshold: served by popularity, so it is
    # no example of the cold hybrid, and the check says which strategy answered
    result = smoke(server.port, "--processed-dir", str(embedded_dir), "--cold-user", "3")
    assert result.returncode == 1, result.stdout
    assert verdicts(result.stdout)["recommend (cold-start, known user)"] == "FAIL"
    assert "cold user 3: strategy=popularity is_fallback=True" in result.stdout


def test_a_flat_list_of_equal_scores_is_not_a_ranking() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import smoke_test

    flat = [{"product_id": f"p{i}", "score": 0.0} for i in range(10)]
    with pytest.raises(smoke_test.CheckFailed, match="all 10 scores are 0.0"):
        smoke_test.distinct_scores("cold", "u032132", flat)
    smoke_test.distinct_scores("cold", "u1", [{"score": 0.5}, {"score": 0.4}])
    smoke_test.distinct_scores("cold", "u1", [{"score": 0.5}])  # one item cannot vary


def test_user_ids_come_from_the_service_without_data_files(server: Server, tmp_path: Path) -> None:
    result = smoke(server.port, "--processed-dir", str(tmp_path / "absent"))
    assert result.returncode == 0, result.stdout
    assert "users from service:sample_user_ids" in result.stdout
    found = verdicts(result.stdout)
    assert (
        found["recommend (trainable, CF path)"]
        == found["recommend (cold-start, known user)"]
        == "PASS"
    )
    assert found["admin auth"] == "SKIP"


def test_a_server_without_a_model_fails(embedded_dir: Path, tmp_path: Path) -> None:
    empty_registry = tmp_path / "registry"
    empty_registry.mkdir()
    with live_server(embedded_dir, empty_registry, log_dir=tmp_path, require_ready=False) as srv:
        result = smoke(srv.port, "--processed-dir", str(embedded_dir))
    assert result.returncode == 1, result.stdout
    found = verdicts(result.stdout)
    assert found["health"] == "FAIL" and "503" in result.stdout
    assert found["recommend (trainable, CF path)"] == "FAIL"


def test_a_dead_port_fails() -> None:
    result = smoke(free_port())
    assert result.returncode == 1
    assert verdicts(result.stdout)["health"] == "FAIL"
    assert "ConnectionError" in result.stdout


def test_admin_only_sample_ids_are_read_with_the_token(
    embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    """Production hides sample_user_ids from anonymous clients; the smoke test sends its token."""
    env = {"RECSYS_ENV": "production", "RECSYS_ADMIN_TOKEN": TOKEN}
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, env=env) as production:
        anonymous = smoke(production.port, "--processed-dir", str(tmp_path / "absent"))
        admin = smoke(
            production.port, "--processed-dir", str(tmp_path / "absent"), "--admin-token", TOKEN
        )
    assert "users from none: 0 trainable, 0 cold" in anonymous.stdout, anonymous.stdout
    assert "users from service:sample_user_ids" in admin.stdout, admin.stdout
    assert admin.returncode == 0, admin.stdout


CHECKLIST_SMOKE = Path(__file__).resolve().parents[3] / "shared" / "seed"
CHECKLIST_SMOKE = CHECKLIST_SMOKE / "smoke_test_from_checklist.py"


def checklist_payloads() -> dict[str, dict]:
    """name -> JSON payload of the release checklist's own smoke script (its ``tests`` list)."""
    if not CHECKLIST_SMOKE.is_file():
        pytest.skip(f"release checklist smoke script not found at {CHECKLIST_SMOKE}")
    tree = ast.parse(CHECKLIST_SMOKE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "tests":
            entries = ast.literal_eval(node.value)
            return {name: payload for name, _, _, payload in entries if payload}
    raise AssertionError("no `tests = [...]` list in the checklist smoke script")


def test_the_checklists_example_ids_take_the_routes_its_labels_say(server: Server) -> None:
    # users 1 and 999999 and the batch [1, 2, 3] exist in every demo shop (reserved ids)
    payloads = checklist_payloads()

    def post(path: str, name: str) -> dict:
        return requests.post(f"{server.url}{path}", json=payloads[name], timeout=10).json()

    trainable = post("/recommend", "Recommend (trainable)")
    assert (trainable["strategy"], trainable["segment"]) == ("cf", "trainable")
    cold = post("/recommend", "Recommend (cold-start)")
    assert (cold["strategy"], cold["fallback_method"], cold["segment"]) == (
        "content",
        "cold_hybrid",
        "cold",
    )
    batch = post("/batch_recommend", "Batch Recommend")
    assert [r["strategy"] for r in batch["results"]] == ["cf", "cf", "popularity"]
    assert batch["cf_users"] == 2
