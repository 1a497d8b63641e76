"""HTTP ingest benchmark: POST /events throughput, ack latency and cross-worker visibility lag.

Usage::

    python scripts/benchmark_ingest.py [--processed data/processed] [--registry artifacts/cf]
        [--backend sqlite redis] [--sqlite-synchronous FULL NORMAL] [--batch 1 10]
        [--clients 16] [--seconds 10] [--json report.json]

Per backend (SQLite file in a temporary directory; Redis started here with ``appendonly yes`` +
``appendfsync always``), two servers on free loopback ports share the one store: **A**, one
``uvicorn service.api:app`` worker that takes the ingest, and **B**, another process that only
reads. ``--clients`` aiohttp clients POST events of ``--batch`` events each to A back to back for
``--seconds`` (every event id unique, every ack durable). Every ``--sample-every``-th acked
event's sequence number is timed until B's ``GET /stats`` ``events.applied_seq`` reaches it:
that is B's tail thread (``events.poll_interval_seconds``), read without the catch-up that every
``/recommend`` does first, so it is the slowest way an event reaches another worker.

``--sqlite-synchronous`` measures SQLite in each durability mode (``FULL``, the default: an ack
survives power loss; ``NORMAL``: an ack survives ``kill -9`` of any process but not power loss
or an OS crash); the targets below are for ``FULL``, ``NORMAL`` rows get their own lines.

Before the ingest rows of a backend, the same clients ``GET /health`` on A for ``--seconds``: the
ceiling of this machine, this client and uvicorn's HTTP layer (``health_rps``); each row's
``posts_over_health`` is its POSTs/s over that, measured in the same run, so a loaded machine
moves both. ``client_cpu_pct`` is the load generator's own CPU share (it shares the cores).

Prints one table (events/s, ack p50/p95/p99/max, lag p50/p95/p99/max, the ceiling) and the load
average: other jobs on the machine move every number. Targets (issue 11, every backend and
batch size): ≥ 2,000 events/s, ack p99 < 20 ms, lag max < 1 s; a PASS/MISS line each, exit 1
on a miss or on any failed POST.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._client import percentile, report_targets  # noqa: E402
from scripts._redis import RedisServer, start_redis_server  # noqa: E402
from scripts._server import REPO, ServerProcess, free_port, server_command, server_env  # noqa: E402

TOKEN = "benchmark-ingest-token"
SERVER_ENV = {
    "RECSYS_INGEST_TOKEN": TOKEN,
    "RECSYS_WARMUP__ENABLED": "false",
    "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
}
LAG_WAIT_SECONDS = 5.0  # a sample not visible on B this long after the run counts as unseen


def product_ids(processed: Path) -> list[str]:
    """The model's product ids (events naming unknown products are refused)."""
    mappings = json.loads((processed / "user_item_mappings.json").read_text(encoding="utf-8"))
    return [str(item) for item in mappings["item_ids"]]


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


class Run:
    """One measured phase: clients POSTing to A, one poller reading B's applied sequence."""

    def __init__(self, args: argparse.Namespace, products: list[str], tag: str) -> None:
        self.args, self.products, self.tag = args, products, tag
        self.latencies: list[float] = []
        self.acked = 0
        self.failures: dict[str, int] = {}
        self.pending: list[tuple[int, float]] = []  # (seq, acked at)
        self.lags: list[float] = []
        self.counter = itertools.count()

    def events(self, client: int, n: int) -> list[dict[str, Any]]:
        out = []
        for k in range(self.args.batch):
            i = next(self.counter)
            kind = "purchase" if i % self.args.sample_every == 0 else "view"
            out.append({
                "event_id": f"{self.tag}-{client}-{n}-{k}",
                "user_id": f"{self.tag}-u{client}-{i // 25}",
                "product_id": self.products[i % len(self.products)],
                "type": kind,
            })  # fmt: skip
        return out

    async def client(self, session: aiohttp.ClientSession, url: str, n: int, until: float) -> None:
        headers = {"X-Ingest-Token": TOKEN, "Content-Type": "application/json"}
        sent = 0
        while time.perf_counter() < until:
            batch = self.events(n, sent)
            sent += 1
            body = orjson.dumps(batch if self.args.batch > 1 else batch[0])
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.failures[type(exc).__name__] = self.failures.get(type(exc).__name__, 0) + 1
                continue
            acked_at = time.perf_counter()
            if status != 202:
                self.failures[str(status)] = self.failures.get(str(status), 0) + 1
                continue
            self.latencies.append(acked_at - started)
            acks = orjson.loads(payload)["events"]
            self.acked += len(acks)
            if any(e["type"] == "purchase" for e in batch):
                self.pending.append((max(a["seq"] for a in acks), acked_at))

    async def poller(self, session: aiohttp.ClientSession, url: str, done: asyncio.Event) -> None:
        """Time each pending sample until B's applied sequence reaches it."""
        give_up = None
        while True:
            if done.is_set() and give_up is None:
                give_up = time.perf_counter() + LAG_WAIT_SECONDS
            if give_up is not None and (not self.pending or time.perf_counter() > give_up):
                return
            async with session.get(url) as response:
                applied = (await response.json())["events"]["applied_seq"]
            seen_at = time.perf_counter()
            visible = [p for p in self.pending if p[0] <= applied]
            self.pending = [p for p in self.pending if p[0] > applied]
            self.lags += [seen_at - acked_at for _, acked_at in visible]
            await asyncio.sleep(self.args.poll_ms / 1000)

    async def measure(self, a: str, b: str) -> dict[str, Any]:
        """Half a second of warm-up (connections, code paths), then the measured phase."""
        connector = aiohttp.TCPConnector(limit=self.args.clients + 4)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            warm = Run(self.args, self.products, self.tag + "w")
            until = time.perf_counter() + 0.5
            clients = range(self.args.clients)
            await asyncio.gather(*(warm.client(session, a, n, until) for n in clients))
            done = asyncio.Event()
            poll = asyncio.create_task(self.poller(session, b, done))
            cpu, start = time.process_time(), time.perf_counter()
            until = start + self.args.seconds
            clients = [self.client(session, a, n, until) for n in range(self.args.clients)]
            await asyncio.gather(*clients)
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
            done.set()
            await poll
        return {
            "events_per_post": self.args.batch,
            "acked_events": self.acked,
            "failed_posts": self.failures,
            "events_per_s": round(self.acked / wall, 1),
            "posts_per_s": round(len(self.latencies) / wall, 1),
            "ack_p50_ms": ms(self.latencies, 50),
            "ack_p95_ms": ms(self.latencies, 95),
            "ack_p99_ms": ms(self.latencies, 99),
            "ack_max_ms": ms(self.latencies, 100),
            "lag_samples": len(self.lags),
            "lag_unseen": len(self.pending),
            "lag_p50_ms": ms(self.lags, 50),
            "lag_p95_ms": ms(self.lags, 95),
            "lag_p99_ms": ms(self.lags, 99),
            "lag_max_ms": ms(self.lags, 100),
            "client_cpu_pct": round(100 * cpu / wall, 1),
            "warmup_acked_events": warm.acked,
        }


async def ceiling(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """``GET /health`` on A with the same client loop: what this machine, this client and
    uvicorn's HTTP layer allow per second, so ``posts_over_health`` shows what ingest costs."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients + 4)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(until: float) -> None:
            while time.perf_counter() < until:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        warm = time.perf_counter() + 0.5
        await asyncio.gather(*(client(warm) for _ in range(clients)))
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(client(start + seconds) for _ in range(clients)))
        wall = time.perf_counter() - start
    return {
        "health_rps": round(len(latencies) / wall, 1),
        "health_p99_ms": ms(latencies, 99),
    }


def start(args: argparse.Namespace, extra: dict[str, str], log: Path) -> ServerProcess:
    port = free_port()
    env = server_env(args.processed, args.registry, {**SERVER_ENV, **extra})
    with log.open("ab") as sink:
        server = ServerProcess(server_command("uvicorn", port, 1), env, port, stderr=sink)
    server.wait_ready()
    return server


def run_backend(
    backend: str, args: argparse.Namespace, tmp: Path, synchronous: str = "FULL"
) -> list[dict[str, Any]]:
    """A and B on one store; one row per ``--batch`` size."""
    redis: RedisServer | None = None
    extra = {"RECSYS_EVENTS__BACKEND": backend}
    durability = "appendfsync always"
    if backend == "sqlite":
        extra["RECSYS_EVENTS__SQLITE_PATH"] = str(tmp / "events.sqlite3")
        extra["RECSYS_EVENTS__SQLITE_SYNCHRONOUS"] = synchronous
        durability = f"synchronous={synchronous}"
    else:
        binary = shutil.which("redis-server")
        if binary is None:
            print("redis: skipped (redis-server not on PATH)", file=sys.stderr)
            return []
        redis = start_redis_server(binary, tmp / "redis")
        extra["RECSYS_EVENTS__REDIS_URL"] = redis.url
    servers: list[ServerProcess] = []
    rows = []
    try:
        servers.append(start(args, extra, tmp / "server-a.log"))
        servers.append(start(args, extra, tmp / "server-b.log"))
        a, b = f"{servers[0].url}/events", f"{servers[1].url}/stats"
        products = product_ids(args.processed)
        health = asyncio.run(ceiling(f"{servers[0].url}/health", args.clients, args.seconds))
        for batch in args.batch:
            phase = argparse.Namespace(**{**vars(args), "batch": batch})
            row = asyncio.run(Run(phase, products, f"{backend}{batch}").measure(a, b))
            row.update(
                health, posts_over_health=round(row["posts_per_s"] / health["health_rps"], 3)
            )
            rows.append({"backend": backend, "durability": durability, **row})
        acked = sum(row["acked_events"] + row["warmup_acked_events"] for row in rows)
        applied = [applied_seq(s.url, acked) for s in servers]
        for row in rows:
            row["backend_acked_events"] = acked
            row["backend_applied_seq_a_b"] = applied
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.kill()
    return rows


def applied_seq(url: str, expected: int) -> int:
    """A server's applied sequence once it reaches ``expected`` (or after LAG_WAIT_SECONDS)."""
    deadline = time.perf_counter() + LAG_WAIT_SECONDS
    while True:
        seq = int(requests.get(f"{url}/stats", timeout=10).json()["events"]["applied_seq"])
        if seq >= expected or time.perf_counter() > deadline:
            return seq
        time.sleep(0.05)


COLUMNS = ("backend", "durability", "events_per_post", "events_per_s", "ack_p50_ms", "ack_p95_ms",
           "ack_p99_ms", "ack_max_ms", "lag_p50_ms", "lag_p95_ms", "lag_p99_ms", "lag_max_ms",
           "lag_samples", "lag_unseen", "client_cpu_pct", "health_rps",
           "posts_over_health")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processed", type=Path, default=REPO / "data/processed")
    parser.add_argument("--registry", type=Path, default=REPO / "artifacts/cf")
    parser.add_argument("--backend", nargs="+", choices=("sqlite", "redis"),
                        default=["sqlite", "redis"])  # fmt: skip
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 10], help="events per POST")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sample-every", type=int, default=50, help="events per lag sample")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="B's /stats poll period")
    parser.add_argument(
        "--sqlite-synchronous",
        nargs="+",
        choices=("FULL", "NORMAL"),
        default=["FULL"],
        help="SQLite durability modes (FULL: an ack survives power loss; NORMAL: kill -9 only)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for backend in args.backend:
            modes = args.sqlite_synchronous if backend == "sqlite" else ["-"]
            for mode in modes:
                folder = Path(tmp) / f"{backend}{mode}"
                folder.mkdir()
                rows += run_backend(backend, args, folder, mode)
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "rows": rows,
    }
    print("| " + " | ".join(COLUMNS) + " |")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    print(f"load average before {load_before}, after {report['load_average_1_5_15']['after']}")
    targets = {}
    for row in rows:
        name = row["backend"]
        if row["durability"] == "synchronous=NORMAL":
            name = "sqlite NORMAL"
        size = "" if row["events_per_post"] == 1 else f" x{row['events_per_post']}"
        targets[f"{name}{size}: >= 2000 events/s"] = row["events_per_s"] >= 2000
        targets[f"{name}{size}: ack p99 < 20 ms"] = row["ack_p99_ms"] < 20
        targets[f"{name} x{row['events_per_post']}: lag max < 1 s, all seen"] = (
            row["lag_unseen"] == 0 and row["lag_samples"] > 0 and row["lag_max_ms"] < 1000
        )
        targets[f"{name} x{row['events_per_post']}: no failed POST"] = not row["failed_posts"]
    return 0 if report_targets(targets, report, args.json) else 1


if __name__ == "__main__":
    sys.exit(main())
