"""Group commit: concurrent callers share one flush, each gets its own result or the error."""

from __future__ import annotations

import asyncio
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


def test_async_callers_of_one_flush_are_woken_by_one_loop_callback() -> None:
    gate = threading.Event()
    groups: list[list[int]] = []

    def flush(payloads: list[int]) -> list[int]:
        groups.append(payloads)
        gate.wait(5)
        if -1 in payloads:
            raise RuntimeError("disk full")
        return [p * 10 for p in payloads]

    coalescer: Coalescer[int, int] = Coalescer(flush)

    async def main() -> tuple[list[object], int]:
        loop = asyncio.get_running_loop()
        wakeups = 0
        original = loop.call_soon_threadsafe

        def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal wakeups
            wakeups += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        first = coalescer.submit_async(0)
        while not groups:  # the first flush holds the writer: the next 8 queue behind it
            await asyncio.sleep(0.001)
        rest = [coalescer.submit_async(n) for n in range(1, 8)]
        doomed = coalescer.submit_async(100)
        doomed.cancel()  # a caller that timed out: its payload is still written, nobody woken
        gate.set()
        results = await asyncio.gather(first, *rest)
        failing = coalescer.submit_async(-1)
        with pytest.raises(RuntimeError, match="disk full"):
            await failing
        return list(results), wakeups

    results, wakeups = asyncio.run(main())
    coalescer.close()
    assert results == [n * 10 for n in range(8)]
    assert groups == [[0], [1, 2, 3, 4, 5, 6, 7, 100], [-1]]
    assert wakeups == 3  # one per flush, not one per caller
