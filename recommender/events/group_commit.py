"""Group commit: one writer thread turns concurrent appends into one SQLite transaction.

With ``synchronous=FULL`` every commit costs an fsync (about 1 ms on the CI disk, so at most
~1,000 commits/s). Concurrent callers queue their work here; the writer drains the queue, runs
every piece inside one ``BEGIN IMMEDIATE ... COMMIT`` and only then wakes the callers, so each
caller is still acknowledged after its rows are durable, and N callers share one fsync.

A group is all-or-nothing: if the transaction fails every caller in it gets the error and none
of them was acknowledged (their retries, with the same event ids, are safe).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")
Work = Callable[[sqlite3.Connection], ResultT]
MAX_GROUP = 512  # pieces of work per transaction: bounds the time the write lock is held


class GroupCommitWriter(Generic[ResultT]):
    """A daemon thread owning the write connection; :meth:`submit` blocks until committed."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_error: Callable[[sqlite3.Error], Exception],
        name: str = "events-sqlite-writer",
    ) -> None:
        self._connect = connect
        self._on_error = on_error
        self._conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[tuple[Work, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Work, timeout: float) -> ResultT:
        """Run ``work(conn)`` inside the next transaction; its result once committed."""
        future: Future = Future()
        self._queue.put((work, future))
        return future.result(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish queued work, then stop the thread and close the connection."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            self._commit(group)
        if self._conn is not None:
            self._conn.close()

    def _commit(self, group: list[tuple[Work, Future]]) -> None:
        live = [(work, fut) for work, fut in group if fut.set_running_or_notify_cancel()]
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = [work(conn) for work, _ in live]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._drop_connection()
            error = self._on_error(exc)
            for _, fut in live:
                fut.set_exception(error)
            return
        except Exception as exc:  # a bug in a piece of work: fail the group, keep the thread
            logger.exception("event store writer: unexpected error")
            for _, fut in live:
                fut.set_exception(exc)
            return
        for (_, fut), result in zip(live, results, strict=True):
            fut.set_result(result)

    def _drop_connection(self) -> None:
        """Reopen on the next group: a read-only or replaced file may be fixed by then."""
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
