"""The shared sequence counter that replaces a per-request query (read-your-writes check)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from recommender.events import Event, SqliteEventStore
from recommender.events.seq_hint import SeqHint

NOW = 1_800_000_000.0


def event(event_id: str) -> Event:
    return Event(event_id, "u1", "p1", "view", NOW)


def test_the_counter_is_shared_through_the_file_and_never_goes_down(tmp_path: Path):
    first, second = SeqHint(tmp_path / "x.seq"), SeqHint(tmp_path / "x.seq")
    assert first.read() == 0 and (tmp_path / "x.seq").stat().st_size == 8
    first.raise_to(7)
    second.raise_to(5)  # a slower writer finishing late never lowers it
    assert (first.read(), second.read()) == (7, 7)
    second.raise_to(9)
    assert first.read() == 9
    first.close()
    second.close()


def test_an_unusable_counter_file_reads_none(tmp_path: Path):
    hint = SeqHint(tmp_path / "missing-folder" / "x.seq")
    assert hint.read() is None
    hint.raise_to(3)  # never raises
    assert hint.read() is None


def test_a_write_by_one_worker_raises_the_hint_another_worker_reads(tmp_path: Path):
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path) as writer, SqliteEventStore(path) as reader:
        assert reader.latest_seq_hint() == 0
        assert writer.append([event("a"), event("b")]) == [1, 2]
        assert reader.latest_seq_hint() == 2 == reader.latest_seq()
        assert writer.append([event("a")]) == [1]  # a retry stores nothing new
        assert reader.latest_seq_hint() == 2
    assert (tmp_path / "events.sqlite3.seq").exists()


def test_the_hint_falls_back_to_the_query_when_the_file_cannot_be_used(tmp_path: Path):
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path) as store:
        store.append([event("a")])
        store._hint = SeqHint(tmp_path / "no" / "such" / "x.seq")  # noqa: SLF001
        assert store.latest_seq_hint() == 1


def test_append_async_acks_concurrent_callers_without_a_thread_each(tmp_path: Path):
    with SqliteEventStore(tmp_path / "events.sqlite3") as store:
        store.append([event("warm")])  # the writer thread exists from here on
        threads = threading.active_count()
        seen: list[int] = []

        async def main() -> list[list[int]]:
            async def one(i: int) -> list[int]:
                seqs = await store.append_async([event(f"e{i}")])
                seen.append(threading.active_count())
                return seqs

            return await asyncio.gather(*(one(i) for i in range(32)))

        acks = asyncio.run(main())
        assert sorted(seq for [seq] in acks) == list(range(2, 34))
        assert max(seen) == threads  # no to_thread worker per request
        assert store.latest_seq_hint() == 33


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_through_its_own_descriptor(tmp_path: Path):
    hint = SeqHint(tmp_path / "x.seq")
    hint.raise_to(1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        hint.raise_to(4)
        os._exit(0 if hint.read() == 4 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and hint.read() == 4
