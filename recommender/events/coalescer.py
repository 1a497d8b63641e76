"""Group commit: one writer thread turns concurrent appends into one backend write.

With SQLite ``synchronous=FULL`` every commit costs an fsync (about 1 ms on the CI disk, so at
most ~1,000 commits/s); with Redis every script call is a round trip and, with ``appendfsync
always``, an fsync. Concurrent callers queue their payloads here; the writer thread drains the
queue, hands them all to ``flush`` (one transaction / one script call) and only then wakes the
callers, so each caller is still acknowledged after its data is durable while N callers share
one fsync. It also keeps 16 client threads from fighting over the GIL and the socket.

A group is all-or-nothing: if ``flush`` raises, every caller in the group gets that error and
none of them was acknowledged (their retries, with the same event ids, are safe).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

PayloadT = TypeVar("PayloadT")
ResultT = TypeVar("ResultT")
MAX_GROUP = 512  # payloads per flush: bounds how long one write (and the SQLite lock) lasts
Waiter = Future | tuple[asyncio.AbstractEventLoop, asyncio.Future]


class Coalescer(Generic[PayloadT, ResultT]):
    """A daemon thread calling ``flush(payloads) -> results``; :meth:`submit` waits for its own."""

    def __init__(
        self, flush: Callable[[list[PayloadT]], list[ResultT]], name: str = "events-writer"
    ) -> None:
        self._flush = flush
        self._queue: queue.SimpleQueue[tuple[PayloadT, Waiter] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, payload: PayloadT, timeout: float) -> ResultT:
        """Queue ``payload`` for the next flush; its result once that flush returned.

        Raises ``TimeoutError`` after ``timeout`` seconds (the payload may still be written
        later, which is why callers retry with the same event ids).
        """
        return self.submit_nowait(payload).result(timeout=timeout)

    def submit_nowait(self, payload: PayloadT) -> Future[ResultT]:
        """Queue ``payload`` for the next flush; a future of its result.

        For an event loop: ``await asyncio.wrap_future(...)`` waits for the ack without a
        thread of its own per request (no ``to_thread`` hop on the ingest path).
        """
        future: Future[ResultT] = Future()
        self._queue.put((payload, future))
        return future

    def submit_async(self, payload: PayloadT) -> asyncio.Future[ResultT]:
        """Queue ``payload`` from a running event loop; an asyncio future of its result.

        Every asyncio caller of one flush is woken by a single ``call_soon_threadsafe`` per loop
        (one self-pipe write), not one per caller as ``asyncio.wrap_future`` does: with 16
        concurrent POSTs per group that was a syscall and a callback chain per request.
        Cancelling the future does not unqueue the payload (it may still be written).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._queue.put((payload, (loop, future)))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
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
            self._flush_group(group)

    def _flush_group(self, group: list[tuple[PayloadT, Waiter]]) -> None:
        live = [
            (payload, waiter)
            for payload, waiter in group
            if not isinstance(waiter, Future) or waiter.set_running_or_notify_cancel()
        ]
        try:
            results: list[Any] = self._flush([payload for payload, _ in live])
            error: BaseException | None = None
        except Exception as exc:  # every caller of the group sees the error; the thread lives on
            results, error = [None] * len(live), exc
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
        for (_, waiter), result in zip(live, results, strict=True):
            if isinstance(waiter, Future):
                if error is None:
                    waiter.set_result(result)
                else:
                    waiter.set_exception(error)
            else:
                by_loop.setdefault(waiter[0], []).append((waiter[1], result))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled, error)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass


def _settle(settled: list[tuple[asyncio.Future, Any]], error: BaseException | None) -> None:
    """On the callers' loop: resolve each still-waiting future of one flush."""
    for future, result in settled:
        if future.done():  # cancelled (timed out) meanwhile
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
