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

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

PayloadT = TypeVar("PayloadT")
ResultT = TypeVar("ResultT")
MAX_GROUP = 512  # payloads per flush: bounds how long one write (and the SQLite lock) lasts


class Coalescer(Generic[PayloadT, ResultT]):
    """A daemon thread calling ``flush(payloads) -> results``; :meth:`submit` waits for its own."""

    def __init__(
        self, flush: Callable[[list[PayloadT]], list[ResultT]], name: str = "events-writer"
    ) -> None:
        self._flush = flush
        self._queue: queue.SimpleQueue[tuple[PayloadT, Future] | None] = queue.SimpleQueue()
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

    def _flush_group(self, group: list[tuple[PayloadT, Future]]) -> None:
        live = [(payload, fut) for payload, fut in group if fut.set_running_or_notify_cancel()]
        try:
            results = self._flush([payload for payload, _ in live])
        except Exception as exc:  # every caller of the group sees the error; the thread lives on
            for _, fut in live:
                fut.set_exception(exc)
            return
        for (_, fut), result in zip(live, results, strict=True):
            fut.set_result(result)
