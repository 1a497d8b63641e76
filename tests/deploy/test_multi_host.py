"""Two replicas, as deploy/docker-compose.yml and deploy/k8s/ run them, on this machine: two
servers on their own loopback ports, one real redis-server for the events, one shared registry
directory. An event sent to one replica changes the other's next answer; a model promoted with
the registry CLI is served by both within the poll interval, and a rollback brings both back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from recommender import vocabulary as V
from recommender.registry import Registry
from tests.fixtures.live_server import REPO, Server, live_server

pytestmark = pytest.mark.slow

INGEST = "multi-host-ingest-token"
POLL_SECONDS = 0.5  # reload.poll_interval_seconds of both replicas
SWITCH_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def shared_registry(registry_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the trained registry (this module promotes and rolls back in it)."""
    root = tmp_path_factory.mktemp("shared") / "registry" / "cf"
    shutil.copytree(registry_dir, root)
    return root


@pytest.fixture(scope="module")
def replicas(
    embedded_dir, shared_registry, redis_server, tmp_path_factory
) -> Iterator[list[Server]]:
    env = {
        "RECSYS_EVENTS__BACKEND": "redis",
        "RECSYS_EVENTS__REDIS_URL": redis_server.url,
        # quoted: the loader reads values as YAML, where an unquoted `a:{b}:` is a mapping
        "RECSYS_EVENTS__REDIS_KEY_PREFIX": f"'recsys:{{multi-host-{uuid.uuid4().hex[:8]}}}:'",
        "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        "RECSYS_INGEST_TOKEN": INGEST,
        "RECSYS_WARMUP__ENABLED": "false",
    }
    logs = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        servers = [
            stack.enter_context(live_server(embedded_dir, shared_registry, log_dir=logs, env=env))
            for _ in range(2)
        ]
        assert servers[0].port != servers[1].port
        yield servers


def _recommend(server: Server, user_id: str, topk: int = 10) -> dict:
    response = requests.post(
        f"{server.url}/recommend", json={"user_id": user_id, "topk": topk}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def _ids(answer: dict) -> list[str]:
    return [item["product_id"] for item in answer["recommendations"]]


def _post_events(server: Server, *events: dict) -> list[int]:
    response = requests.post(
        f"{server.url}/events", json=list(events), headers={"X-Ingest-Token": INGEST}, timeout=10
    )
    assert response.status_code == 202, response.text
    return [ack["seq"] for ack in response.json()["events"]]


def _model_ids(servers: list[Server]) -> list[str]:
    return [requests.get(f"{s.url}/health", timeout=5).json()["model_id"] for s in servers]


def _wait_for_model(servers: list[Server], model_id: str) -> list[float]:
    """Seconds until each replica's /health and /model_info name ``model_id``."""
    started = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < len(servers) and time.monotonic() - started < SWITCH_TIMEOUT:
        for index, server in enumerate(servers):
            if index not in seen and _model_ids([server]) == [model_id]:
                seen[index] = time.monotonic() - started
        time.sleep(0.1)
    assert sorted(seen) == list(range(len(servers))), f"not all on {model_id}: {seen}"
    for server in servers:
        info = requests.get(f"{server.url}/model_info", timeout=5).json()
        assert info["model_id"] == model_id
    return [round(seen[i], 2) for i in range(len(servers))]


def _registry_cli(root: Path, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "recommender", "registry", *args, "--registry", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_an_event_sent_to_one_replica_changes_the_others_answer(replicas):
    first, second = replicas
    popular = _ids(_recommend(second, "nobody-at-all", 12))
    visitor = f"multi-host-visitor-{uuid.uuid4().hex[:6]}"
    before = [_recommend(server, visitor) for server in replicas]
    assert {a["strategy"] for a in before} == {V.STRATEGY_POPULARITY}
    seqs = _post_events(
        first,
        {"user_id": visitor, "product_id": popular[5], "type": "view"},
        {"user_id": visitor, "product_id": popular[6], "type": "view"},
    )
    after = [_recommend(server, visitor) for server in (second, first)]
    assert {(a["segment"], a["strategy"], a["fallback_method"]) for a in after} == {
        (V.SEGMENT_COLD, V.STRATEGY_CONTENT, V.FALLBACK_COLD_HYBRID)
    }
    assert _ids(after[0]) == _ids(after[1])  # both replicas answer alike
    bought = _ids(after[0])[0]
    _post_events(second, {"user_id": visitor, "product_id": bought, "type": "purchase"})
    assert bought not in _ids(_recommend(first, visitor, 50))
    print(f"\nevents {seqs} acked by :{first.port}, answered by :{second.port} at once")


def test_a_promoted_model_is_served_by_both_replicas_then_rolled_back(replicas, shared_registry):
    registry = Registry(shared_registry)
    current = registry.current()
    assert current is not None
    assert _model_ids(replicas) == [current.model_id, current.model_id]
    other = next(r for r in registry.list() if r.model_id != current.model_id)
    visitor = f"multi-host-promote-{uuid.uuid4().hex[:6]}"
    popular = _ids(_recommend(replicas[0], "nobody-at-all", 3))
    _post_events(
        replicas[1],
        {"user_id": visitor, "product_id": popular[0], "type": "view"},
        {"user_id": visitor, "product_id": popular[1], "type": "view"},
    )
    output = _registry_cli(shared_registry, "promote", other.model_id, "--force")
    assert output.strip() == f"current model is now {other.model_id}"
    promoted = _wait_for_model(replicas, other.model_id)
    for server in replicas:  # the new model serves the live events of the shared store too
        answer = _recommend(server, visitor)
        assert (answer["segment"], answer["strategy"]) == (V.SEGMENT_COLD, V.STRATEGY_CONTENT)
    _registry_cli(shared_registry, "rollback")
    rolled_back = _wait_for_model(replicas, current.model_id)
    print(
        f"promote {other.model_id}: replicas switched after {promoted} s; rollback after "
        f"{rolled_back} s (poll {POLL_SECONDS} s)"
    )
