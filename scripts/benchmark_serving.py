"""Serving benchmark: start the server, then measure everything SPEC §9 names in one run.

Usage::

    python scripts/benchmark_serving.py [--processed data/processed] [--registry artifacts/cf]
        [--workers 1] [--concurrency 16] [--requests 4000] [--json report.json]

Measures, on one freshly started ``uvicorn service.api:app``:

- startup to ready (process start -> first ``/health`` 200) and warm-up completion;
- ``GET /health`` and ``POST /recommend`` throughput and client-side p50/p95/p99 at
  ``--concurrency`` connections (aiohttp), the recommend traffic being the load test's "mixed"
  one (``_client.build_plan``): ~60% unknown visitors, ~30% known users without a CF row, ~10%
  trainable, Zipf-skewed by activity (repeat visitors), some filters and rerank weights;
- ``/batch_recommend`` of 1,000 users: the server's ``total_latency_ms``;
- resident memory (RSS) of every worker process;
- the machine's load average before and after (client and server share the machine, so other
  jobs move every number: compare runs only under similar load).

Targets (2-core machine): p99 < 15 ms at 16 connections, recommend ≥ 60% of health throughput,
batch of 1,000 < 100 ms, startup < 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow.parquet as pq
import requests
from _client import (
    DEFAULT_PROCESSED_DIR,
    DEFAULT_REGISTRY_DIR,
    build_plan,
    discover_users,
    filter_values,
    percentile,
    report_targets,
)
from _server import REPO, free_port, server_command, server_env
from _server import ServerProcess as _ServerProcess

__all__ = ["ServerProcess", "percentile", "user_mix"]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ServerProcess(_ServerProcess):
    """``uvicorn service.api:app`` on a free port, pointed at the artifacts by RECSYS_PATHS__*."""

    def __init__(self, processed: Path, registry: Path, workers: int) -> None:
        port = free_port()
        command = server_command("uvicorn", port, workers, extra=["--no-access-log"])
        env = server_env(
            processed, registry, {"RECSYS_LOGGING__LEVEL": "WARNING"}, drop_prefix="RECSYS_PATHS__"
        )
        super().__init__(command, env, port, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 120.0) -> float:  # type: ignore[override]
        """Seconds from process start to the first /health 200 (SystemExit when it never comes)."""
        try:
            return super().wait_ready(timeout, interval=0.01)
        except RuntimeError as exc:
            stderr = (
                self.process.stderr.read().decode()[-2000:]
                if self.process.poll() is not None
                else ""
            )
            raise SystemExit(f"{exc}: {stderr}") from None


def user_mix(processed: Path, count: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """``count`` /recommend bodies of the load test's "mixed" traffic and a 1,000-user batch drawn
    from the same mix (users, filters and rerank weights from the processed files)."""
    pool = discover_users([], processed, prefer_files=True)
    columns = ["product_id", "brand", "category", "price"]
    products = pq.read_table(processed / "enriched_products.parquet", columns=columns)
    catalogue = filter_values(products.to_pylist())
    plan = build_plan(pool, "mixed", count + 1000, catalogue, seed)
    bodies = [payload for _, payload in plan[:count]]
    batch = [str(payload["user_id"]) for _, payload in plan[count:]]
    return bodies, batch


async def load(url: str, method: str, bodies: list[Any], concurrency: int) -> dict[str, Any]:
    """Send every body with ``concurrency`` connections; throughput and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for body in queue:
                started = time.perf_counter()
                if method == "GET":
                    request = session.get(url)
                else:
                    request = session.post(url, json=body)
                async with request as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "errors": errors,
        "throughput_rps": round(len(ms) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]  # numbers mean little without it
    bodies, batch_users = user_mix(args.processed, args.requests, args.seed)
    server = ServerProcess(args.processed, args.registry, args.workers)
    try:
        startup = server.wait_ready()
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:  # let the warm-up finish before measuring
            if requests.get(f"{server.url}/cache_stats").json()["warmup"]["state"] != "running":
                break
            time.sleep(0.05)
        warmed_at = time.perf_counter() - server.started
        health = f"{server.url}/health"
        recommend = f"{server.url}/recommend"
        asyncio.run(
            load(health, "GET", [None] * 500, args.concurrency)
        )  # connections, JIT-free warm-up
        asyncio.run(load(recommend, "POST", bodies[:500], args.concurrency))
        health_stats = asyncio.run(load(health, "GET", [None] * args.requests, args.concurrency))
        rec_stats = asyncio.run(load(recommend, "POST", bodies, args.concurrency))
        batch_ms, batch_wall = [], []
        for _ in range(args.batch_runs):
            started = time.perf_counter()
            body = requests.post(
                f"{server.url}/batch_recommend", json={"user_ids": batch_users, "topk": 10}
            ).json()
            batch_wall.append((time.perf_counter() - started) * 1000)
            batch_ms.append(body["total_latency_ms"])
        pids = {
            requests.get(health, headers={"Connection": "close"}).json()["pid"] for _ in range(40)
        }
        memory = {str(pid): round(rss_mb(pid) or 0.0, 1) for pid in sorted(pids)}
        profile = requests.get(f"{server.url}/cache_stats").json()["user_profile"]
    finally:
        server.stop()
    return {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "load_average_1_5_15": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "startup_to_ready_s": round(startup, 3),
        "startup_to_warm_s": round(warmed_at, 3),
        "health": health_stats,
        "recommend": rec_stats,
        "recommend_over_health_throughput": round(
            rec_stats["throughput_rps"] / health_stats["throughput_rps"], 3
        ),
        "batch_1000_server_ms": {
            "first": batch_ms[0],
            "median": round(statistics.median(batch_ms), 3),
            "min": min(batch_ms),
        },
        "batch_1000_client_ms_median": round(statistics.median(batch_wall), 3),
        "user_profile_hit_rate": profile["hit_rate"],
        "worker_rss_mb": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=REPO / DEFAULT_PROCESSED_DIR)
    parser.add_argument("--registry", type=Path, default=REPO / DEFAULT_REGISTRY_DIR)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--batch-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2))
    ok = {
        "p99 < 15 ms": report["recommend"]["p99_ms"] < 15,
        "recommend >= 60% of health": report["recommend_over_health_throughput"] >= 0.6,
        "batch 1000 < 100 ms": report["batch_1000_server_ms"]["median"] < 100,
        "startup < 5 s": report["startup_to_ready_s"] < 5,
    }
    report_targets(ok, report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
