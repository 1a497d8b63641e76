"""The embedded event store: one SQLite file in WAL mode, shared by every worker on one host.

Why these settings:

- ``journal_mode=WAL``: readers (every worker's replay poller) never block the writer.
- ``synchronous=FULL`` (default): every commit fsyncs the WAL, so an ack survives power loss,
  not only a ``kill -9`` (``NORMAL`` survives ``kill -9`` and an application crash but may lose
  the last commits on an OS crash). Group commit (:mod:`recommender.events.coalescer`)
  amortises the fsync over concurrent appends.
- ``busy_timeout``: several worker processes take the write lock in turn instead of failing.
- ``seq INTEGER PRIMARY KEY AUTOINCREMENT``: one strictly increasing sequence that is never
  reused, even after compaction deletes the newest rows; ``UNIQUE(event_id)`` makes retries
  idempotent; CHECK constraints keep every stored row complete.

Create one store per process (in the service's lifespan); a forked child reopens on first use.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from recommender.errors import StoreUnavailableError
from recommender.events.coalescer import Coalescer
from recommender.events.model import (
    Event,
    EventRecord,
    ProductRecord,
    ProductUpdate,
    StoredRecord,
    fold_product,
)
from recommender.events.seq_hint import SeqHint
from recommender.events.store import CompactionResult, EventStore, StoreHealth

BACKEND = "sqlite"
SCHEMA_VERSION = 1
LOCK_POLL_SECONDS = 0.002  # longest sleep between attempts to take another process's write lock
COMPACTION_CHUNK = 10_000  # rows deleted per transaction, so appends interleave
KIND_EVENT = "event"
KIND_PRODUCT = "product"
T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('{KIND_EVENT}', '{KIND_PRODUCT}')),
    event_id TEXT UNIQUE,
    user_id TEXT,
    product_id TEXT NOT NULL,
    type TEXT,
    rating INTEGER,
    timestamp REAL,
    recommendation_id TEXT,
    fields TEXT,
    replace INTEGER,
    received_at REAL NOT NULL,
    CHECK (kind = '{KIND_PRODUCT}' OR (event_id IS NOT NULL AND user_id IS NOT NULL
           AND type IS NOT NULL AND timestamp IS NOT NULL)),
    CHECK (kind = '{KIND_EVENT}' OR (fields IS NOT NULL AND replace IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS log_product ON log (product_id, seq) WHERE kind = '{KIND_PRODUCT}';
CREATE INDEX IF NOT EXISTS log_event_time ON log (timestamp) WHERE kind = '{KIND_EVENT}';
PRAGMA user_version = {SCHEMA_VERSION};
"""
INSERT_EVENT = (
    "INSERT INTO log (kind, event_id, user_id, product_id, type, rating, timestamp, "
    "recommendation_id, received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)  # not ON CONFLICT DO NOTHING: that burns an AUTOINCREMENT number per retried id
FIND_EVENT = "SELECT seq FROM log WHERE event_id = ?"
LATEST_SEQ = "SELECT seq FROM sqlite_sequence WHERE name = 'log'"
COLUMNS = (
    "seq, kind, event_id, user_id, product_id, type, rating, timestamp, recommendation_id, "
    "fields, replace, received_at"
)


def _record(row: tuple[Any, ...]) -> StoredRecord:
    seq, kind, event_id, user_id, product_id, type_, rating, ts, rec_id, fields, rep, recv = row
    if kind == KIND_PRODUCT:
        return ProductRecord(seq, product_id, json.loads(fields), bool(rep), recv)
    event = Event(event_id, user_id, product_id, type_, ts, rating, rec_id)
    return EventRecord(seq, event, recv)


class SqliteEventStore(EventStore):
    """:class:`EventStore` on one SQLite file; safe for many processes on one host."""

    backend = BACKEND

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 5000,
        ack_timeout_seconds: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._ack_timeout = ack_timeout_seconds
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._conn: sqlite3.Connection | None = None  # the writer thread's own
        self._last_write_error = ""
        self._pid = os.getpid()
        self._hint = SeqHint(self.path.with_name(self.path.name + ".seq"))
        self._writer = self._new_writer()

    # --- connections -----------------------------------------------------------------------
    def _unavailable(self, exc: BaseException, action: str) -> StoreUnavailableError:
        reason = str(exc) or type(exc).__name__
        return StoreUnavailableError(
            f"event store {self.path}: cannot {action} ({reason}). Check that the file and its "
            "folder are writable, the disk has space and no other process holds a long lock; "
            "retry with the same event ids.",
            backend=BACKEND,
            reason=reason,
        )

    def _connect(self) -> sqlite3.Connection:
        """A connection with the store's pragmas; creates the file and schema when missing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """Take the write lock, polling every ~1 ms until ``busy_timeout`` runs out.

        SQLite's own busy handler backs off to 100 ms sleeps, so with several worker processes
        a waiting writer often sleeps long after the lock was freed (p99 ack > 30 ms with 4
        processes); short jittered polls hand the lock over within a millisecond.
        """
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(random.uniform(0.0002, LOCK_POLL_SECONDS))
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")

    def _new_writer(self) -> Coalescer[Work, Any]:
        return Coalescer(self._commit, name="events-sqlite-writer")

    def _commit(self, works: list[Work]) -> list[Any]:
        """Run every piece of work in one ``BEGIN IMMEDIATE ... COMMIT`` (the writer thread)."""
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            self._begin_immediate(conn)
            try:
                results = [work(conn) for work in works]
                row = conn.execute(LATEST_SEQ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # reopen on the next group: a read-only or replaced file may be fixed by then
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._last_write_error = str(exc)
            raise self._unavailable(exc, "write") from None
        self._hint.raise_to(int(row[0]) if row else 0)  # after the commit, before any ack
        return results

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if os.getpid() != self._pid:  # forked: threads and connections did not come along
            self._pid, self._reader, self._conn = os.getpid(), None, None
            self._writer = self._new_writer()
        try:
            result = self._writer.submit(work, self._ack_timeout)
        except TimeoutError as exc:
            raise self._unavailable(exc, "acknowledge in time") from None
        self._last_write_error = ""
        return result

    async def _write_async(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_write` awaited on the event loop: no thread per request."""
        if os.getpid() != self._pid:
            self._pid, self._reader, self._conn = os.getpid(), None, None
            self._writer = self._new_writer()
        future = self._writer.submit_async(work)
        try:
            async with asyncio.timeout(self._ack_timeout):
                result = await future
        except TimeoutError as exc:
            raise self._unavailable(exc, "acknowledge in time") from None
        self._last_write_error = ""
        return result

    def _read(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                if self._reader is None or os.getpid() != self._pid:
                    self._reader = self._connect()
                return self._reader.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                if self._reader is not None:
                    self._reader.close()
                self._reader = None
                raise self._unavailable(exc, "read") from None

    # --- EventStore -------------------------------------------------------------------------
    def append(self, events: Sequence[Event]) -> list[int]:
        return self._write(self._append_work(events)) if events else []

    async def append_async(self, events: Sequence[Event]) -> list[int]:
        return await self._write_async(self._append_work(events)) if events else []

    def _append_work(self, events: Sequence[Event]) -> Callable[[sqlite3.Connection], list[int]]:
        """The transaction body storing ``events``: an already stored ``event_id`` keeps its
        original sequence number (first write wins)."""
        rows = [
            (
                e.event_id,
                e.user_id,
                e.product_id,
                e.type,
                e.rating,
                e.timestamp,
                e.recommendation_id,
            )
            for e in events
        ]
        received = time.time()

        def work(conn: sqlite3.Connection) -> list[int]:
            seqs = []
            for row in rows:
                found = conn.execute(FIND_EVENT, (row[0],)).fetchone()
                if found is None:
                    cursor = conn.execute(INSERT_EVENT, (KIND_EVENT, *row, received))
                    found = (cursor.lastrowid,)
                seqs.append(int(found[0]))
            return seqs

        return work

    def append_products(self, updates: Sequence[ProductUpdate]) -> list[int]:
        received = time.time()

        def work(conn: sqlite3.Connection) -> list[int]:
            seqs = []
            for update in updates:
                row = conn.execute(
                    f"SELECT {COLUMNS} FROM log WHERE kind = ? AND product_id = ? "
                    "ORDER BY seq DESC LIMIT 1",
                    (KIND_PRODUCT, update.product_id),
                ).fetchone()
                previous = _record(row) if row else None
                assert previous is None or isinstance(previous, ProductRecord)
                fields, replace = fold_product(previous, update)
                cursor = conn.execute(
                    "INSERT INTO log (kind, product_id, fields, replace, received_at) "
                    "VALUES (?,?,?,?,?)",
                    (KIND_PRODUCT, update.product_id, json.dumps(fields), int(replace), received),
                )
                seqs.append(int(cursor.lastrowid or 0))
            return seqs

        return self._write(work) if updates else []

    def read_since(self, seq: int, limit: int) -> list[StoredRecord]:
        rows = self._read(
            f"SELECT {COLUMNS} FROM log WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [_record(row) for row in rows]

    def latest_seq(self) -> int:
        rows = self._read(LATEST_SEQ, ())
        return int(rows[0][0]) if rows else 0

    def latest_seq_hint(self) -> int:
        """From the shared ``<file>.seq`` counter (:mod:`.seq_hint`) without a query; the exact
        :meth:`latest_seq` when that file cannot be used."""
        hint = self._hint.read()
        return self.latest_seq() if hint is None else hint

    def compact(self, before_timestamp: float) -> CompactionResult:
        def delete_chunk(query: str, params: tuple[Any, ...]) -> int:
            def work(conn: sqlite3.Connection) -> int:
                return conn.execute(query, params).rowcount

            return self._write(work)

        old_events = (
            "DELETE FROM log WHERE seq IN (SELECT seq FROM log WHERE kind = ? AND timestamp < ? "
            "LIMIT ?)"
        )
        superseded = (
            "DELETE FROM log WHERE seq IN (SELECT seq FROM log AS p WHERE kind = ? AND seq < "
            "(SELECT MAX(seq) FROM log WHERE kind = p.kind AND product_id = p.product_id) LIMIT ?)"
        )
        totals = []
        for query, params in (
            (old_events, (KIND_EVENT, before_timestamp, COMPACTION_CHUNK)),
            (superseded, (KIND_PRODUCT, COMPACTION_CHUNK)),
        ):
            total = 0
            while (deleted := delete_chunk(query, params)) > 0:
                total += deleted
            totals.append(total)
        return CompactionResult(events_deleted=totals[0], product_records_deleted=totals[1])

    def health(self) -> StoreHealth:
        try:
            latest = self.latest_seq()
        except StoreUnavailableError as exc:
            return StoreHealth(False, BACKEND, None, exc.reason)
        if self._last_write_error:
            return StoreHealth(
                False, BACKEND, latest, f"last write failed: {self._last_write_error}"
            )
        return StoreHealth(True, BACKEND, latest)

    def close(self) -> None:
        self._writer.close()
        self._hint.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
