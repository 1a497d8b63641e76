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
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
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
CREATE TABLE IF NOT EXISTS experiment_state (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'promoted')),
    winner TEXT,
    changed_at REAL NOT NULL
);
"""
# an outcome counts when its product is in the impression's list; position is 1-based
ATTRIBUTED = """
SELECT i.experiment, i.variant, o.type, o.revenue, i.recommendation_id,
       (SELECT CAST(j.key AS INTEGER) + 1 FROM json_each(i.product_ids) AS j
        WHERE j.value = o.product_id) AS position
FROM outcomes AS o JOIN impressions AS i USING (recommendation_id)
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
FROM impressions AS i LEFT JOIN per USING (recommendation_id)
GROUP BY i.experiment, i.variant
"""
POSITIONS = f"""
SELECT experiment, variant, position, COUNT(*) FROM ({ATTRIBUTED})
WHERE type = 'view' AND position IS NOT NULL GROUP BY experiment, variant, position
"""
OUTCOME_TYPES = ("view", "cart", "purchase")
MAX_PENDING = 100_000  # impressions kept per worker while the ledger cannot be written


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


class ExperimentLedger:
    """One per process; thread-safe: one connection behind ``_lock`` (WAL for other processes),
    the impression buffer behind its own ``_buffer_lock`` so a request never waits for a flush."""

    def __init__(self, path: str | Path, flush_seconds: float = 0.5) -> None:
        self.path = Path(path)
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._buffer_lock = threading.Lock()
        self._pending: list[tuple[str, str, str, str, float]] = []
        self.dropped = 0  # impressions lost because the ledger stayed unwritable
        self._conn: sqlite3.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ connection
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def start(self) -> None:
        """Flush buffered impressions every ``flush_seconds`` on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ab-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except sqlite3.Error:
                pass  # kept in the buffer; the next flush retries

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        finally:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

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
            with self._lock, self._db() as db:
                db.executemany("INSERT OR IGNORE INTO impressions VALUES (?,?,?,?,?)", rows)
        except sqlite3.Error:
            with self._buffer_lock:
                kept = rows + self._pending
                self.dropped += max(0, len(kept) - MAX_PENDING)
                self._pending = kept[-MAX_PENDING:]
            raise
        return len(rows)

    def record_outcomes(self, events: Iterable[Event], price_of: Callable[[str], float]) -> int:
        """Copy events that carry a ``recommendation_id`` (view, cart, purchase) in; a purchase's
        revenue is ``price_of(product)`` now (NaN or unknown: 0). Idempotent by ``event_id``."""
        rows = []
        for e in events:
            if e.recommendation_id is None or e.type not in OUTCOME_TYPES:
                continue
            price = price_of(e.product_id) if e.type == "purchase" else 0.0
            revenue = price if price == price and price > 0 else 0.0  # NaN != NaN
            rows.append(
                (e.event_id, e.recommendation_id, e.product_id, e.type, revenue, e.timestamp)
            )
        if rows:
            with self._lock, self._db() as db:
                db.executemany("INSERT OR IGNORE INTO outcomes VALUES (?,?,?,?,?,?)", rows)
        return len(rows)

    def rebuild_outcomes(self, store: EventStore, price_of: Callable[[str], float]) -> int:
        """Re-copy every attributed event from the event store (after a lost ledger write)."""
        events = (r.event for r in replay(store) if isinstance(r, EventRecord))
        return self.record_outcomes(events, price_of)

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
        """The variant and position a click on ``product_id`` from that list counts for."""
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
        """experiment -> variant -> counts, over everything every worker has flushed."""
        self.flush()
        with self._lock:
            rows = self._db().execute(SUMMARY).fetchall()
        out: dict[str, dict[str, VariantCounts]] = {}
        for exp, variant, n, clicks, carts, buys, rev, rev_sq in rows:
            out.setdefault(exp, {})[variant] = VariantCounts(
                int(n), int(clicks), int(carts), int(buys), float(rev), float(rev_sq)
            )
        return out

    def click_positions(self) -> dict[str, dict[str, dict[int, int]]]:
        """experiment -> variant -> 1-based position -> attributed clicks."""
        with self._lock:
            rows = self._db().execute(POSITIONS).fetchall()
        out: dict[str, dict[str, dict[int, int]]] = {}
        for exp, variant, position, n in rows:
            out.setdefault(exp, {}).setdefault(variant, {})[int(position)] = int(n)
        return out
