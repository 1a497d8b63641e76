"""A/B variants that name a registered model: served by that model, beside the default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from recommender.config.experiments import ExperimentSpec, ExperimentsSettings
from recommender.config.serving import ServingSettings
from recommender.errors import ModelLoadError
from recommender.experiments import assign
from recommender.serving.bundle import hybrid_config
from tests.recommender.serving.conftest import make_bundle
from tests.service.conftest import ADMIN_ENV, TOKEN, SwitchableLoader, make_client

ADMIN = {"X-Admin-Token": TOKEN}
EXPERIMENT: dict[str, Any] = {
    "name": "models",
    "variants": [
        {"name": "control", "control": True},
        {"name": "challenger", "model_id": "m2"},
        {"name": "broken", "model_id": "gone"},
    ],
}
USERS = ["t0", "t1", "t2", "t3", "t4", "t5", "c0", "c1", "c2", "c3", "u1", "u2", "u3", "u4"]


class VariantLoader:
    """Loads ``make_bundle(model_id, seed)`` by id (another seed: other factors); ``gone`` fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, settings: ServingSettings, model_id: str) -> Any:
        self.calls.append(model_id)
        if model_id == "gone":
            raise ModelLoadError(f"model {model_id} is not in the registry")
        return make_bundle(model_id=model_id, seed=7, hybrid=hybrid_config(settings, {}))


def _variant(user: str) -> str:
    chosen = assign(ExperimentSpec.model_validate(EXPERIMENT), user)
    assert chosen is not None
    return chosen.name


@pytest.fixture()
def loaders() -> tuple[SwitchableLoader, VariantLoader]:
    return SwitchableLoader("m1"), VariantLoader()


@pytest.fixture()
def client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, loaders: tuple[SwitchableLoader, VariantLoader]
) -> Iterator[TestClient]:
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    with make_client(
        loader=loaders[0],
        variant_loader=loaders[1],
        experiments={"ledger_path": str(tmp_path / "ab.sqlite3"), "running": [EXPERIMENT]},
    ) as c:
        yield c


def test_users_of_a_model_variant_are_answered_by_that_model(client: TestClient) -> None:
    by_variant = {_variant(u): u for u in USERS}
    assert set(by_variant) == {"control", "challenger", "broken"}
    challenger = client.post("/recommend", json={"user_id": by_variant["challenger"]}).json()
    assert (challenger["model_id"], challenger["variant"]) == ("m2", "challenger")
    control = client.post("/recommend", json={"user_id": by_variant["control"]}).json()
    assert (control["model_id"], control["variant"]) == ("m1", "control")
    # the same user on the two models gets the two models' lists
    user = by_variant["challenger"]
    m2 = make_bundle(model_id="m2", seed=7)
    m1 = make_bundle(model_id="m1")
    assert m2.model.user_factors.tolist() != m1.model.user_factors.tolist()
    batch = client.post("/batch_recommend", json={"user_ids": USERS, "topk": 5}).json()
    for result in batch["results"]:
        single = client.post("/recommend", json={"user_id": result["user_id"], "topk": 5}).json()
        assert result["variant"] == single["variant"]
        assert [p["product_id"] for p in result["recommendations"]] == [
            p["product_id"] for p in single["recommendations"]
        ]
    assert user in {r["user_id"] for r in batch["results"]}


def test_a_variant_model_that_fails_to_load_falls_back_to_control_counted(
    client: TestClient,
) -> None:
    user = next(u for u in USERS if _variant(u) == "broken")
    answer = client.post("/recommend", json={"user_id": user}).json()
    assert (answer["model_id"], answer["variant"], answer["experiment"]) == (
        "m1",
        "control",
        "models",
    )
    stats = client.get("/stats").json()["variant_models"]
    assert stats["failures"] == {"gone": "model gone is not in the registry"}
    assert [m["model_id"] for m in stats["loaded"]] == ["m2"]
    assert stats["loaded"][0]["heap_bytes"] > 0 and stats["default"]["model_id"] == "m1"
    assert stats["load_failures"] == 1 and stats["max_loaded_models"] == 2
    metrics = client.get("/metrics").text
    assert (
        'recsys_experiment_fallbacks_total{experiment="models",reason="load_failed",'
        'variant="broken"} 1.0'
    ) in metrics
    assert 'recsys_variant_model_bytes{kind="heap",model_id="m2"}' in metrics
    assert "recsys_variant_models_loaded 1.0" in metrics
    # a fallback answer is no impression of either arm
    table = client.get("/experiments", headers=ADMIN).json()
    rows = {r["variant"]: r["impressions"] for r in table["experiments"][0]["variants"]}
    assert rows == {"control": 0, "challenger": 0, "broken": 0}
    assert [m["model_id"] for m in table["variant_models"]["loaded"]] == ["m2"]


def test_when_the_default_becomes_the_variant_model_it_is_not_loaded_twice(
    client: TestClient, loaders: tuple[SwitchableLoader, VariantLoader], monkeypatch
) -> None:
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    loaders[0].model_id = "m2"
    assert client.post("/reload_model", headers=ADMIN).json()["model_id"] == "m2"
    stats = client.get("/stats").json()["variant_models"]
    assert stats["loaded"] == [] and stats["default"]["model_id"] == "m2"
    user = next(u for u in USERS if _variant(u) == "challenger")
    answer = client.post("/recommend", json={"user_id": user}).json()
    assert (answer["model_id"], answer["variant"]) == ("m2", "challenger")
    loaders[0].model_id = "m1"
    client.post("/reload_model", headers=ADMIN)
    loaded = client.get("/stats").json()["variant_models"]["loaded"]
    assert [m["model_id"] for m in loaded] == ["m2"]


def test_stopping_the_experiment_unloads_its_models(client: TestClient) -> None:
    assert client.post("/experiments/models/stop", headers=ADMIN).status_code == 200
    client.post("/recommend", json={"user_id": "t0"})  # the next state read follows the stop
    deadline = 50
    while client.get("/stats").json()["variant_models"]["loaded"] and deadline:
        import time

        time.sleep(0.05)
        deadline -= 1
    assert client.get("/stats").json()["variant_models"]["loaded"] == []


def test_more_variant_models_than_the_limit_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="max_loaded_models is 1"):
        ExperimentsSettings.model_validate({"max_loaded_models": 1, "running": [EXPERIMENT]})
