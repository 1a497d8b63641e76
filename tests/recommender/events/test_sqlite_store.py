"""The SQLite backend against the faults of a real host: many writer processes, kill -9 mid-write,
a lock held by another process, a read-only file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recommender.errors import StoreUnavailableError
from recommender.events import Event, EventRecord, SqliteEventStore
from scripts._server import REPO

WRITER = "tests.recommender.events.writer_process"
PROCESSES, BATCHES, BATCH_SIZE = 4, 40, 5


def writer(path: Path, prefix: str, batches: int, size: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", WRITER, str(path), prefix, str(batches), str(size)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def acks(output: str) -> dict[int, list[int]]:
    parsed = {}
    for line in output.splitlines():
        batch, seqs = line.split()
        parsed[int(batch)] = [int(s) for s in seqs.split(",")]
    return parsed


def test_concurrent_writer_processes_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    procs = [writer(path, f"w{n}", BATCHES, BATCH_SIZE) for n in range(PROCESSES)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * PROCESSES, [err for _, err in outputs]
    acked = [acks(out) for out, _ in outputs]
    store = SqliteEventStore(path)
    records = store.read_since(0, 10_000)
    store.close()
    total = PROCESSES * BATCHES * BATCH_SIZE
    assert [r.seq for r in records] == list(range(1, total + 1))
    by_seq = {r.seq: r.event.event_id for r in records if isinstance(r, EventRecord)}
    for n, ack in enumerate(acked):
        assert sorted(ack) == list(range(BATCHES))
        for batch, seqs in ack.items():
            assert seqs == sorted(seqs)  # a batch is stored in order
            assert [by_seq[s] for s in seqs] == [f"w{n}-{batch}-{i}" for i in range(BATCH_SIZE)]


def test_kill_9_mid_write_leaves_no_torn_event_and_keeps_every_ack(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    proc = writer(path, "k", 0, BATCH_SIZE)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(60)]  # 60 acknowledged batches, then kill
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    acked = acks("".join(lines) + rest)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    store = SqliteEventStore(path)
    records = store.read_since(0, 100_000)
    store.close()
    per_batch: dict[int, list[str]] = {}
    for record in records:
        assert isinstance(record, EventRecord)
        e = record.event
        assert e.user_id == "user-k" and e.type == "view" and e.timestamp >= 1_700_000_000.0
        per_batch.setdefault(int(e.event_id.split("-")[1]), []).append(e.event_id)
    assert all(len(ids) == BATCH_SIZE for ids in per_batch.values())  # all-or-nothing batches
    stored = {r.seq for r in records}
    assert len(acked) >= 60 and all(set(seqs) <= stored for seqs in acked.values())


def test_a_write_lock_held_by_another_process_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteEventStore(path, busy_timeout_ms=200)
    store.append([Event("a", "u", "p", "view", 1.0)])
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="locked") as caught:
            store.append([Event("b", "u", "p", "view", 1.0)])
        assert time.monotonic() - started < 5
        assert caught.value.backend == "sqlite"
        assert store.health().ok is False
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert store.append([Event("b", "u", "p", "view", 1.0)]) == [2]
    assert store.health().ok is True
    store.close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` read-only even for root (which ignores mode bits): chattr +i then."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is refused here: cannot make a file read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_file_is_store_unavailable_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path) as first:
        first.append([Event("a", "u", "p", "view", 1.0)])
    store = SqliteEventStore(path)
    with read_only(path):
        with pytest.raises(StoreUnavailableError) as caught:
            store.append([Event("b", "u", "p", "view", 1.0)])
        assert "readonly" in caught.value.reason.replace("-", "").replace(" ", "") or (
            "unable to open" in caught.value.reason
        )
        assert store.health().ok is False
    assert store.append([Event("b", "u", "p", "view", 1.0)]) == [2]
    store.close()


def test_an_unstorable_batch_is_rolled_back_whole(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.sqlite3")
    broken = Event("b", None, "p", "view", 1.0)  # type: ignore[arg-type]  # bypasses validation
    with pytest.raises(StoreUnavailableError):
        store.append([Event("a", "u", "p", "view", 1.0), broken])
    assert store.read_since(0, 10) == []
    assert store.append([Event("a", "u", "p", "view", 1.0)]) == [1]
    store.close()
