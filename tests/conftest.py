"""Shared fixtures. Each family lives in tests/fixtures/<name>.py and builds once per session:

- ``data``: ``raw_demo_dir`` (small seeded demo raw data), ``processed_dir`` (prepared from it)
- ``embeddings``: ``embedded_dir`` (``processed_dir`` + tfidf product embeddings)
- ``models``: ``registry_dir`` (a trained, evaluated, registered and promoted model on
  ``embedded_dir``)
- ``redis_server``: ``redis_server`` (a real redis-server on a free loopback port)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.embeddings",
    "tests.fixtures.models",
    "tests.fixtures.redis_server",
]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real shop data beside the checkout; tests using it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shop data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def no_stray_event_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In-process builds read the configured event store when its file exists (``--events
    auto``): point it at a session path that tests create only on purpose, so a developer's
    ``data/events.sqlite3`` never leaks into the suite."""
    path = tmp_path_factory.mktemp("events") / "events.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECSYS_EVENTS__SQLITE_PATH", str(path))
        yield
