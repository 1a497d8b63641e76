"""Apps for service tests.

``make_client(**settings)`` builds ``create_app`` on the synthetic bundle of
``tests/recommender/serving/conftest.py`` (24 products, users t0..t5 trainable, c0..c3 cold), so
HTTP behaviour is tested in milliseconds; ``tests/service/test_api_real.py`` runs on the real
fixtures (trained registry, processed demo data).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from recommender.config.serving import ServingSettings
from recommender.errors import ModelLoadError
from recommender.serving.bundle import hybrid_config
from service.api import create_app
from tests.recommender.serving.conftest import make_bundle

ADMIN_ENV = "RECSYS_TEST_ADMIN_TOKEN"
TOKEN = "s3cret-token"


class SwitchableLoader:
    """A loader whose next model id (or failure) tests choose."""

    def __init__(self, model_id: str | None = "m1") -> None:
        self.model_id = model_id
        self.calls = 0

    def __call__(self, settings: ServingSettings):
        self.calls += 1
        if self.model_id is None:
            raise ModelLoadError("no current model in the registry at /nowhere; run build")
        return make_bundle(model_id=self.model_id, hybrid=hybrid_config(settings, {}))


def settings_with(**overrides: Any) -> ServingSettings:
    base: dict[str, Any] = {
        "warmup": {"enabled": False},
        # freezing the GC after each load (service.heap) would keep every earlier test's cycles
        "reload": {"poll_interval_seconds": 0, "freeze_gc": False},
        "admin": {"token_env": ADMIN_ENV},
        # each app its own event store file, never the repository's data/
        "events": {"sqlite_path": str(Path(tempfile.mkdtemp(prefix="recsys-events-")) / "e.db")},
        "experiments": {
            "ledger_path": str(Path(tempfile.mkdtemp(prefix="recsys-ab-")) / "ab.sqlite3")
        },
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}
    return ServingSettings.model_validate(base)


@contextmanager
def make_client(
    loader: Callable | None = None,
    raise_server_exceptions: bool = True,
    variant_loader: Callable | None = None,
    **overrides: Any,
) -> Iterator[TestClient]:
    app = create_app(
        settings_with(**overrides),
        loader=loader or SwitchableLoader(),
        variant_loader=variant_loader,
    )
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield client


@pytest.fixture()
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


@pytest.fixture()
def admin_token(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    return {"X-Admin-Token": TOKEN}


@pytest.fixture()
def route_matches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every route the router tried to match, in order."""
    tried: list[str] = []
    original = APIRoute.matches

    def counting(self: APIRoute, scope):  # type: ignore[no-untyped-def]
        tried.append(self.path)
        return original(self, scope)

    monkeypatch.setattr(APIRoute, "matches", counting)
    return tried
