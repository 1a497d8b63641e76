"""The console without a browser: its files are self-contained package data under a strict CSP;
its read-only endpoints (/registry, /user_history) leak nothing /model_info hides; registry
changes need the admin token (the browser test is tests/service/test_console_browser.py)."""

from __future__ import annotations

import re
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from setuptools.config.pyprojecttoml import read_configuration

from recommender.config.serving import ServingSettings
from recommender.registry import Registry
from service.api import create_app
from service.routes.console import MEDIA_TYPES
from tests.service.conftest import ADMIN_ENV, TOKEN, make_client

REPO = Path(__file__).resolve().parents[2]
CONSOLE_DIR = REPO / "service" / "console"
PATHS = {
    "index.html": "/console",
    "console.js": "/console/console.js",
    "console.css": "/console/console.css",
}


def test_console_page_and_assets_are_served_with_a_strict_csp(client):
    for name, path in PATHS.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == MEDIA_TYPES[name]
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (CONSOLE_DIR / name).read_bytes()
    page = client.get("/console").text
    assert '<meta charset="utf-8">' in page and 'lang="vi"' in page
    assert "Bảng điều khiển gợi ý" in page  # Vietnamese text survives as UTF-8
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == [
        "data:,",  # no favicon request
        "/console/console.css",
        "/console/console.js",
    ]
    assert "<script>" not in page and " style=" not in page  # nothing inline: the CSP forbids it


def test_console_files_name_no_external_url():
    for name in PATHS:
        text = (CONSOLE_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]", text, re.IGNORECASE), name
        assert "@import" not in text and "@font-face" not in text, name  # no web fonts


def test_console_files_are_package_data_of_the_wheel():
    """setuptools' own reading of pyproject.toml puts every console file in the wheel."""
    config = read_configuration(REPO / "pyproject.toml")
    patterns = config["tool"]["setuptools"]["package-data"]["service"]
    for name in PATHS:
        assert any(fnmatch(f"console/{name}", pattern) for pattern in patterns), name
    assert sorted(p.name for p in CONSOLE_DIR.iterdir()) == sorted(PATHS)


def test_console_is_not_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/console") for path in paths)
    assert {"/registry", "/registry/promote", "/registry/rollback", "/user_history"} <= set(paths)
    for path in ("/registry/promote", "/registry/rollback"):
        assert paths[path]["post"]["security"] == [{"AdminToken": []}, {"AdminBearer": []}]
        documented = set(paths[path]["post"]["responses"])
        assert {"200", "400", "401", "403", "404", "409", "413", "422"} <= documented
    assert "security" not in paths["/registry"]["get"]


def test_user_history_lists_products_newest_first(client):
    body = client.get("/user_history", params={"user_id": "t1"}).json()
    assert (body["user_id"], body["segment"], body["known"], body["total"]) == (
        "t1",
        "trainable",
        True,
        4,
    )
    assert [item["product_id"] for item in body["items"]] == ["p6", "p5", "p4", "p3"]
    assert body["items"][0] == {
        "product_id": "p6",
        "name": "Sản phẩm 6",
        "brand": "A",
        "category": "serum",
        "price": 160_000.0,
        "avg_rating": 4.2,
        "num_ratings": 70,
        "num_sold": 106,
        "skin_types": ["oily"],
        "positive": True,
        "live": False,
    }
    limited = client.get("/user_history", params={"user_id": "t1", "limit": 2}).json()
    assert [i["product_id"] for i in limited["items"]] == ["p6", "p5"] and limited["total"] == 4
    cold = client.get("/user_history", params={"user_id": "c2"}).json()
    assert (cold["segment"], [i["product_id"] for i in cold["items"]]) == ("cold", ["p20"])
    unknown = client.get("/user_history", params={"user_id": "visitor-1"}).json()
    assert (unknown["segment"], unknown["known"], unknown["total"], unknown["items"]) == (
        "unknown",
        False,
        0,
        [],
    )


def test_user_history_lists_live_events_first(client, monkeypatch):
    monkeypatch.setenv("RECSYS_INGEST_TOKEN", "ingest-secret")
    events = [
        {"user_id": "visitor-9", "product_id": "p9", "type": "view"},
        {"user_id": "visitor-9", "product_id": "p11", "type": "rating", "rating": 1},
        {"user_id": "t1", "product_id": "p8", "type": "purchase"},
    ]
    posted = client.post("/events", json=events, headers={"X-Ingest-Token": "ingest-secret"})
    assert posted.status_code == 202
    visitor = client.get("/user_history", params={"user_id": "visitor-9"}).json()
    assert (visitor["segment"], visitor["known"], visitor["total"]) == ("cold", True, 2)
    assert [(i["product_id"], i["positive"], i["live"]) for i in visitor["items"]] == [
        ("p11", False, True),
        ("p9", True, True),
    ]
    t1 = client.get("/user_history", params={"user_id": "t1"}).json()
    assert [(i["product_id"], i["live"]) for i in t1["items"]] == [
        ("p8", True),
        ("p6", False),
        ("p5", False),
        ("p4", False),
        ("p3", False),
    ]


@pytest.mark.parametrize(
    "params", [{}, {"user_id": ""}, {"user_id": "   "}, {"user_id": "t1", "limit": 0}]
)
def test_user_history_rejects_bad_input_with_422(client, params):
    response = client.get("/user_history", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_user_history_needs_the_admin_token_where_sample_ids_are_not_public(admin_token):
    with make_client(admin={"public_sample_ids": False}) as client:
        missing = client.get("/user_history", params={"user_id": "t1"})
        wrong = client.get(
            "/user_history", params={"user_id": "t1"}, headers={"X-Admin-Token": "x"}
        )
        allowed = client.get("/user_history", params={"user_id": "t1"}, headers=admin_token)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "unauthorized")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "forbidden")
    assert "p3" not in missing.text + wrong.text
    assert allowed.status_code == 200 and allowed.json()["total"] == 4


@pytest.fixture()
def real_registry(embedded_dir: Path, registry_dir: Path, tmp_path: Path) -> Path:
    """A copy of the trained registry (ALS + BPR, the winner current) this test may change."""
    copy = tmp_path / "registry" / "cf"
    shutil.copytree(registry_dir, copy)
    return copy


def _real_app(embedded_dir: Path, registry: Path, **admin: object) -> TestClient:
    settings = ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry)},
            "reload": {"poll_interval_seconds": 0},
            "warmup": {"enabled": False},
            "admin": {"token_env": ADMIN_ENV, **admin},
        }
    )
    return TestClient(create_app(settings))


def test_registry_listing_shows_public_fields_only(embedded_dir, real_registry, monkeypatch):
    monkeypatch.delenv(ADMIN_ENV, raising=False)
    registry = Registry(real_registry)
    current = registry.current()
    with _real_app(embedded_dir, real_registry, public_sample_ids=False) as client:
        response = client.get("/registry")
        info = client.get("/model_info").json()
    body = response.json()
    assert response.status_code == 200
    assert (body["current"], body["serving_model_id"], body["history"]) == (
        current.model_id,
        current.model_id,
        [],
    )
    assert [m["model_id"] for m in body["models"]] == [r.model_id for r in registry.list()]
    for model in body["models"]:
        assert set(model) == {
            "model_id",
            "model_type",
            "status",
            "created_at",
            "data_version",
            "embedding_version",
            "gate_value",
            "metrics",
        }
    assert str(real_registry.parent) not in response.text  # no directory of the host
    assert "checksums" not in response.text and "sample_user_ids" not in response.text
    assert "sample_user_ids" not in info  # /model_info hides them here, and so does /registry
    served = next(m for m in body["models"] if m["model_id"] == current.model_id)
    assert served["metrics"] == info["metrics"] and served["status"] == "current"


def test_promote_with_a_body_that_is_not_json_is_a_documented_400(client, admin_token):
    response = client.post(
        "/registry/promote",
        content=b"\xd0d\x03\x14",  # not UTF-8: FastAPI answers 400, not 422
        headers={**admin_token, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request")


def test_registry_changes_without_the_token_are_refused(embedded_dir, real_registry, monkeypatch):
    before = (real_registry / "registry.json").read_bytes()
    other = next(r for r in Registry(real_registry).list() if r.status != "current")
    monkeypatch.delenv(ADMIN_ENV, raising=False)
    with _real_app(embedded_dir, real_registry) as client:
        disabled = client.post("/registry/promote", json={"model_id": other.model_id})
        monkeypatch.setenv(ADMIN_ENV, TOKEN)
        missing = client.post("/registry/promote", json={"model_id": other.model_id})
        wrong = client.post("/registry/rollback", headers={"Authorization": "Bearer not-the-token"})
        no_token_rollback = client.post("/registry/rollback")
    assert (disabled.status_code, disabled.json()["error"]["code"]) == (403, "admin_disabled")
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "unauthorized")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "forbidden")
    assert no_token_rollback.status_code == 401
    assert (real_registry / "registry.json").read_bytes() == before  # nothing changed


def test_promote_and_rollback_with_the_token_switch_the_serving_model(
    embedded_dir, real_registry, admin_token
):
    registry = Registry(real_registry)
    current = registry.current()
    other = next(r for r in registry.list() if r.model_id != current.model_id)
    with _real_app(embedded_dir, real_registry) as client:
        nothing = client.post("/registry/rollback", headers=admin_token)
        unknown = client.post(
            "/registry/promote", json={"model_id": "als-nope"}, headers=admin_token
        )
        promoted = client.post(
            "/registry/promote",
            json={"model_id": other.model_id, "force": True},
            headers=admin_token,
        )
        health_after_promote = client.get("/health").json()["model_id"]
        listing = client.get("/registry").json()
        rolled = client.post("/registry/rollback", headers=admin_token)
        health_after_rollback = client.get("/health").json()["model_id"]
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "registry_refused")
    assert nothing.json()["error"]["message"].startswith(
        "<registry_dir>/registry.json: no previous"
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_model")
    assert str(real_registry) not in unknown.text + nothing.text
    assert promoted.status_code == 200
    assert promoted.json() == {
        "status": "promoted",
        "previous_model_id": current.model_id,
        "model_id": other.model_id,
        "serving_model_id": other.model_id,
        "reload_error": None,
    }
    assert health_after_promote == other.model_id
    assert (listing["current"], listing["history"]) == (other.model_id, [current.model_id])
    assert rolled.json() == {
        "status": "rolled_back",
        "previous_model_id": other.model_id,
        "model_id": current.model_id,
        "serving_model_id": current.model_id,
        "reload_error": None,
    }
    assert health_after_rollback == current.model_id
    assert Registry(real_registry).current().model_id == current.model_id
