"""A model-vs-model experiment on the real fixtures (trained registry, processed demo shop):
the challenger's users get the challenger model, and promoting it promotes it in the registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.config.experiments import ExperimentSpec
from recommender.config.serving import ServingSettings
from recommender.experiments import assign
from recommender.registry import Registry
from service.api import create_app
from tests.service.conftest import ADMIN_ENV, TOKEN

ADMIN = {"X-Admin-Token": TOKEN}
USERS = [str(n) for n in range(1, 41)]


def test_model_variant_serves_and_promotes_its_model(
    embedded_dir: Path, registry_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    registry_root = tmp_path / "registry"
    shutil.copytree(registry_dir, registry_root)
    registry = Registry(registry_root)
    current = registry.current()
    assert current is not None
    challenger = next(r.model_id for r in registry.list() if r.model_id != current.model_id)
    experiment = {
        "name": "models",
        "variants": [
            {"name": "control", "control": True},
            {"name": "challenger", "model_id": challenger},
        ],
    }
    spec = ExperimentSpec.model_validate(experiment)
    settings = ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry_root)},
            "reload": {"poll_interval_seconds": 0, "freeze_gc": False},
            "warmup": {"enabled": False},
            "admin": {"token_env": ADMIN_ENV},
            "events": {"sqlite_path": str(tmp_path / "events.sqlite3")},
            "experiments": {"ledger_path": str(tmp_path / "ab.sqlite3"), "running": [experiment]},
        }
    )
    with TestClient(create_app(settings)) as client:
        stats = client.get("/stats").json()["variant_models"]
        assert [m["model_id"] for m in stats["loaded"]] == [challenger]
        assert stats["failures"] == {}
        assert stats["loaded"][0]["heap_bytes"] + stats["loaded"][0]["mapped_bytes"] > 0
        by_variant: dict[str, list[str]] = {"control": [], "challenger": []}
        for user in USERS:
            chosen = assign(spec, user)
            assert chosen is not None
            by_variant[chosen.name].append(user)
        for name, model in (("control", current.model_id), ("challenger", challenger)):
            answer = client.post("/recommend", json={"user_id": by_variant[name][0]}).json()
            assert (answer["variant"], answer["model_id"]) == (name, model)

        promoted = client.post("/experiments/models/promote/challenger?force=true", headers=ADMIN)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["model_id"] == challenger
        assert Registry(registry_root).current().model_id == challenger  # type: ignore[union-attr]
        assert client.get("/health").json()["model_id"] == challenger
        for user in by_variant["control"][:3] + by_variant["challenger"][:3]:
            answer = client.post("/recommend", json={"user_id": user}).json()
            assert (answer["variant"], answer["model_id"]) == ("challenger", challenger)
        # the winner is the default now: no second copy of it
        assert client.get("/stats").json()["variant_models"]["loaded"] == []
