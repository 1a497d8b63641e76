"""Which server to run: uvicorn, granian and gunicorn + uvicorn workers on the same traffic.

Usage::

    python scripts/benchmark_servers.py [--processed data/processed] [--registry artifacts/cf]
        [--servers uvicorn,granian,gunicorn] [--workers 1] [--concurrency 16]
        [--requests 3000] [--scale] [--json report.json]

For each server, one after the other on a free loopback port with the same artifacts, the same
worker count and the same request bodies: ``GET /health``, ``POST /recommend`` of the load test's
mixed traffic (repeat visitors: mostly cache hits) and of distinct known users (every request a
cache miss: a storefront's day), with the load generator of ``benchmark_serving.py`` (aiohttp,
``--concurrency`` connections). Prints throughput and p50/p95/p99 per mix and server, and each
mix's ratio to the /health of the same server in the same run.

- ``uvicorn``: ``uvicorn service.api:app --loop uvloop --http httptools`` (what the checklist runs);
- ``granian``: ``granian --interface asgi service.api:app`` (Rust HTTP; ``pip install
  '.[deploy]'``; skipped with a note when not installed);
- ``gunicorn``: ``gunicorn -c config/gunicorn.conf.py -k uvicorn.workers.UvicornWorker`` (process
  supervision, graceful reload, the production logging).

The client shares the machine with the server: compare the servers within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from _client import MAPPINGS_FILE, report_targets
from _scale import add_shop_arguments, resolve_shop
from _server import (
    APP,
    GUNICORN_CONFIG,
    HOST,
    ServerProcess,
    free_port,
    server_command,
    server_env,
)
from benchmark_serving import load, user_mix

SERVERS = ("uvicorn", "granian", "gunicorn")


def command_for(kind: str, port: int, workers: int) -> list[str]:
    """The command line of one server kind with ``workers`` processes on ``port``."""
    if kind == "uvicorn":
        extra = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        return server_command("uvicorn", port, workers, extra=extra)
    if kind == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            APP,
        ]
    if kind == "gunicorn":
        return server_command("gunicorn", port, workers, gunicorn_config=GUNICORN_CONFIG)
    raise ValueError(f"unknown server {kind!r} (expected one of {', '.join(SERVERS)})")


def available(kind: str) -> bool:
    return importlib.util.find_spec(kind) is not None


def distinct_users(processed: Path, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` /recommend bodies of distinct known users (each a cache miss)."""
    ids = json.loads((processed / MAPPINGS_FILE).read_text(encoding="utf-8"))["user_ids"]
    picked = random.Random(seed).sample(list(ids), min(count, len(ids)))
    return [{"user_id": str(u), "topk": 10} for u in picked]


def measure(
    kind: str,
    processed: Path,
    registry: Path,
    workers: int,
    concurrency: int,
    mixes: dict[str, list[Any]],
) -> dict[str, Any]:
    """Start ``kind``, run every mix against it, stop it."""
    port = free_port()
    env = server_env(
        processed,
        registry,
        {"RECSYS_LOGGING__LEVEL": "WARNING", "WEB_CONCURRENCY": str(workers)},
        drop_prefix="RECSYS_PATHS__",
    )
    server = ServerProcess(command_for(kind, port, workers), env, port, stderr=subprocess.DEVNULL)
    try:
        ready = server.wait_ready(timeout=600)
        asyncio.run(load(f"{server.url}/health", "GET", [None] * 300, concurrency))
        out: dict[str, Any] = {"startup_to_ready_s": round(ready, 2)}
        for name, bodies in mixes.items():
            if name == "health":
                out[name] = asyncio.run(load(f"{server.url}/health", "GET", bodies, concurrency))
            else:
                out[name] = asyncio.run(
                    load(f"{server.url}/recommend", "POST", bodies, concurrency)
                )
    finally:
        server.stop()
    health = out["health"]["throughput_rps"] or 1e-9
    out["over_health"] = {
        name: round(out[name]["throughput_rps"] / health, 3) for name in mixes if name != "health"
    }
    return out


def _print(results: dict[str, dict[str, Any]], mixes: list[str]) -> None:
    print(f"{'server':<10} {'mix':<18} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind, result in results.items():
        if "skipped" in result:
            print(f"{kind:<10} skipped: {result['skipped']}")
            continue
        for name in mixes:
            r = result[name]
            print(
                f"{kind:<10} {name:<18} {r['throughput_rps']:>9.1f} {r['p50_ms']:>8.2f} "
                f"{r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shop_arguments(parser)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    resolve_shop(args)
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(SERVERS))
    if unknown:
        parser.error(f"--servers: unknown {unknown}; choose from {', '.join(SERVERS)}")
    mixed, _ = user_mix(args.processed, args.requests, args.seed)
    mixes: dict[str, list[Any]] = {
        "health": [None] * args.requests,
        "recommend_mixed": mixed,
        "recommend_distinct": distinct_users(args.processed, args.requests, args.seed),
    }
    results: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if not available(kind):
            results[kind] = {"skipped": f"{kind} is not installed (pip install '.[deploy]')"}
            continue
        results[kind] = measure(
            kind, args.processed, args.registry, args.workers, args.concurrency, mixes
        )
    _print(results, list(mixes))
    measured = {k: r for k, r in results.items() if "skipped" not in r}
    report = {"workers": args.workers, "concurrency": args.concurrency, "servers": results}
    print(json.dumps({k: r["over_health"] for k, r in measured.items()}, indent=2))
    targets: dict[str, bool] = {}
    if "uvicorn" in measured:
        best = max(measured, key=lambda k: measured[k]["recommend_distinct"]["throughput_rps"])
        report["fastest_on_distinct_users"] = best
        print(f"fastest on distinct users: {best}")
        targets["every measured server answered every request"] = all(
            r[m]["errors"] == 0 for r in measured.values() for m in mixes
        )
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
