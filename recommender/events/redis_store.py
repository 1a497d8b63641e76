"""The multi-host event store: one Redis Stream, written by Lua scripts so a batch is atomic.

Keys (all under one hash tag, so the store also works on a Redis Cluster slot):

- ``<prefix>seq``: the sequence counter (INCR); stream ids are ``<seq>-0``.
- ``<prefix>log``: the stream; an entry is an event (``kind=event``) or a product's folded
  state (``kind=product``, fields ``f:<name>`` holding JSON values).
- ``<prefix>ids``: hash ``event_id -> seq``, the idempotency index (first write wins).
- ``<prefix>products``: hash ``<product_id>\\x00<field> -> JSON``, each product's current fields.
- ``<prefix>product_seq``: hash ``product_id -> seq`` of the latest record, used by compaction.

Durability is the server's: an ack means durable only with ``appendonly yes`` and
``appendfsync always`` (``everysec`` may lose the last second on a server crash). A lost
connection is retried with backoff by redis-py; if the server stays down the call raises
:class:`StoreUnavailableError` and the next call reconnects. Retries are safe: every event has
an ``event_id``, so a script that ran but whose reply was lost stores nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from recommender import vocabulary as V
from recommender.errors import StoreUnavailableError
from recommender.events.coalescer import Coalescer
from recommender.events.model import Event, EventRecord, ProductRecord, ProductUpdate, StoredRecord
from recommender.events.store import CompactionResult, EventStore, StoreHealth

BACKEND = "redis"
COMPACTION_CHUNK = 5_000  # entries examined per script call, so Redis is never blocked long
FIELD_PREFIX = "f:"

APPEND_EVENTS = """
local out = {}
for i = 2, #ARGV, 7 do
  local eid = ARGV[i]
  local seq = redis.call('HGET', KEYS[2], eid)
  if not seq then
    seq = redis.call('INCR', KEYS[1])
    local entry = {'kind', 'event', 'event_id', eid, 'user_id', ARGV[i + 1],
                   'product_id', ARGV[i + 2], 'type', ARGV[i + 3], 'ts', ARGV[i + 5],
                   'recv', ARGV[1]}
    if ARGV[i + 4] ~= '' then table.insert(entry, 'rating'); table.insert(entry, ARGV[i + 4]) end
    if ARGV[i + 6] ~= '' then table.insert(entry, 'rec'); table.insert(entry, ARGV[i + 6]) end
    redis.call('XADD', KEYS[3], seq .. '-0', unpack(entry))
    redis.call('HSET', KEYS[2], eid, seq)
  end
  out[#out + 1] = tonumber(seq)
end
return out
"""

APPEND_PRODUCTS = """
local known = cjson.decode(ARGV[2])
local out = {}
local i = 3
while i <= #ARGV do
  local pid, replace, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local base = pid .. '\\0'
  if replace == '1' then
    for _, name in ipairs(known) do redis.call('HDEL', KEYS[4], base .. name) end
    redis.call('HSET', KEYS[4], base .. '__replace', '1')
  end
  for j = 1, n do
    redis.call('HSET', KEYS[4], base .. ARGV[i + 1 + 2 * j], ARGV[i + 2 + 2 * j])
  end
  i = i + 3 + 2 * n
  local seq = redis.call('INCR', KEYS[1])
  local entry = {'kind', 'product', 'product_id', pid, 'recv', ARGV[1],
                 'replace', redis.call('HGET', KEYS[4], base .. '__replace') or '0'}
  for _, name in ipairs(known) do
    local value = redis.call('HGET', KEYS[4], base .. name)
    if value then table.insert(entry, 'f:' .. name); table.insert(entry, value) end
  end
  redis.call('XADD', KEYS[3], seq .. '-0', unpack(entry))
  redis.call('HSET', KEYS[5], pid, seq)
  out[#out + 1] = seq
end
return out
"""

COMPACT_CHUNK = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', tonumber(ARGV[3]))
local cutoff = tonumber(ARGV[1])
local events, products, last = 0, 0, ''
for _, entry in ipairs(entries) do
  local id, flat = entry[1], entry[2]
  local h = {}
  for k = 1, #flat, 2 do h[flat[k]] = flat[k + 1] end
  last = id
  if h['kind'] == 'event' then
    if tonumber(h['ts']) < cutoff then
      redis.call('XDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], h['event_id'])
      events = events + 1
    end
  else
    local latest = redis.call('HGET', KEYS[3], h['product_id'])
    if latest and (latest .. '-0') ~= id then
      redis.call('XDEL', KEYS[1], id)
      products = products + 1
    end
  end
end
return {events, products, last, #entries}
"""


def _record(entry_id: str, values: dict[str, str]) -> StoredRecord:
    seq = int(entry_id.split("-", 1)[0])
    received = float(values["recv"])
    if values["kind"] == "product":
        fields = {
            key[len(FIELD_PREFIX) :]: json.loads(value)
            for key, value in values.items()
            if key.startswith(FIELD_PREFIX)
        }
        return ProductRecord(seq, values["product_id"], fields, values["replace"] == "1", received)
    rating = values.get("rating")
    event = Event(
        event_id=values["event_id"],
        user_id=values["user_id"],
        product_id=values["product_id"],
        type=values["type"],  # type: ignore[arg-type]  # written from a validated EventType
        timestamp=float(values["ts"]),
        rating=int(rating) if rating is not None else None,
        recommendation_id=values.get("rec"),
    )
    return EventRecord(seq, event, received)


class RedisEventStore(EventStore):
    """:class:`EventStore` on a Redis Stream, for workers on several hosts."""

    backend = BACKEND

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "recsys:{events}:",
        socket_timeout_seconds: float = 1.0,
        retries: int = 3,
        health_check_interval_seconds: int = 10,
        ack_timeout_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self._ack_timeout = ack_timeout_seconds
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=health_check_interval_seconds,
        )
        self._keys = {
            name: f"{key_prefix}{name}" for name in ("seq", "ids", "log", "products", "product_seq")
        }
        self._append_events = self._client.register_script(APPEND_EVENTS)
        self._append_products = self._client.register_script(APPEND_PRODUCTS)
        self._compact_chunk = self._client.register_script(COMPACT_CHUNK)
        self._pid = os.getpid()
        self._writer = self._new_writer()

    def _new_writer(self) -> Coalescer[Sequence[Event], list[int]]:
        """Concurrent appends share one script call (atomic for all of them) and one fsync."""
        return Coalescer(self._append_group, name="events-redis-writer")

    def _unavailable(self, exc: BaseException, action: str) -> StoreUnavailableError:
        reason = str(exc) or type(exc).__name__
        return StoreUnavailableError(
            f"event store {self.url}: cannot {action} ({reason}). Check that Redis is up, "
            "reachable and not read-only or out of memory; retry with the same event ids.",
            backend=BACKEND,
            reason=reason,
        )

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise self._unavailable(exc, action) from None

    def append(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        if os.getpid() != self._pid:  # forked: the writer thread did not come along
            self._pid, self._writer = os.getpid(), self._new_writer()
        try:
            return self._writer.submit(events, self._ack_timeout)
        except TimeoutError as exc:
            raise self._unavailable(exc, "acknowledge in time") from None

    async def append_async(self, events: Sequence[Event]) -> list[int]:
        """:meth:`append` awaited on the event loop: no thread per request."""
        if not events:
            return []
        if os.getpid() != self._pid:
            self._pid, self._writer = os.getpid(), self._new_writer()
        future = self._writer.submit_async(events)
        try:
            async with asyncio.timeout(self._ack_timeout):
                return await future
        except TimeoutError as exc:
            raise self._unavailable(exc, "acknowledge in time") from None

    def _append_group(self, batches: list[Sequence[Event]]) -> list[list[int]]:
        args: list[Any] = [repr(time.time())]
        for events in batches:
            for e in events:
                rating = "" if e.rating is None else str(e.rating)
                args += [e.event_id, e.user_id, e.product_id, e.type, rating, repr(e.timestamp),
                         e.recommendation_id or ""]  # fmt: skip
        keys = [self._keys["seq"], self._keys["ids"], self._keys["log"]]
        seqs = [int(s) for s in self._call("write", self._append_events, keys=keys, args=args)]
        out, start = [], 0
        for events in batches:
            out.append(seqs[start : start + len(events)])
            start += len(events)
        return out

    def append_products(self, updates: Sequence[ProductUpdate]) -> list[int]:
        if not updates:
            return []
        args: list[Any] = [repr(time.time()), json.dumps(list(V.PRODUCT_UPDATE_FIELDS))]
        for update in updates:
            args += [update.product_id, "1" if update.replace else "0", len(update.fields)]
            for name, value in update.fields.items():
                args += [name, json.dumps(value)]
        keys = [self._keys[k] for k in ("seq", "ids", "log", "products", "product_seq")]
        seqs = self._call("write", self._append_products, keys=keys, args=args)
        return [int(s) for s in seqs]

    def read_since(self, seq: int, limit: int) -> list[StoredRecord]:
        entries = self._call(
            "read", self._client.xrange, self._keys["log"], min=f"{seq + 1}-0", count=limit
        )
        return [_record(entry_id, values) for entry_id, values in entries]

    def latest_seq(self) -> int:
        value = self._call("read", self._client.get, self._keys["seq"])
        return int(value) if value else 0

    def compact(self, before_timestamp: float) -> CompactionResult:
        keys = [self._keys["log"], self._keys["ids"], self._keys["product_seq"]]
        start, events, products = "-", 0, 0
        while True:
            deleted_events, deleted_products, last, seen = self._call(
                "compact",
                self._compact_chunk,
                keys=keys,
                args=[repr(before_timestamp), start, COMPACTION_CHUNK],
            )
            events += int(deleted_events)
            products += int(deleted_products)
            if int(seen) < COMPACTION_CHUNK:
                return CompactionResult(events, products)
            start = f"({last}"

    def health(self) -> StoreHealth:
        try:
            self._client.ping()
            return StoreHealth(True, BACKEND, self.latest_seq())
        except (redis.RedisError, StoreUnavailableError) as exc:
            return StoreHealth(False, BACKEND, None, str(exc))

    def close(self) -> None:
        self._writer.close()
        self._client.close()
