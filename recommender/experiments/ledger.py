"""The experiment ledger: impressions, attributed outcomes and experiment state, in one SQLite
file shared by every worker on the host.

Why a ledger next to the event store, not inside it: events (clicks, carts, purchases with a
``recommendation_id``) are already durable in the event store, which stays the source of truth;
what the store does not have is *impressions* (which list, which variant). Writing one record
per answer into the event log would grow it by the request rate and slow every worker's replay,
so impressions go to this ledger, buffered per worker and flushed every ``flush_seconds``
(a crash loses at most that much of the impression count, never an event). Outcomes are copied
in at ``POST /events`` and can be rebuilt from the event store (:meth:`rebuild_outcomes`);
attribution to variant and position is a join at read time, so it does not matter which worker
served the list and which took the click. Every worker reads the same totals.

:class:`LedgerBase` is the interface (buffering, the flush thread, retention); this module's
:class:`ExperimentLedger` is the SQLite backend (one host), :mod:`.redis_ledger` the multi-host
one; :func:`recommender.experiments.factory.open_ledger` picks the configured one. Retention:
impressions (and their outcomes) older than ``retention_days`` are folded into per-variant
aggregates (``compacted``, ``compacted_positions``) and deleted, so the table keeps every count
while the file stays bounded; an outcome that arrives after its impression was compacted is
no longer attributed (keep the retention longer than a click can follow a list).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recommender.events.model import Event, EventRecord
from recommender.events.store import EventStore, replay
from recommender.experiments.stats import VariantCounts

SCHEMA = """
CREATE TABLE IF NOT EXISTS impressions (
    recommendation_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    product_ids TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS impressions_variant ON impressions (experiment, variant);
CREATE TABLE IF NOT EXISTS outcomes (
    event_id TEXT PRIMARY KEY,
    recommendation_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    type TEXT NOT NULL,
    revenue REAL NOT NULL DEFAULT 0,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_rec ON outcomes (recommendation_id);
CREATE TABLE IF NOT EXISTS compacted (
    experiment TEXT NOT NULL, variant TEXT NOT NULL, impressions INTEGER NOT NULL,
    clicks INTEGER NOT NULL, carts INTEGER NOT NULL, purchases INTEGER NOT NULL,
    revenue REAL NOT NULL, revenue_sq REAL NOT NULL, PRIMARY KEY (experiment, variant)
);
CREATE TABLE IF NOT EXISTS compacted_positions (
    experiment TEXT NOT NULL, variant TEXT NOT NULL, position INTEGER NOT NULL,
    clicks INTEGER NOT NULL, PRIMARY KEY (experiment, variant, position)
);
CREATE INDEX IF NOT EXISTS impressions_created ON impressions (created_at);
CREATE TABLE IF NOT EXISTS experiment_state (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'promoted')),
    winner TEXT,
    changed_at REAL NOT NULL
);
"""
# an outcome counts when its product is in the impression's list; position is 1-based
# {imp}: the impressions counted (all, or those older than the retention cut-off)
ATTRIBUTED = """
SELECT i.experiment, i.variant, o.type, o.revenue, i.recommendation_id,
       (SELECT CAST(j.key AS INTEGER) + 1 FROM json_each(i.product_ids) AS j
        WHERE j.value = o.product_id) AS position
FROM outcomes AS o JOIN {imp} AS i USING (recommendation_id)
"""
SUMMARY = f"""
WITH att AS ({ATTRIBUTED}),
per AS (
    SELECT recommendation_id,
           MAX(type = 'view') AS clicked, MAX(type = 'cart') AS carted,
           MAX(type = 'purchase') AS bought,
           SUM(CASE WHEN type = 'purchase' THEN revenue ELSE 0 END) AS revenue
    FROM att WHERE position IS NOT NULL GROUP BY recommendation_id
)
SELECT i.experiment, i.variant, COUNT(*),
       COALESCE(SUM(per.clicked), 0), COALESCE(SUM(per.carted), 0),
       COALESCE(SUM(per.bought), 0), COALESCE(SUM(per.revenue), 0),
       COALESCE(SUM(per.revenue * per.revenue), 0)
FROM {{imp}} AS i LEFT JOIN per USING (recommendation_id)
GROUP BY i.experiment, i.variant
"""
POSITIONS = f"""
SELECT experiment, variant, position, COUNT(*) FROM ({ATTRIBUTED})
WHERE type = 'view' AND position IS NOT NULL GROUP BY experiment, variant, position
"""
OLD = "(SELECT * FROM impressions WHERE created_at < :cutoff)"
FOLD_SUMMARY = f"""
INSERT INTO compacted
SELECT * FROM ({SUMMARY.format(imp=OLD)}) WHERE true
ON CONFLICT (experiment, variant) DO UPDATE SET
    impressions = impressions + excluded.impressions, clicks = clicks + excluded.clicks,
    carts = carts + excluded.carts, purchases = purchases + excluded.purchases,
    revenue = revenue + excluded.revenue, revenue_sq = revenue_sq + excluded.revenue_sq
"""
FOLD_POSITIONS = f"""
INSERT INTO compacted_positions
SELECT * FROM ({POSITIONS.format(imp=OLD)}) WHERE true
ON CONFLICT (experiment, variant, position) DO UPDATE SET clicks = clicks + excluded.clicks
"""
OUTCOME_TYPES = ("view", "cart", "purchase")
MAX_PENDING = 100_000  # impressions kept per worker while the ledger cannot be written
ImpressionRow = tuple[str, str, str, str, float]
OutcomeRow = tuple[str, str, str, str, float, float]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribution:
    """Where an event with a ``recommendation_id`` came from (position: 1-based, None when the
    product was not in that list)."""

    experiment: str
    variant: str
    position: int | None


@dataclass(frozen=True)
class ExperimentState:
    status: str  # running | stopped | promoted
    winner: str | None = None


def outcome_rows(events: Iterable[Event], price_of: Callable[[str], float]) -> list[OutcomeRow]:
    """The events that carry a ``recommendation_id`` (view, cart, purchase) as ledger rows; a
    purchase's revenue is ``price_of(product)`` now (NaN or unknown: 0)."""
    rows: list[OutcomeRow] = []
    for e in events:
        if e.recommendation_id is None or e.type not in OUTCOME_TYPES:
            continue
        price = price_of(e.product_id) if e.type == "purchase" else 0.0
        revenue = price if price == price and price > 0 else 0.0  # NaN != NaN
        rows.append((e.event_id, e.recommendation_id, e.product_id, e.type, revenue, e.timestamp))
    return rows


class LedgerBase(ABC):
    """What every ledger backend does: impressions buffered per worker and flushed by a daemon
    thread every ``flush_seconds`` (a request never waits for a write), outcomes written at once,
    retention applied every ``compact_interval_seconds``. Thread-safe."""

    errors: tuple[type[Exception], ...] = (OSError,)  # what "the ledger is down" raises

    def __init__(
        self,
        flush_seconds: float = 0.5,
        retention_days: float | None = None,
        compact_interval_seconds: float = 3600.0,
    ) -> None:
        self.flush_seconds = flush_seconds
        self.retention_seconds = None if retention_days is None else retention_days * 86400.0
        self.compact_interval_seconds = compact_interval_seconds
        self._buffer_lock = threading.Lock()
        self._pending: list[ImpressionRow] = []
        self.dropped = 0  # impressions lost because the ledger stayed unwritable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._compacted_at = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Flush buffered impressions every ``flush_seconds`` on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ab-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                if time.monotonic() - self._compacted_at >= self.compact_interval_seconds:
                    self._compacted_at = time.monotonic()
                    self.apply_retention()
            except self.errors:
                pass  # kept in the buffer; the next flush retries

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except self.errors as exc:  # shutting down: say what is lost, never fail the shutdown
            with self._buffer_lock:
                lost, self._pending = len(self._pending), []
            self.dropped += lost
            log.warning(
                "experiment ledger unwritable at shutdown: %d impressions lost (%s)", lost, exc
            )
        finally:
            self._disconnect()

    # ------------------------------------------------------------------ writes
    def record_impression(
        self, recommendation_id: str, experiment: str, variant: str, product_ids: Sequence[str]
    ) -> None:
        """Buffer one shown list (written by the next flush)."""
        row = (recommendation_id, experiment, variant, json.dumps(list(product_ids)), time.time())
        with self._buffer_lock:
            self._pending.append(row)

    def flush(self) -> int:
        """Write buffered impressions in one transaction; how many were written."""
        with self._buffer_lock:
            rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            self._write_impressions(rows)
        except self.errors:
            with self._buffer_lock:
                kept = rows + self._pending
                self.dropped += max(0, len(kept) - MAX_PENDING)
                self._pending = kept[-MAX_PENDING:]
            raise
        return len(rows)

    def record_outcomes(self, events: Iterable[Event], price_of: Callable[[str], float]) -> int:
        """Copy events that carry a ``recommendation_id`` in. Idempotent by ``event_id``."""
        rows = outcome_rows(events, price_of)
        if rows:
            self._write_outcomes(rows)
        return len(rows)

    def rebuild_outcomes(self, store: EventStore, price_of: Callable[[str], float]) -> int:
        """Re-copy every attributed event from the event store (after a lost ledger write)."""
        events = (r.event for r in replay(store) if isinstance(r, EventRecord))
        return self.record_outcomes(events, price_of)

    def apply_retention(self, now: float | None = None) -> int:
        """Compact what is older than ``retention_days`` (no-op without one); impressions folded."""
        if self.retention_seconds is None:
            return 0
        cutoff = (time.time() if now is None else now) - self.retention_seconds
        folded = self.compact(cutoff)
        if folded:
            log.info("experiment ledger: %d impressions folded into the aggregates", folded)
        return folded

    # ------------------------------------------------------------------ backend
    @abstractmethod
    def _write_impressions(self, rows: list[ImpressionRow]) -> None: ...

    @abstractmethod
    def _write_outcomes(self, rows: list[OutcomeRow]) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def compact(self, older_than: float) -> int:
        """Fold impressions created before ``older_than`` (epoch seconds) into aggregates."""

    @abstractmethod
    def set_state(self, experiment: str, status: str, winner: str | None = None) -> None: ...

    @abstractmethod
    def states(self) -> dict[str, ExperimentState]: ...

    @abstractmethod
    def attribute(self, recommendation_id: str, product_id: str) -> Attribution | None:
        """The variant and position a click on ``product_id`` from that list counts for."""

    @abstractmethod
    def counts(self) -> dict[str, dict[str, VariantCounts]]:
        """experiment -> variant -> counts, over everything every worker has flushed."""

    @abstractmethod
    def click_positions(self) -> dict[str, dict[str, dict[int, int]]]:
        """experiment -> variant -> 1-based position -> attributed clicks."""


class ExperimentLedger(LedgerBase):
    """The SQLite backend: one connection behind ``_lock`` (WAL for the host's other workers)."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(
        self,
        path: str | Path,
        flush_seconds: float = 0.5,
        retention_days: float | None = None,
        compact_interval_seconds: float = 3600.0,
    ) -> None:
        super().__init__(flush_seconds, retention_days, compact_interval_seconds)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write_impressions(self, rows: list[ImpressionRow]) -> None:
        with self._lock, self._db() as db:
            db.executemany("INSERT OR IGNORE INTO impressions VALUES (?,?,?,?,?)", rows)

    def _write_outcomes(self, rows: list[OutcomeRow]) -> None:
        with self._lock, self._db() as db:
            db.executemany("INSERT OR IGNORE INTO outcomes VALUES (?,?,?,?,?,?)", rows)

    def compact(self, older_than: float) -> int:
        """One transaction: fold the old impressions' counts and click positions into the
        aggregate tables, delete them with their outcomes (and outcomes of no impression)."""
        self.flush()
        args = {"cutoff": older_than}
        with self._lock, self._db() as db:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM impressions WHERE created_at < :cutoff", args
            ).fetchone()
            if n:
                db.execute(FOLD_SUMMARY, args)
                db.execute(FOLD_POSITIONS, args)
                db.execute(
                    "DELETE FROM outcomes WHERE recommendation_id IN "
                    "(SELECT recommendation_id FROM impressions WHERE created_at < :cutoff)",
                    args,
                )
                db.execute("DELETE FROM impressions WHERE created_at < :cutoff", args)
            db.execute(
                "DELETE FROM outcomes WHERE timestamp < :cutoff AND recommendation_id NOT IN "
                "(SELECT recommendation_id FROM impressions)",
                args,
            )
        return int(n)

    def set_state(self, experiment: str, status: str, winner: str | None = None) -> None:
        with self._lock, self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO experiment_state VALUES (?,?,?,?)",
                (experiment, status, winner, time.time()),
            )

    # ------------------------------------------------------------------ reads
    def states(self) -> dict[str, ExperimentState]:
        with self._lock:
            rows = self._db().execute("SELECT name, status, winner FROM experiment_state")
            return {name: ExperimentState(status, winner) for name, status, winner in rows}

    def attribute(self, recommendation_id: str, product_id: str) -> Attribution | None:
        self.flush()
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT experiment, variant, product_ids FROM impressions "
                    "WHERE recommendation_id = ?",
                    (recommendation_id,),
                )
                .fetchone()
            )
        if row is None:
            return None
        products = json.loads(row[2])
        position = products.index(product_id) + 1 if product_id in products else None
        return Attribution(row[0], row[1], position)

    def counts(self) -> dict[str, dict[str, VariantCounts]]:
        self.flush()
        with self._lock:
            db = self._db()
            rows = db.execute(SUMMARY.format(imp="impressions")).fetchall()
            rows += db.execute("SELECT * FROM compacted").fetchall()
        out: dict[str, dict[str, VariantCounts]] = {}
        for exp, variant, n, clicks, carts, buys, rev, rev_sq in rows:
            got = out.setdefault(exp, {}).get(variant, VariantCounts(0))
            out[exp][variant] = VariantCounts(
                got.impressions + int(n),
                got.clicks + int(clicks),
                got.carts + int(carts),
                got.purchases + int(buys),
                got.revenue + float(rev),
                got.revenue_sq + float(rev_sq),
            )
        return out

    def click_positions(self) -> dict[str, dict[str, dict[int, int]]]:
        with self._lock:
            db = self._db()
            rows = db.execute(POSITIONS.format(imp="impressions")).fetchall()
            rows += db.execute("SELECT * FROM compacted_positions").fetchall()
        out: dict[str, dict[str, dict[int, int]]] = {}
        for exp, variant, position, n in rows:
            per = out.setdefault(exp, {}).setdefault(variant, {})
            per[int(position)] = per.get(int(position), 0) + int(n)
        return out
