"""Batch isolation benchmark: does /batch_recommend starve /recommend? Both p99s in one run.

Usage::

    python scripts/benchmark_batch_isolation.py [--processed data/processed]
        [--registry artifacts/cf] [--rate 100] [--requests 2000] [--streams 2]
        [--batch-users 1000] [--json report.json]

On one freshly started ``uvicorn service.api:app`` (one worker, warm-up off, user-profile and
results caches effectively off, so every request computes: cold caches):

1. ``/recommend`` alone, paced at ``--rate`` requests per second (open loop: each request is
   sent on schedule whether or not earlier ones answered), one distinct known user per request;
2. the same again with other distinct users while ``--streams`` clients each send
   ``--batch-users``-user ``/batch_recommend`` calls back to back (distinct users per batch).

Prints both client-side p99s, their ratio, every failed ``/recommend`` (non-200 or no answer
within ``--timeout``), the batch statuses (200 / 429 ``batch_busy``) and the load average
before and after: client and server share the machine, so other jobs move every number.
Target (issue 10): ratio <= 3 and 0 failed ``/recommend``; the exit status is 1 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import discover_users, percentile, report_targets  # noqa: E402
from benchmark_serving import REPO, ServerProcess  # noqa: E402

COLD_CACHES = {  # a 1 µs TTL: every entry expires before it can be hit
    "RECSYS_CACHE__USER_PROFILE__TTL_SECONDS": "0.000001",
    "RECSYS_CACHE__RESULTS__TTL_SECONDS": "0.000001",
    "RECSYS_WARMUP__ENABLED": "false",
    "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
}


def known_users(processed: Path, seed: int) -> list[str]:
    """Every known user id (trainable and cold), shuffled."""
    pool = discover_users([], processed, prefer_files=True)
    users = pool.trainable + pool.cold
    if not users:
        raise SystemExit(f"no user ids found under {processed}")
    random.Random(seed).shuffle(users)
    return users


def summarise(latencies_ms: list[float], failures: int, wall_s: float) -> dict[str, Any]:
    """Count, failures, achieved rate and client-side percentiles of one paced phase."""
    return {
        "requests": len(latencies_ms) + failures,
        "failed": failures,
        "achieved_rps": round((len(latencies_ms) + failures) / wall_s, 1) if wall_s else 0.0,
        "p50_ms": round(percentile(latencies_ms, 50), 3),
        "p95_ms": round(percentile(latencies_ms, 95), 3),
        "p99_ms": round(percentile(latencies_ms, 99), 3),
        "max_ms": round(max(latencies_ms, default=0.0), 3),
    }


async def paced(
    session: aiohttp.ClientSession, url: str, users: list[str], rate: float, timeout: float
) -> dict[str, Any]:
    """POST one /recommend per user at ``rate`` per second (open loop); latency per answer."""
    latencies: list[float] = []
    failures: list[str] = []
    limit = aiohttp.ClientTimeout(total=timeout)

    async def one(user: str) -> None:
        started = time.perf_counter()
        try:
            async with session.post(url, json={"user_id": user}, timeout=limit) as response:
                await response.read()
                if response.status != 200:
                    failures.append(f"{user}: HTTP {response.status}")
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failures.append(f"{user}: {type(exc).__name__}")
            return
        latencies.append((time.perf_counter() - started) * 1000)

    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i, user in enumerate(users):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(user)))
    await asyncio.gather(*tasks)
    report = summarise(latencies, len(failures), loop.time() - start)
    report["failures"] = failures[:20]
    return report


async def batch_stream(
    url: str, users: list[str], size: int, offset: int, stop: asyncio.Event, out: dict[str, Any]
) -> None:
    """Send ``size``-user batches back to back (distinct users each) until ``stop`` is set."""
    statuses: Counter[str] = Counter()
    seconds: list[float] = []
    timeout = aiohttp.ClientTimeout(total=120)
    position = offset
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            batch = [users[(position + i) % len(users)] for i in range(size)]
            position += size
            started = time.perf_counter()
            try:
                async with session.post(url, json={"user_ids": batch}) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
                    if response.status == 429:  # batch_busy: honour Retry-After
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
                continue
            seconds.append(time.perf_counter() - started)
    out["statuses"] = dict(statuses)
    out["batches_ok"] = len(seconds)
    out["median_ms"] = round(statistics.median(seconds) * 1000, 1) if seconds else None


async def measure(args: argparse.Namespace, base: str, users: list[str]) -> dict[str, Any]:
    """Phase 1 alone, phase 2 beside the batch streams; distinct users everywhere."""
    count = args.requests
    alone_users, beside_users = users[:count], users[count : 2 * count]
    batch_users = users[2 * count :] or users
    recommend = f"{base}/recommend"
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        # open connections and touch the code paths with users that are not measured
        await paced(session, recommend, users[-50:], args.rate * 2, args.timeout)
        alone = await paced(session, recommend, alone_users, args.rate, args.timeout)
        stop = asyncio.Event()
        streams: list[dict[str, Any]] = [{} for _ in range(args.streams)]
        tasks = [
            asyncio.create_task(
                batch_stream(
                    f"{base}/batch_recommend",
                    batch_users,
                    args.batch_users,
                    i * len(batch_users) // max(1, args.streams),
                    stop,
                    streams[i],
                )
            )
            for i in range(args.streams)
        ]
        await asyncio.sleep(args.settle)  # the streams are computing before we measure
        beside = await paced(session, recommend, beside_users, args.rate, args.timeout)
        stop.set()
        await asyncio.gather(*tasks)
    return {"alone": alone, "beside_batches": beside, "batch_streams": streams}


def run(args: argparse.Namespace) -> dict[str, Any]:
    users = known_users(args.processed, args.seed)
    if len(users) < 2 * args.requests + args.batch_users:
        raise SystemExit(
            f"{len(users)} known users: need {2 * args.requests + args.batch_users} for "
            "distinct users; lower --requests or --batch-users"
        )
    os.environ.update(COLD_CACHES)
    load_before = [round(x, 2) for x in os.getloadavg()]
    server = ServerProcess(args.processed, args.registry, workers=1)
    try:
        startup = server.wait_ready()
        phases = asyncio.run(measure(args, server.url, users))
        stats = requests.get(f"{server.url}/stats", timeout=10).json()
    finally:
        server.stop()
    alone, beside = phases["alone"]["p99_ms"], phases["beside_batches"]["p99_ms"]
    return {
        "rate_rps": args.rate,
        "requests_per_phase": args.requests,
        "streams": args.streams,
        "batch_users": args.batch_users,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "startup_to_ready_s": round(startup, 3),
        **phases,
        "p99_alone_ms": alone,
        "p99_beside_batches_ms": beside,
        "p99_ratio": round(beside / alone, 3) if alone else None,
        "server_errors_by_code": stats.get("errors_by_code", {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=REPO / "data/processed")
    parser.add_argument("--registry", type=Path, default=REPO / "artifacts/cf")
    parser.add_argument("--rate", type=float, default=100.0, help="/recommend per second")
    parser.add_argument("--requests", type=int, default=2000, help="/recommend per phase")
    parser.add_argument("--streams", type=int, default=2, help="concurrent batch clients")
    parser.add_argument("--batch-users", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before phase 2")
    parser.add_argument("--timeout", type=float, default=10.0, help="/recommend timeout (s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2))
    print(
        f"p99 alone {report['p99_alone_ms']} ms, beside {args.streams} batch streams "
        f"{report['p99_beside_batches_ms']} ms, ratio {report['p99_ratio']}"
    )
    failed = report["alone"]["failed"] + report["beside_batches"]["failed"]
    ok = {
        "p99 beside batches <= 3x alone": (report["p99_ratio"] or 0) <= 3,
        "no /recommend failed": failed == 0,
    }
    return 0 if report_targets(ok, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
