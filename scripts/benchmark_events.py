"""Event store ingest benchmark (library level, no HTTP): events/s and ack latency per backend.

Usage::

    python scripts/benchmark_events.py [--backend sqlite redis] [--clients 16] [--processes 1]
        [--seconds 5] [--sqlite-synchronous FULL] [--redis-url URL] [--json report.json]

``--clients`` threads, spread over ``--processes`` processes (each process opens its own store,
as each service worker would), append one event per call for ``--seconds`` seconds; every ack
is durable (SQLite ``synchronous=FULL`` by default; Redis started here with ``appendfsync
always`` unless ``--redis-url`` points at a server of your own). Prints events/s and the
p50/p99 ack latency per backend. The issue's HTTP target is ≥ 2,000 events/s with p99 < 20 ms
through the API, so the library should show clear headroom over that.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.events import Event, EventStore, SqliteEventStore  # noqa: E402
from recommender.events.redis_store import RedisEventStore  # noqa: E402
from scripts._client import percentile  # noqa: E402
from scripts._redis import start_redis_server  # noqa: E402

BACKENDS = ("sqlite", "redis")


def open_store(backend: str, target: str, synchronous: str) -> EventStore:
    if backend == "sqlite":
        return SqliteEventStore(target, synchronous=synchronous)  # type: ignore[arg-type]
    return RedisEventStore(target, key_prefix=f"bench:{{{uuid.uuid4().hex[:8]}}}:")


def client_process(
    backend: str, target: str, synchronous: str, threads: int, seconds: float, out: Any
) -> None:
    """One worker: ``threads`` clients on one store; sends its latencies (s) back via ``out``."""
    store = open_store(backend, target, synchronous)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = time.perf_counter()
    deadline = start + seconds

    def client(n: int) -> None:
        user = f"bench-{uuid.uuid4().hex[:8]}-{n}"
        i = 0
        while time.perf_counter() < deadline:
            event = Event(f"{user}-{i}", user, f"p{i % 500}", "view", time.time())
            sent = time.perf_counter()
            try:
                store.append([event])
            except Exception:  # noqa: BLE001  # counted, the run goes on
                errors[n] += 1
            latencies[n].append(time.perf_counter() - sent)
            i += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    store.close()
    out.put({"latencies": [x for row in latencies for x in row], "errors": sum(errors),
             "elapsed": elapsed})  # fmt: skip


def run_backend(backend: str, target: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    per_process = [args.clients // args.processes] * args.processes
    for i in range(args.clients % args.processes):
        per_process[i] += 1
    procs = [
        ctx.Process(
            target=client_process,
            args=(backend, target, args.sqlite_synchronous, n, args.seconds, out),
        )
        for n in per_process
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=args.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    latencies = [x for r in results for x in r["latencies"]]
    elapsed = max(r["elapsed"] for r in results)
    return {
        "backend": backend,
        "clients": args.clients,
        "processes": args.processes,
        "events": len(latencies),
        "errors": sum(r["errors"] for r in results),
        "events_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "max_ms": round(max(latencies, default=0.0) * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sqlite-synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--redis-url", help="an existing server; default: start one here")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    if not 1 <= args.processes <= args.clients:
        parser.error("--processes must be between 1 and --clients")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        for backend in args.backend:
            server = None
            if backend == "sqlite":
                target = str(Path(tmp) / "events.sqlite3")
            elif args.redis_url:
                target = args.redis_url
            else:
                binary = shutil.which("redis-server")
                if binary is None:
                    print("redis: skipped (redis-server not on PATH; or pass --redis-url)")
                    continue
                server = start_redis_server(binary, Path(tmp) / "redis")
                target = server.url
            try:
                rows.append(run_backend(backend, target, args))
            finally:
                if server is not None:
                    server.kill()
    header = ("backend", "clients", "processes", "events_per_s", "p50_ms", "p99_ms", "max_ms")
    print(" | ".join(header) + " | errors")
    for row in rows:
        print(" | ".join(str(row[k]) for k in header) + f" | {row['errors']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
