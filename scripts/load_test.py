"""Load test for a running recommendation service (asyncio + aiohttp), with a realistic user mix.

Usage::

    .venv/bin/python scripts/load_test.py --host localhost --port 8000 --total 500 \
        --concurrency 20 [--mix mixed|cf|coldstart] [--warmup 100] [--output report.json]

``mixed`` (default) is what a shop sees: ~60% unknown/new visitors, ~30% known users without a CF
row (one or few interactions), ~10% trainable users; within each group users repeat with a Zipf
skew over activity rank (the most active come back most often). ~10% of requests carry filters,
~10% per-request rerank weights.
Reports p50/p90/p95/p99/max latency, throughput, error rate, the CF-vs-fallback split and the cache
hit rate before/after (from /cache_stats); prints the JSON report on stdout (and writes it to
``--output``). On stderr: a progress bar with ETA per phase on a terminal (tqdm), one line per phase
with its elapsed time otherwise, then a one-screen summary with a latency histogram.
Exit 0 when p99 < ``--max-p99-ms`` (200) and error rate < ``--max-error-rate`` (1%), 1 when a
target is missed, 2 when the service cannot be reached or there are no users for the mix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from _client import (
    DEFAULT_PROCESSED_DIR,
    MIXES,
    Unreachable,
    admin_headers,
    admin_token_default,
    base_url,
    build_plan,
    cache_counters,
    discover_users,
    filter_values,
    hit_rate,
    per_cache,
    percentile,
)
from tqdm import tqdm

__all__ = ["MIXES", "Unreachable", "build_plan", "latency_histogram", "load_test", "main"]

# upper edges (ms) of the summary's latency histogram; the last bucket is everything above
HISTOGRAM_EDGES_MS = (1, 2.5, 5, 10, 25, 50, 100, 200, 500, 1000)
BAR_WIDTH = 40


async def get_json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> Any:
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            raise Unreachable(f"GET {url} -> {response.status}: {(await response.text())[:200]}")
        return await response.json(content_type=None)


async def probe_catalogue(session: aiohttp.ClientSession, base: str) -> dict[str, list[Any]]:
    """Brands, categories, prices and ids of popular products, to build valid filters."""
    async with session.post(f"{base}/recommend", json={"user_id": "load-probe", "topk": 100}) as r:
        if r.status != 200:
            raise Unreachable(f"POST /recommend -> {r.status}: {(await r.text())[:200]}")
        items = (await r.json(content_type=None)).get("recommendations") or []
    return filter_values(items)


async def run_phase(
    session: aiohttp.ClientSession,
    url: str,
    plan: list[tuple[str, dict[str, Any]]],
    workers: int,
    phase: str,
) -> tuple[list[dict[str, Any]], float]:
    """:func:`run_requests` under a progress bar (stderr, terminals only), then one line with
    the phase's elapsed time; returns the records and the seconds."""
    start = time.perf_counter()
    with tqdm(
        total=len(plan), desc=phase, unit="req", file=sys.stderr, disable=None, leave=False
    ) as bar:
        records = await run_requests(session, url, plan, workers, bar.update)
    seconds = time.perf_counter() - start
    print(f"[load] {phase}: {len(plan)} requests in {seconds:.1f} s", file=sys.stderr)
    return records, seconds


async def run_requests(
    session: aiohttp.ClientSession,
    url: str,
    plan: list[tuple[str, dict[str, Any]]],
    workers: int,
    done: Any = None,
) -> list[dict[str, Any]]:
    """Send every payload with ``workers`` concurrent connections; one record per request
    (``done(1)`` after each, for a progress bar)."""
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
            if done is not None:
                done(1)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return records


def latency_histogram(latencies_ms: list[float]) -> list[dict[str, Any]]:
    """Requests per latency bucket, in order: ``{"bucket": "<=1", "count": n}`` ... ``"<=1000"``
    (ms, upper edge included), then ``">1000"`` (a list: the JSON report sorts mapping keys)."""
    edges = np.asarray(HISTOGRAM_EDGES_MS, dtype=np.float64)
    counts = np.bincount(
        np.searchsorted(edges, np.asarray(latencies_ms, dtype=np.float64), side="left"),
        minlength=len(edges) + 1,
    )
    labels = [f"<={edge:g}" for edge in HISTOGRAM_EDGES_MS] + [f">{HISTOGRAM_EDGES_MS[-1]:g}"]
    return [{"bucket": b, "count": int(n)} for b, n in zip(labels, counts, strict=True)]


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The one-screen summary: histogram bars, percentiles, statuses and paths."""
    histogram = report["latency_histogram_ms"]
    total = max(report["total"], 1)
    widest = max((row["count"] for row in histogram), default=0) or 1
    lat = report["latency_ms"]
    lines = [
        f"latency (ms) of {report['total']} requests at {report['concurrency']} connections, "
        f"{report['throughput_rps']} req/s:"
    ]
    for row in histogram:
        count = row["count"]
        bar = "#" * round(BAR_WIDTH * count / widest)
        lines.append(f"  {row['bucket']:>7} {count:>7} {count / total:>6.1%} {bar}")
    lines.append(
        f"  p50 {lat['p50']}  p90 {lat['p90']}  p95 {lat['p95']}  p99 {lat['p99']}  "
        f"max {lat['max']}  mean {lat['mean']}"
    )
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report["status_counts"].items()))
    paths = ", ".join(f"{k}: {v}" for k, v in sorted(report["strategies"].items()))
    lines.append(f"status {statuses}; paths {paths}")
    return lines


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
        "latency_histogram_ms": latency_histogram(latencies),
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
            headers = admin_headers(args.admin_token)  # sample ids are admin-only in production
            payloads = [
                await get_json(session, f"{base}/{p}", headers) for p in ("model_info", "health")
            ]
            catalogue = await probe_catalogue(session, base)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"cannot reach {base}: {type(exc).__name__}: {exc}") from exc
        pool = discover_users(payloads, args.processed_dir, prefer_files=True)
        plan = build_plan(pool, args.mix, args.warmup + args.total, catalogue, args.seed)
        url = f"{base}/recommend"
        await run_phase(session, url, plan[: args.warmup], args.concurrency, "warm-up")
        before = await get_json(session, f"{base}/cache_stats")
        records, duration = await run_phase(
            session, url, plan[args.warmup :], args.concurrency, "measured"
        )
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
    parser.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    parser.add_argument(
        "--admin-token",
        default=admin_token_default(),
        help="sent to /model_info for its sample user ids (default: $RECSYS_ADMIN_TOKEN)",
    )
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
    print("\n".join(summary_lines(report)), file=sys.stderr)
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
