"""``/batch_recommend`` off the event loop, under a per-worker bound on concurrent batches.

A 1,000-user batch is tens to hundreds of milliseconds of CPU and a multi-megabyte JSON body.
Run on the event loop (or several at once), it starves ``/recommend``, whose answers take a
fraction of a millisecond. So, per worker:

- :class:`BatchSlots` lets at most ``batch.max_concurrent`` batches compute at once; a batch that
  waits longer than ``batch.max_wait_seconds`` for a slot gets 429 ``batch_busy`` with
  ``Retry-After`` (:class:`~service.errors.BatchBusyError`);
- :func:`encode_batch` ranks ``batch.chunk_users`` users per worker-thread step and encodes each
  chunk's answers in that thread too (:mod:`service.encoding`: from item indices and encoded
  records), so the event loop only joins bytes and serves other requests between steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from recommender.config.serving import BatchSettings
from recommender.serving import Recommendation
from service.encoding import RecordJson, answer_json
from service.errors import BatchBusyError
from service.responses import ORJSON_OPTIONS


class BatchSlots:
    """A per-worker semaphore for batch work with a bounded wait (created inside the loop)."""

    def __init__(self, settings: BatchSettings) -> None:
        self.max_concurrent = settings.max_concurrent
        self.max_wait_seconds = settings.max_wait_seconds
        self.retry_after_seconds = settings.retry_after_seconds
        self._semaphore = asyncio.Semaphore(settings.max_concurrent)
        self.rejected = 0

    def _busy(self) -> BatchBusyError:
        self.rejected += 1
        return BatchBusyError(
            f"{self.max_concurrent} batch(es) already computing on this worker and no slot freed "
            f"within {self.max_wait_seconds} s (batch.max_concurrent, batch.max_wait_seconds); "
            f"retry after {self.retry_after_seconds} s or send smaller batches",
            self.retry_after_seconds,
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one batch slot; raise :class:`BatchBusyError` when none frees in time."""
        semaphore = self._semaphore
        if semaphore.locked():
            if self.max_wait_seconds <= 0:
                raise self._busy()
            try:
                await asyncio.wait_for(semaphore.acquire(), self.max_wait_seconds)
            except asyncio.TimeoutError:
                raise self._busy() from None
        else:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()


@dataclass(frozen=True)
class _Part:
    """One chunk of a batch answer: its encoded results (no brackets) and its strategies."""

    body: bytes
    strategies: list[str]
    cf_users: int


Tag = Callable[[int, Recommendation], Mapping[str, Any]]  # last keys of the i-th answer


def _next_part(
    chunks: Iterator[list[Recommendation]],
    originals: Sequence[str | int],
    start: int,
    table: RecordJson,
    tag: Tag | None = None,
) -> _Part | None:
    """Rank the next chunk and encode its answers (runs on a worker thread)."""
    chunk = next(chunks, None)
    if chunk is None:
        return None
    body = b",".join(
        [  # user_id echoed as sent (an int stays an int)
            answer_json(result, original, table, None if tag is None else tag(start + k, result))
            for k, (original, result) in enumerate(
                zip(originals[start : start + len(chunk)], chunk, strict=True)
            )
        ]
    )
    strategies = [r.strategy for r in chunk]
    return _Part(body, strategies, sum(not r.is_fallback for r in chunk))


@dataclass(frozen=True)
class EncodedBatch:
    """The finished ``/batch_recommend`` body and the strategy of every user (for metrics)."""

    body: bytes
    strategies: list[str]


async def encode_batch(
    chunks: Iterator[list[Recommendation]],
    originals: Sequence[str | int],
    model_id: str,
    topk: int,
    started: float,
    table: RecordJson,
    tag: Tag | None = None,
) -> EncodedBatch:
    """Rank and encode ``chunks`` one worker-thread step each; join the JSON on the loop."""
    parts: list[bytes] = []
    strategies: list[str] = []
    cf_users = 0
    while True:
        part = await run_in_threadpool(_next_part, chunks, originals, len(strategies), table, tag)
        if part is None:
            break
        parts.append(part.body)
        strategies.extend(part.strategies)
        cf_users += part.cf_users
    tail = {
        "count": len(strategies),
        "cf_users": cf_users,
        "fallback_users": len(strategies) - cf_users,
        "model_id": model_id,
        "topk": topk,
        "total_latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    body = b"".join(
        (b'{"results":[', b",".join(parts), b"],", orjson.dumps(tail, option=ORJSON_OPTIONS)[1:])
    )
    return EncodedBatch(body, strategies)
