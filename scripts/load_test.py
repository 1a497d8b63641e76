"""Load test for a running recommendation service (asyncio + aiohttp), with a realistic user mix.

Usage::

    .venv/bin/python scripts/load_test.py --host localhost --port 8000 --total 500 \
        --concurrency 20 [--mix mixed|cf|coldstart] [--warmup 100] [--output report.json]

``mixed`` (default) is what a shop sees: ~60% unknown/new visitors, ~30% known users without a CF
row (one or few interactions), ~10% trainable users; within each group users repeat with a Zipf
skew over activity rank (the most active come back most often). ~10% of requests carry filters,
~10% per-request rerank weights.
Reports p50/p90/p95/p99/max latency, throughput, error rate, the CF-vs-fallback split and the cache
hit rate before/after (from /cache_stats); prints the JSON report (and writes it to ``--output``).
Exit 0 when p99 < ``--max-p99-ms`` (200) and error rate < ``--max-error-rate`` (1%), 1 when a
target is missed, 2 when the service cannot be reached or there are no users for the mix.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from _client import (
    UserPool,
    base_url,
    cache_counters,
    discover_users,
    hit_rate,
    per_cache,
    percentile,
)

MIXES = {  # share of requests per segment
    "mixed": {"unknown": 0.6, "cold": 0.3, "trainable": 0.1},
    "coldstart": {"unknown": 0.6, "cold": 0.4},
    "cf": {"trainable": 1.0},
}
WEIGHT_CONFIGS = (
    {"cf": 1.0, "content": 0.3, "popularity": 0.2, "quality": 0.1},
    {"popularity": 1.0, "quality": 0.5},
    {"cf": 0.5, "item_similarity": 0.5, "content": 0.5},
)
ZIPF_S = 1.1


class Unreachable(Exception):
    """The service could not be queried before the test (dead port, not ready, no users)."""


def zipf_sampler(ids: list[str], rng: random.Random) -> Any:
    """A function drawing from ``ids`` with P(i) ∝ 1 / (i + 1)^ZIPF_S: ``ids[0]`` is the most
    frequent visitor (known users come most active first, see ``_client.activity``)."""
    cumulative = list(itertools.accumulate(1.0 / (r + 1) ** ZIPF_S for r in range(len(ids))))
    return lambda: rng.choices(ids, cum_weights=cumulative, k=1)[0]


def build_plan(
    pool: UserPool, mix: str, n: int, catalogue: dict[str, list[Any]], seed: int
) -> list[tuple[str, dict[str, Any]]]:
    """``n`` (segment, /recommend payload) pairs drawn from the mix; deterministic for a seed."""
    rng = random.Random(seed)
    groups = {
        "trainable": pool.trainable,
        "cold": pool.cold,
        "unknown": pool.unknown(max(n // 3, 1), "load-new"),
    }
    shares = {seg: share for seg, share in MIXES[mix].items() if groups[seg]}
    if not shares:
        raise Unreachable(f"no user ids for mix {mix!r}: pass --processed-dir with the served data")
    samplers = {seg: zipf_sampler(groups[seg], rng) for seg in shares}
    segments = rng.choices(list(shares), weights=list(shares.values()), k=n)
    plan = []
    for segment in segments:
        payload: dict[str, Any] = {"user_id": samplers[segment](), "topk": 10}
        roll = rng.random()
        if roll < 0.10:
            payload["filters"] = _random_filter(catalogue, rng)
        elif roll < 0.20:
            payload["rerank"] = True
            payload["rerank_weights"] = rng.choice(WEIGHT_CONFIGS)
        plan.append((segment, payload))
    return plan


def _random_filter(catalogue: dict[str, list[Any]], rng: random.Random) -> dict[str, Any]:
    options: list[dict[str, Any]] = [{"exclude_product_ids": catalogue["product_id"][:3]}]
    if catalogue["brand"]:
        options.append({"brand": [rng.choice(catalogue["brand"])]})
    if catalogue["category"]:
        options.append({"category": [rng.choice(catalogue["category"])]})
    if catalogue["price"]:
        prices = sorted(catalogue["price"])
        options.append({"price_max": prices[len(prices) // 2]})
    return rng.choice(options)


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        if response.status != 200:
            raise Unreachable(f"GET {url} -> {response.status}: {(await response.text())[:200]}")
        return await response.json(content_type=None)


async def probe_catalogue(session: aiohttp.ClientSession, base: str) -> dict[str, list[Any]]:
    """Brands, categories, prices and ids of popular products, to build valid filters."""
    async with session.post(f"{base}/recommend", json={"user_id": "load-probe", "topk": 100}) as r:
        if r.status != 200:
            raise Unreachable(f"POST /recommend -> {r.status}: {(await r.text())[:200]}")
        items = (await r.json(content_type=None)).get("recommendations") or []
    return {
        key: sorted({item[key] for item in items if isinstance(item.get(key), str | int | float)})
        for key in ("product_id", "brand", "category", "price")
    }


async def run_requests(
    session: aiohttp.ClientSession, url: str, plan: list[tuple[str, dict[str, Any]]], workers: int
) -> list[dict[str, Any]]:
    """Send every payload with ``workers`` concurrent connections; one record per request."""
    records: list[dict[str, Any]] = []
    queue = iter(plan)

    async def worker() -> None:
        for segment, payload in queue:
            start = time.perf_counter()
            record: dict[str, Any] = {"segment": segment}
            try:
                async with session.post(url, json=payload) as response:
                    body = await response.read()
                    record["status"] = str(response.status)
                    if response.status == 200:
                        data = json.loads(body)
                        record["strategy"] = data.get("strategy")
                        record["is_fallback"] = bool(data.get("is_fallback"))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                record["status"] = f"error:{type(exc).__name__}"
            record["ms"] = (time.perf_counter() - start) * 1000
            records.append(record)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return records


def summarise(records: list[dict[str, Any]], duration: float, args: argparse.Namespace) -> dict:
    """The JSON report: latency percentiles, throughput, errors, strategy split, thresholds."""
    ok = [r for r in records if r["status"] == "200"]
    latencies = [r["ms"] for r in records]
    errors = len(records) - len(ok)
    error_rate = round(errors / len(records), 4) if records else 1.0
    p99 = percentile(latencies, 99)
    failures = []
    if p99 >= args.max_p99_ms:
        failures.append(f"p99 {p99:.1f} ms >= {args.max_p99_ms} ms")
    if error_rate >= args.max_error_rate:
        failures.append(f"error rate {error_rate:.2%} >= {args.max_error_rate:.2%}")
    cf = sum(1 for r in ok if r["strategy"] == "cf" and not r["is_fallback"])
    return {
        "total": len(records),
        "ok": len(ok),
        "errors": errors,
        "error_rate": error_rate,
        "status_counts": dict(Counter(r["status"] for r in records)),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 90, 95, 99)}
        | {
            "max": round(max(latencies, default=0.0), 2),
            "mean": round(sum(latencies) / max(len(latencies), 1), 2),
        },
        "duration_s": round(duration, 3),
        "throughput_rps": round(len(records) / duration, 1) if duration else 0.0,
        "requested_segments": dict(Counter(r["segment"] for r in records)),
        "strategies": dict(Counter(r["strategy"] for r in ok)),
        "cf_requests": cf,
        "fallback_requests": len(ok) - cf,
        "cf_share": round(cf / len(ok), 4) if ok else 0.0,
        "thresholds": {"p99_ms": args.max_p99_ms, "error_rate": args.max_error_rate},
        "failures": failures,
        "passed": not failures,
    }


def _cache(stats: Any) -> dict[str, Any]:
    counters = cache_counters(stats)
    return counters | {"hit_rate": hit_rate(counters["hits"], counters["misses"])}


async def load_test(args: argparse.Namespace) -> dict[str, Any]:
    base = base_url(args.host, args.port)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        try:
            payloads = [await get_json(session, f"{base}/{p}") for p in ("model_info", "health")]
            catalogue = await probe_catalogue(session, base)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"cannot reach {base}: {type(exc).__name__}: {exc}") from exc
        pool = discover_users(payloads, args.processed_dir, prefer_files=True)
        plan = build_plan(pool, args.mix, args.warmup + args.total, catalogue, args.seed)
        url = f"{base}/recommend"
        await run_requests(session, url, plan[: args.warmup], args.concurrency)
        before = await get_json(session, f"{base}/cache_stats")
        start = time.perf_counter()
        records = await run_requests(session, url, plan[args.warmup :], args.concurrency)
        duration = time.perf_counter() - start
        after = await get_json(session, f"{base}/cache_stats")
    report = summarise(records, duration, args)
    cache_before, cache_after = _cache(before), _cache(after)
    during = {k: cache_after[k] - cache_before[k] for k in ("hits", "misses", "evictions")}
    by_cache = {}
    for name, now in per_cache(after).items():
        then = per_cache(before).get(name, {"hits": 0, "misses": 0})
        hits, misses = now["hits"] - then["hits"], now["misses"] - then["misses"]
        by_cache[name] = {"hits": hits, "misses": misses, "hit_rate": hit_rate(hits, misses)}
    report["cache"] = {
        "before": cache_before,
        "after": cache_after,
        "during": during | {"hit_rate": hit_rate(during["hits"], during["misses"])},
        "during_by_cache": by_cache,
    }
    config = {k: getattr(args, k) for k in ("mix", "concurrency", "warmup", "seed")}
    return {"target": base, "users_from": pool.source, **config, **report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--total", type=int, default=500, help="measured requests")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    parser.add_argument("--processed-dir", default="data/processed")
    parser.add_argument("--max-p99-ms", type=float, default=200.0)
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.total < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--total and --concurrency must be >= 1, --warmup >= 0")
    try:
        report = asyncio.run(load_test(args))
    except Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    lat, cache = report["latency_ms"], report["cache"]
    print(
        f"{'PASS' if report['passed'] else 'FAIL'}: {report['total']} requests, "
        f"{report['throughput_rps']} req/s, p50 {lat['p50']} / p95 {lat['p95']} / p99 {lat['p99']} "
        f"ms, errors {report['error_rate']:.2%}, CF share {report['cf_share']:.0%}, cache hit "
        f"rate {cache['before']['hit_rate']} -> {cache['after']['hit_rate']} (measured window "
        f"{cache['during']['hit_rate']})" + "".join(f"; {f}" for f in report["failures"]),
        file=sys.stderr,
    )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
