"""gunicorn's preloading master (service/preload.py, config/gunicorn.conf.py): the model loaded
once before the fork, served by every worker while current, reloaded per worker afterwards.

In process: :func:`preload_model` then the app's lifespan, as a forked worker runs it. Live:
``gunicorn -c config/gunicorn.conf.py`` with two workers on the test artifacts (the master's log,
a promotion picked up by the forked workers, SIGHUP, and a master that has no model to preload).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from recommender.registry import Registry
from service.api import create_app
from service.preload import preload_model, take_preloaded
from tests.fixtures.live_server import live_server, models_by_pid
from tests.service.conftest import SwitchableLoader, settings_with


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite collects as usual


class Loader(SwitchableLoader):
    """Synthetic bundles at the marker of an empty registry (None): the current model there."""

    def __call__(self, settings):
        return dataclasses.replace(super().__call__(settings), marker=None)


def _app(loader: SwitchableLoader, tmp_path: Path):
    return create_app(settings_with(paths={"registry_dir": str(tmp_path)}), loader=loader)


def test_the_worker_serves_the_preloaded_bundle_then_reloads_on_its_own(tmp_path):
    loader = Loader("m1")
    app = _app(loader, tmp_path)
    bundle = preload_model(app)
    assert bundle is not None and app.state.preloaded is bundle and loader.calls == 1
    assert gc.get_freeze_count() > 0  # the forked workers' collections skip the loaded objects
    with TestClient(app) as client:  # the worker's lifespan
        holder = client.app.state.holder
        assert holder.require().bundle is bundle and loader.calls == 1  # not loaded again
        assert app.state.preloaded is None  # taken once: later reloads load from the registry
        answer = client.post("/recommend", json={"user_id": "t0", "topk": 3})
        assert answer.status_code == 200 and answer.json()["model_id"] == "m1"
        loader.model_id = "m2"
        assert holder.reload(warm=False).ok and loader.calls == 2
        assert client.post("/recommend", json={"user_id": "t0"}).json()["model_id"] == "m2"


def test_the_master_compiles_the_request_kernels_for_its_workers(tmp_path, monkeypatch):
    import service.preload as preload

    compiled = []
    monkeypatch.setattr(preload, "compile_kernels", compiled.append)
    bundle = preload_model(_app(Loader("m1"), tmp_path))
    assert compiled == [bundle]  # once, with the bundle the workers will serve

    def broken(bundle):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(preload, "compile_kernels", broken)
    app = _app(Loader("m1"), tmp_path)
    assert preload_model(app) is app.state.preloaded is not None  # each worker compiles then


def test_a_failed_preload_leaves_each_worker_to_load_and_report(tmp_path):
    loader = Loader(None)  # no current model: the load raises
    app = _app(loader, tmp_path)
    assert preload_model(app) is None and take_preloaded(app) is None
    with TestClient(app) as client:
        assert loader.calls == 2  # the worker tried on its own
        health = client.get("/health")
        assert health.status_code == 503 and "no current model" in health.json()["reason"]
        loader.model_id = "m1"
        assert client.app.state.holder.reload(warm=False).ok
        assert client.get("/health").status_code == 200


def test_without_a_preload_the_lifespan_loads_as_before(tmp_path):
    loader = Loader("m1")
    with TestClient(_app(loader, tmp_path)) as client:  # uvicorn service.api:app
        assert loader.calls == 1 and client.get("/health").status_code == 200


def _master_lines(log: str, pid: int) -> list[dict]:
    """The master's JSON log lines."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("pid") == pid]


@pytest.mark.slow
def test_gunicorn_workers_share_the_masters_model_and_still_reload(
    embedded_dir, registry_dir, tmp_path
):
    registry_root = tmp_path / "cf"
    shutil.copytree(registry_dir, registry_root)
    registry = Registry(registry_root)
    current = registry.current().model_id
    other = next(r.model_id for r in registry.list() if r.model_id != current)
    env = {"RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0.5", "RECSYS_WARMUP__ENABLED": "false"}
    with live_server(
        embedded_dir, registry_root, log_dir=tmp_path, kind="gunicorn-conf", workers=2, env=env
    ) as server:
        master = server.process.pid
        first = models_by_pid(server.url, 2, 60)
        assert len(first) == 2 and set(first.values()) == {current} and master not in first
        preloaded = [
            line["message"]
            for line in _master_lines(server.log_text(), master)
            if "preloaded model" in line["message"]
        ]
        assert len(preloaded) == 1 and current in preloaded[0]
        # a promotion: the forked workers load it themselves (the registry poller)
        registry.promote(other, force=True)
        deadline = time.monotonic() + 30
        latest: dict[int, str] = {}
        while time.monotonic() < deadline and not (
            set(latest) >= set(first) and all(latest[p] == other for p in first)
        ):
            latest.update(models_by_pid(server.url, 2, 2))
        assert {pid: latest.get(pid) for pid in first} == {pid: other for pid in first}
        body = requests.post(f"{server.url}/recommend", json={"user_id": 1}, timeout=5).json()
        assert body["model_id"] == other
        # SIGHUP: the master preloads the current model again and replaces its workers
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        fresh: dict[int, str] = {}
        while time.monotonic() < deadline and len(set(fresh) - set(first)) < 2:
            fresh.update(models_by_pid(server.url, 4, 2))
        new = {pid: model for pid, model in fresh.items() if pid not in first}
        assert len(new) == 2 and set(new.values()) == {other}
        messages = [line["message"] for line in _master_lines(server.log_text(), master)]
        assert any("preloaded model" in m and other in m for m in messages)


@pytest.mark.slow
def test_a_gunicorn_master_without_a_model_starts_and_its_workers_recover(
    embedded_dir, registry_dir, tmp_path
):
    registry_root = tmp_path / "cf"  # empty: nothing to preload, the workers start without
    env = {"RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0.5", "RECSYS_WARMUP__ENABLED": "false"}
    with live_server(
        embedded_dir,
        registry_root,
        log_dir=tmp_path,
        kind="gunicorn-conf",
        workers=2,
        env=env,
        require_ready=False,
    ) as server:
        health = requests.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503 and "no current model" in health.json()["reason"]
        messages = [m["message"] for m in _master_lines(server.log_text(), server.process.pid)]
        assert any("no model preloaded" in m for m in messages)
        shutil.copytree(registry_dir, registry_root)  # a build finished
        ready = models_by_pid(server.url, 2, 30)
        assert len(ready) == 2
