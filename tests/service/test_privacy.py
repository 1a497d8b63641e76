"""Public endpoints leak no host paths, no registry inode/mtime and (where configured) no customer
ids: reload errors name files relative to the configured roots; sample ids need the admin token
when ``admin.public_sample_ids`` is off, as in the production overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.config import load_serving_settings
from service.api import create_app
from tests.service.conftest import TOKEN, make_client, settings_with


def test_reload_errors_name_paths_relative_to_the_configured_roots(tmp_path: Path, admin_token):
    registry_dir, processed_dir = tmp_path / "srv" / "cf", tmp_path / "srv" / "processed"
    registry_dir.mkdir(parents=True)
    settings = settings_with(
        paths={"registry_dir": str(registry_dir), "processed_dir": str(processed_dir)}
    )
    with TestClient(create_app(settings)) as client:  # the real loader: no registry.json yet
        answers = {
            "health": client.get("/health"),
            "recommend": client.post("/recommend", json={"user_id": "t0"}),
            "stats": client.get("/stats"),
        }
        (registry_dir / "registry.json").write_text("{}", encoding="utf-8")
        answers["reload"] = client.post("/reload_model", headers=admin_token)
        answers["health after"] = client.get("/health")
    for name, response in answers.items():
        assert str(tmp_path) not in response.text, f"{name} leaks a host path: {response.text}"
    no_model = "no current model in the registry at <registry_dir>. Run `python -m recommender"
    assert answers["health"].status_code == 503
    assert answers["health"].json()["reason"].startswith(f"no model loaded: {no_model}")
    assert (
        answers["recommend"].json()["error"]["message"].startswith(f"no model loaded: {no_model}")
    )
    assert answers["stats"].json()["reloads"]["last_error"]["message"].startswith(no_model)
    no_data = "processed data directory <processed_dir> does not exist."
    assert answers["reload"].json()["error"]["message"].startswith(no_data)
    assert answers["health after"].json()["last_reload_error"]["message"].startswith(no_data)


def test_model_info_has_no_registry_marker(client):
    info = client.get("/model_info").json()
    assert "registry_marker" not in info
    assert "m1:" not in client.get("/model_info").text  # the marker: "<id>:<inode>:<mtime>:..."


def test_sample_ids_are_public_by_default(client):
    assert client.get("/model_info").json()["sample_user_ids"]["trainable"][:2] == ["t1", "t5"]


def test_sample_ids_need_the_admin_token_when_not_public(admin_token):
    with make_client(admin={"public_sample_ids": False}) as client:
        assert "sample_user_ids" not in client.get("/model_info").json()
        wrong = client.get("/model_info", headers={"X-Admin-Token": "nope"})
        assert wrong.status_code == 200 and "sample_user_ids" not in wrong.json()
        admin = client.get("/model_info", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert admin["sample_user_ids"]["trainable"][:2] == ["t1", "t5"]


@pytest.mark.parametrize(
    ("env", "public"), [(None, True), ("staging", True), ("production", False)]
)
def test_production_overlay_hides_sample_ids(env, public, monkeypatch):
    monkeypatch.delenv("RECSYS_CONFIG_DIR", raising=False)
    if env is None:
        monkeypatch.delenv("RECSYS_ENV", raising=False)
    else:
        monkeypatch.setenv("RECSYS_ENV", env)
    assert load_serving_settings().admin.public_sample_ids is public
