"""Both ledger backends (SQLite, a real redis-server) count the same, and keep their counts
through retention."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recommender.config.experiments import ExperimentsSettings
from recommender.events.model import Event
from recommender.experiments import (
    Attribution,
    ExperimentLedger,
    LedgerBase,
    VariantCounts,
    open_ledger,
)
from recommender.experiments.redis_ledger import RedisLedger
from scripts._server import free_port
from tests.fixtures.redis_server import RedisServer

PRICES = {"p1": 100.0, "p2": 250.0}


def _event(eid: str, rid: str, product: str, kind: str) -> Event:
    return Event(eid, "u1", product, kind, time.time(), recommendation_id=rid)  # type: ignore[arg-type]


def _price(product: str) -> float:
    return PRICES.get(product, float("nan"))


def _settings(backend: str, tmp_path: Path, url: str = "", **extra: object) -> ExperimentsSettings:
    return ExperimentsSettings.model_validate(
        {
            "ledger_backend": backend,
            "ledger_path": str(tmp_path / "ab.sqlite3"),
            "redis_url": url,
            "redis_key_prefix": f"test:{{ab-{uuid.uuid4().hex[:8]}}}:",
            **extra,
        }
    )


@pytest.fixture(params=["sqlite", "redis"])
def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LedgerBase, LedgerBase]]:
    """Two workers' ledgers over one shared backend."""
    url = ""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    settings = _settings(request.param, tmp_path, url)
    one, two = open_ledger(settings), open_ledger(settings)
    yield one, two
    one.close()
    two.close()


def _traffic(serving: LedgerBase, clicks: LedgerBase) -> None:
    serving.record_impression("r1", "exp", "hybrid", ["p3", "p1", "p2"])
    serving.record_impression("r2", "exp", "control", ["p1", "p2"])
    # an outcome of r3 before serving flushed r3 (another worker's buffer): still attributed
    serving.record_impression("r3", "exp", "control", ["p2"])
    serving.flush()
    clicks.record_outcomes(
        [
            _event("e1", "r1", "p1", "view"),
            _event("e2", "r1", "p1", "view"),  # a second click on one list: one clicked list
            _event("e3", "r1", "p1", "purchase"),
            _event("e4", "r1", "p2", "purchase"),
            _event("e5", "r2", "p2", "cart"),
            _event("e6", "r2", "p9", "purchase"),  # not in the list: not attributed
        ],
        _price,
    )
    clicks.record_outcomes([_event("e3", "r1", "p1", "purchase")], _price)  # retry: idempotent
    serving.record_impression("r4", "exp", "hybrid", ["p2", "p1"])
    clicks.record_outcomes([_event("e7", "r4", "p1", "view")], _price)  # before r4 is flushed
    serving.flush()


EXPECTED = {
    "hybrid": VariantCounts(2, clicks=2, carts=0, purchases=1, revenue=350.0, revenue_sq=350.0**2),
    "control": VariantCounts(2, clicks=0, carts=1, purchases=0),
}


def test_backends_attribute_and_count_the_same(workers: tuple[LedgerBase, LedgerBase]) -> None:
    serving, clicks = workers
    _traffic(serving, clicks)
    assert clicks.attribute("r1", "p2") == Attribution("exp", "hybrid", 3)
    assert clicks.attribute("r1", "p9") == Attribution("exp", "hybrid", None)
    assert clicks.attribute("nope", "p1") is None
    assert serving.counts() == {"exp": EXPECTED}
    assert clicks.click_positions() == {"exp": {"hybrid": {2: 3}}}
    serving.set_state("exp", "promoted", "hybrid")
    assert clicks.states()["exp"].winner == "hybrid"


def test_sqlite_retention_folds_old_impressions_into_aggregates(tmp_path: Path) -> None:
    ledger = ExperimentLedger(tmp_path / "ab.sqlite3", retention_days=30)
    _traffic(ledger, ledger)
    before, positions = ledger.counts(), ledger.click_positions()
    assert ledger.compact(time.time() - 3600) == 0  # nothing an hour old yet
    assert ledger.apply_retention(now=time.time() + 31 * 86400) == 4
    assert ledger.counts() == before == {"exp": EXPECTED}
    assert ledger.click_positions() == positions
    db = ledger._db()
    assert db.execute("SELECT COUNT(*) FROM impressions").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (0,)
    # new traffic adds to the folded counts; a second compaction adds, never double counts
    ledger.record_impression("r9", "exp", "control", ["p1"])
    ledger.record_outcomes([_event("e9", "r9", "p1", "purchase")], _price)
    assert ledger.compact(time.time() + 1) == 1
    control = ledger.counts()["exp"]["control"]
    assert control == VariantCounts(3, 0, 1, 1, revenue=100.0, revenue_sq=100.0**2)
    ledger.close()


def test_redis_retention_expires_impressions_and_keeps_aggregates(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = _settings("redis", tmp_path, redis_server.url, retention_days=1 / 86400)
    ledger = open_ledger(settings)
    assert isinstance(ledger, RedisLedger)
    _traffic(ledger, ledger)
    client = redis.Redis.from_url(redis_server.url)
    assert client.exists(ledger.prefix + "imp:r1") == 1
    assert 0 < client.ttl(ledger.prefix + "imp:r1") <= 1
    deadline = time.monotonic() + 5
    while client.exists(ledger.prefix + "imp:r1") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.keys(ledger.prefix + "imp:*") == []
    assert client.keys(ledger.prefix + "seen:*") == []
    assert ledger.counts() == {"exp": EXPECTED}
    assert ledger.attribute("r1", "p1") is None  # compacted: no longer attributable
    ledger.close()


def test_redis_down_raises_the_backends_error(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    ledger = open_ledger(_settings("redis", tmp_path, url))
    ledger.record_impression("r1", "exp", "control", ["p1"])
    with pytest.raises(ledger.errors):
        ledger.flush()
    assert ledger._pending  # kept for the next flush
    with pytest.raises(ledger.errors):
        ledger.states()
