"""Group commit: concurrent callers share one flush, each gets its own result or the error."""

from __future__ import annotations

import threading
import time

import pytest

from recommender.events.coalescer import Coalescer


def test_callers_waiting_together_share_one_flush_and_get_their_own_results() -> None:
    gate = threading.Event()
    groups: list[list[int]] = []

    def flush(payloads: list[int]) -> list[int]:
        groups.append(payloads)
        gate.wait(5)  # the first flush is slow: everyone else queues meanwhile
        return [p * 10 for p in payloads]

    coalescer: Coalescer[int, int] = Coalescer(flush)
    results: dict[int, int] = {}

    def call(n: int) -> None:
        results[n] = coalescer.submit(n, 10)

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    deadline = time.monotonic() + 5
    while not groups and time.monotonic() < deadline:
        time.sleep(0.001)
    threads += [threading.Thread(target=call, args=(n,)) for n in range(1, 8)]
    for thread in threads[1:]:
        thread.start()
    while coalescer._queue.qsize() < 7 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    for thread in threads:
        thread.join(10)
    coalescer.close()
    assert results == {n: n * 10 for n in range(8)}
    assert groups[0] == [0] and sorted(groups[1]) == list(range(1, 8)) and len(groups) == 2


def test_a_failed_flush_fails_every_caller_in_it_and_the_writer_lives_on() -> None:
    def flush(payloads: list[int]) -> list[int]:
        if any(p < 0 for p in payloads):
            raise RuntimeError("disk full")
        return payloads

    coalescer: Coalescer[int, int] = Coalescer(flush)
    with pytest.raises(RuntimeError, match="disk full"):
        coalescer.submit(-1, 5)
    assert coalescer.submit(3, 5) == 3
    coalescer.close()
