"""The multi-host experiment ledger: per-variant aggregates kept by Lua scripts in Redis.

Every host's workers write to one Redis, so the per-variant table, stop and promote are the
same everywhere. Where SQLite joins outcomes to impressions at read time, Redis keeps the
aggregates as they happen, atomically per script call (keys under one ``{hash tag}``):

- ``<prefix>imp:<rid>``: hash ``e`` (experiment), ``v`` (variant), ``p`` (JSON product ids).
- ``<prefix>seen:<rid>``: which outcomes this impression already had (``view``, ``cart``,
  ``purchase``) and its revenue ``rev`` so far (an impression counts once per outcome type).
- ``<prefix>pending:<rid>``: outcomes that came before their impression was flushed (another
  worker's buffer); applied when the impression arrives, as SQLite's join would.
- ``<prefix>event:<event_id>``: the idempotency mark of an outcome (first write wins).
- ``<prefix>agg``: hash ``<experiment>\\x00<variant>\\x00<field>`` -> impressions, clicks, carts,
  purchases, revenue, revenue_sq; ``<prefix>pos``: ``...\\x00<position>`` -> clicks.
- ``<prefix>state``: hash experiment -> JSON ``{status, winner, changed_at}``.

Retention is Redis's own: the per-impression keys expire after ``retention_days`` (the
aggregates stay), so :meth:`RedisLedger.compact` has nothing to do.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from recommender.experiments.ledger import (
    Attribution,
    ExperimentState,
    ImpressionRow,
    LedgerBase,
    OutcomeRow,
)
from recommender.experiments.stats import VariantCounts

SEP = "\x00"
FIELDS = ("impressions", "clicks", "carts", "purchases", "revenue", "revenue_sq")
_OUTCOME_FIELD = {"view": "clicks", "cart": "carts", "purchase": "purchases"}
# keys are built from ARGV[1] (prefix) inside the scripts; they share the prefix's hash tag
APPLY = """
local function apply(prefix, ttl, rid, e, v, products, pid, kind, revenue)
  local position = nil
  for i, p in ipairs(cjson.decode(products)) do
    if p == pid then position = i; break end
  end
  if not position then return end
  local base = e .. '\\0' .. v .. '\\0'
  local seen = prefix .. 'seen:' .. rid
  if kind == 'view' then redis.call('HINCRBY', prefix .. 'pos', base .. position, 1) end
  if redis.call('HSETNX', seen, kind, '1') == 1 then
    local field = ({view = 'clicks', cart = 'carts', purchase = 'purchases'})[kind]
    redis.call('HINCRBY', prefix .. 'agg', base .. field, 1)
  end
  local r = tonumber(revenue)
  if kind == 'purchase' and r > 0 then
    local before = tonumber(redis.call('HGET', seen, 'rev') or '0')
    redis.call('HINCRBYFLOAT', seen, 'rev', r)
    redis.call('HINCRBYFLOAT', prefix .. 'agg', base .. 'revenue', r)
    redis.call('HINCRBYFLOAT', prefix .. 'agg', base .. 'revenue_sq', 2 * before * r + r * r)
  end
  redis.call('EXPIRE', seen, ttl)
end
"""
RECORD_IMPRESSIONS = (
    APPLY
    + """
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
local written = 0
for i = 3, #ARGV, 4 do
  local rid, e, v, products = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = prefix .. 'imp:' .. rid
  if redis.call('HSETNX', key, 'e', e) == 1 then
    redis.call('HSET', key, 'v', v, 'p', products)
    redis.call('EXPIRE', key, ttl)
    redis.call('HINCRBY', prefix .. 'agg', e .. '\\0' .. v .. '\\0impressions', 1)
    written = written + 1
    local pending = prefix .. 'pending:' .. rid
    for _, item in ipairs(redis.call('LRANGE', pending, 0, -1)) do
      local o = cjson.decode(item)
      apply(prefix, ttl, rid, e, v, products, o[1], o[2], o[3])
    end
    redis.call('DEL', pending)
  end
end
return written
"""
)
RECORD_OUTCOMES = (
    APPLY
    + """
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
local written = 0
for i = 3, #ARGV, 5 do
  local eid, rid, pid, kind, revenue = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('SET', prefix .. 'event:' .. eid, '1', 'NX', 'EX', ttl) then
    written = written + 1
    local imp = redis.call('HMGET', prefix .. 'imp:' .. rid, 'e', 'v', 'p')
    if imp[1] then
      apply(prefix, ttl, rid, imp[1], imp[2], imp[3], pid, kind, revenue)
    else
      local pending = prefix .. 'pending:' .. rid
      redis.call('RPUSH', pending, cjson.encode({pid, kind, revenue}))
      redis.call('EXPIRE', pending, ttl)
    end
  end
end
return written
"""
)
NO_RETENTION_TTL = 10 * 365 * 86400  # "keep" without a retention: ten years


class RedisLedger(LedgerBase):
    """The Redis backend (several hosts); never connects eagerly, errors are ``RedisError``."""

    errors: tuple[type[Exception], ...] = (redis.RedisError,)

    def __init__(
        self,
        url: str,
        key_prefix: str = "recsys:{ab}:",
        socket_timeout_seconds: float = 1.0,
        flush_seconds: float = 0.5,
        retention_days: float | None = None,
        compact_interval_seconds: float = 3600.0,
    ) -> None:
        super().__init__(flush_seconds, retention_days, compact_interval_seconds)
        self.prefix = key_prefix
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            decode_responses=True,
        )
        self._impressions = self._client.register_script(RECORD_IMPRESSIONS)
        self._outcomes = self._client.register_script(RECORD_OUTCOMES)
        ttl = self.retention_seconds
        self._ttl = str(NO_RETENTION_TTL if ttl is None else max(1, int(ttl)))

    def _disconnect(self) -> None:
        self._client.close()

    def _write_impressions(self, rows: list[ImpressionRow]) -> None:
        args: list[Any] = [self.prefix, self._ttl]
        for rid, experiment, variant, products, _created in rows:
            args += [rid, experiment, variant, products]
        self._impressions(args=args)

    def _write_outcomes(self, rows: list[OutcomeRow]) -> None:
        self.flush()  # this worker's own lists first: their outcomes attribute at once
        args: list[Any] = [self.prefix, self._ttl]
        for event_id, rid, product_id, kind, revenue, _ts in rows:
            args += [event_id, rid, product_id, kind, repr(float(revenue))]
        self._outcomes(args=args)

    def compact(self, older_than: float) -> int:
        """Nothing to fold: per-impression keys expire by themselves, aggregates are kept."""
        return 0

    def set_state(self, experiment: str, status: str, winner: str | None = None) -> None:
        value = {"status": status, "winner": winner, "changed_at": time.time()}
        self._client.hset(self.prefix + "state", experiment, json.dumps(value))

    def states(self) -> dict[str, ExperimentState]:
        raw: dict[str, str] = self._client.hgetall(self.prefix + "state")  # type: ignore[assignment]
        out = {}
        for name, text in raw.items():
            value = json.loads(text)
            out[name] = ExperimentState(value["status"], value.get("winner"))
        return out

    def attribute(self, recommendation_id: str, product_id: str) -> Attribution | None:
        self.flush()
        got: list[str | None] = self._client.hmget(  # type: ignore[assignment]
            self.prefix + "imp:" + recommendation_id, ["e", "v", "p"]
        )
        experiment, variant, products = got
        if experiment is None or variant is None or products is None:
            return None
        listed = json.loads(products)
        position = listed.index(product_id) + 1 if product_id in listed else None
        return Attribution(experiment, variant, position)

    def counts(self) -> dict[str, dict[str, VariantCounts]]:
        self.flush()
        raw: dict[str, str] = self._client.hgetall(self.prefix + "agg")  # type: ignore[assignment]
        values: dict[tuple[str, str], dict[str, float]] = {}
        for key, value in raw.items():
            experiment, variant, field = key.split(SEP)
            values.setdefault((experiment, variant), {})[field] = float(value)
        out: dict[str, dict[str, VariantCounts]] = {}
        for (experiment, variant), got in values.items():
            out.setdefault(experiment, {})[variant] = VariantCounts(
                int(got.get("impressions", 0)),
                int(got.get("clicks", 0)),
                int(got.get("carts", 0)),
                int(got.get("purchases", 0)),
                got.get("revenue", 0.0),
                got.get("revenue_sq", 0.0),
            )
        return out

    def click_positions(self) -> dict[str, dict[str, dict[int, int]]]:
        raw: dict[str, str] = self._client.hgetall(self.prefix + "pos")  # type: ignore[assignment]
        out: dict[str, dict[str, dict[int, int]]] = {}
        for key, value in raw.items():
            experiment, variant, position = key.split(SEP)
            out.setdefault(experiment, {}).setdefault(variant, {})[int(position)] = int(value)
        return out
