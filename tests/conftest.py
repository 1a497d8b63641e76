"""Shared fixtures. Each family lives in tests/fixtures/<name>.py and builds once per session:

- ``data``: ``raw_demo_dir`` (small seeded demo raw data), ``processed_dir`` (prepared from it)
- ``embeddings``: ``embedded_dir`` (``processed_dir`` + tfidf product embeddings)
- ``models``: ``registry_dir`` (a trained, evaluated, registered and promoted model on
  ``embedded_dir``)
- ``redis_server``: ``redis_server`` (a real redis-server on a free loopback port)
"""

from __future__ import annotations

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
