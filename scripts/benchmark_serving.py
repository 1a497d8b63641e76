"""Serving benchmark: start the server, then measure everything SPEC §9 names in one run.

Usage::

    python scripts/benchmark_serving.py [--processed data/processed] [--registry artifacts/cf]
        [--workers 1] [--concurrency 16] [--requests 4000] [--distinct 20000]
        [--compare 2000] [--json report.json] [--engine-only] [--scale] [--port 18100]

Measures, on one freshly started ``uvicorn service.api:app`` (warm-up off, so every cache
starts cold), each mix right after ``GET /health`` on the same server:

- startup to ready (process start -> first ``/health`` 200);
- **uncached**: ``--distinct`` distinct known users (trainable and cold mixed, each asked once,
  ``topk`` 10): what a storefront sees in a day. Throughput ÷ ``/health``'s, p50/p95/p99 of both;
- **cached**: the load test's "mixed" traffic (``_client.build_plan``): ~60% unknown visitors,
  ~30% known users without a CF row, ~10% trainable, Zipf-skewed by activity (repeat visitors),
  some filters and rerank weights; after its first 500 requests, sent twice to warm it (the
  shipped ``cache.admission: repeat`` stores a user's answer on their second request); with one
  worker also the results cache's hits and misses during the mix (``results_cache``: at 1M
  users about one request in five is a miss, mostly known users asked for the first time, each
  costing what an uncached request does);
- **peer**: ``--compare`` trainable users not asked before, on our server and on
  ``scripts/reference_implicit_app.py`` (FastAPI + ``implicit`` over the same factor files, top-10
  without seen items) started afterwards in the same run: our throughput ÷ its;
- ``/batch_recommend`` of 1,000 distinct users never asked before: the server's
  ``total_latency_ms``;
- in this process (``--engine-users``, CPU time, no HTTP): the engine's time per uncached user by
  segment, and 1,000 users as one batch ÷ the same users one by one (medians of three
  rounds, the order alternated);
- resident memory (RSS) of every worker process and the load average before and after (client
  and server share the machine, so other jobs move every number: compare runs only under
  similar load);
- the server's CPU time per request of every mix (``server_cpu_ms_per_request``, from
  ``/proc``) and ``health_cpu_over_recommend_cpu``, /health's over the mix's: what the
  throughput ratio tends to when the server has a core to itself — on a loaded machine a far
  steadier number than throughput (and ``reference_cpu_over_ours`` for the peer).

Targets (2-core machine, issue 12): uncached ≥ 0.5× health and p99 ≤ 3× health's; cached
≥ 0.8× health and p99 ≤ 2× health's; ≥ 1.0× the implicit peer; batch of 1,000 uncached < 100 ms
and ≤ 1/5 of the engine time of the same users one by one; engine ≤ 0.25 ms per uncached known
user; startup < 5 s. With ``--scale`` (the 1M users × 50K products shop, built first when missing,
see ``scripts/_scale.py``): engine ≤ 2 ms per uncached known user, ready < 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
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
    build_plan,
    discover_users,
    filter_values,
    percentile,
    report_targets,
)
from _scale import add_shop_arguments, resolve_shop
from _server import REPO, free_port, server_command, server_env
from _server import ServerProcess as _ServerProcess

__all__ = ["ReferenceApp", "ServerProcess", "distinct_users", "percentile", "user_mix"]
REFERENCE_APP = "reference_implicit_app:app"
BATCH_ROUNDS = 3  # engine block: batch and one-by-one timings per run, order alternated
ENGINE_MS, SCALE_ENGINE_MS = 0.25, 2.0  # per uncached known user: demo shop, 1M × 50K shop
STARTUP_S, SCALE_STARTUP_S = 5.0, 15.0  # process start -> ready


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

    def __init__(
        self, processed: Path, registry: Path, workers: int, port: int | None = None
    ) -> None:
        port = port or free_port()
        command = server_command("uvicorn", port, workers, extra=["--no-access-log"])
        extra = {"RECSYS_LOGGING__LEVEL": "WARNING", "RECSYS_WARMUP__ENABLED": "false"}
        env = server_env(processed, registry, extra, drop_prefix="RECSYS_PATHS__")
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


class ReferenceApp(ServerProcess):
    """``scripts/reference_implicit_app.py`` under uvicorn (one worker) on a free port."""

    def __init__(  # noqa: D107
        self, processed: Path, registry: Path, port: int | None = None
    ) -> None:
        port = port or free_port()
        command = server_command("uvicorn", port, 1, extra=["--no-access-log"])
        command[command.index("service.api:app")] = REFERENCE_APP
        command += ["--app-dir", str(REPO / "scripts")]
        env = server_env(processed, registry, drop_prefix="RECSYS_PATHS__")
        _ServerProcess.__init__(self, command, env, port, stderr=subprocess.PIPE)


def distinct_users(processed: Path, seed: int) -> tuple[list[str], list[str]]:
    """Known users with a positive interaction, shuffled: (trainable, cold)."""
    pool = discover_users([], processed, prefer_files=True)
    rng = random.Random(seed)
    trainable, cold = list(pool.trainable), list(pool.cold)
    rng.shuffle(trainable)
    rng.shuffle(cold)
    return trainable, cold


def split_users(
    processed: Path, distinct: int, compare: int, batches: int, seed: int
) -> dict[str, list[str]]:
    """Disjoint user lists, so that every measured request is a cache miss: ``compare`` trainable
    users for the peer comparison, ``batches`` × 1,000 for the batches, ``distinct`` mixed
    trainable/cold users (in the shop's proportion) for the uncached mix."""
    trainable, cold = distinct_users(processed, seed)
    peer, trainable = trainable[:compare], trainable[compare:]
    mixed = trainable + cold
    random.Random(seed + 1).shuffle(mixed)
    batch, mixed = mixed[: 1000 * batches], mixed[1000 * batches :]
    return {"peer": peer, "batch": batch, "uncached": mixed[:distinct]}


def engine_times(
    processed: Path, registry: Path, users: dict[str, list[str]], count: int
) -> dict[str, Any]:
    """In-process engine CPU time (ms) per uncached user by segment, and of one 1,000-user batch
    against the same users one by one (fresh caches for each measurement), on one BLAS/OpenMP
    thread as the server runs (service/__init__.py): spinning BLAS threads doubled a batch's CPU."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _engine_times(processed, registry, users, count)


class _SearchClock:
    """CPU seconds spent in ``VectorIndex.search`` (the candidate stage's HNSW searches) while
    installed: the part of a batch that stays one search per user, as a single call does."""

    def __init__(self) -> None:
        from recommender.scoring.ann import VectorIndex

        self.seconds = 0.0
        self._class = VectorIndex
        self._real = VectorIndex.search
        clock = self

        def timed(index: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return clock._real(index, *args, **kwargs)
            finally:
                clock.seconds += time.process_time() - started

        VectorIndex.search = timed  # type: ignore[method-assign]

    def close(self) -> None:
        self._class.search = self._real  # type: ignore[method-assign]


def _engine_times(
    processed: Path, registry: Path, users: dict[str, list[str]], count: int
) -> dict[str, Any]:
    from recommender.config.serving import ServingSettings
    from recommender.serving import Engine, ServingCaches
    from recommender.serving.bundle import load_bundle

    settings = ServingSettings.model_validate(
        {"paths": {"processed_dir": str(processed), "registry_dir": str(registry)}}
    )
    bundle = load_bundle(settings)
    if settings.reload.freeze_gc:  # as the server does after a load (service.heap)
        gc.collect()
        gc.freeze()

    def fresh() -> Engine:
        return Engine(bundle, ServingCaches.from_settings(settings.cache), settings)

    hist = bundle.histories
    groups: dict[str, list[str]] = {"trainable": [], "cold": [], "unknown": []}
    for user in users["uncached"]:
        groups[hist.segment(hist.index.get(user, -1))].append(user)
    groups["unknown"] = [f"bench-new-{i}" for i in range(count)]
    report: dict[str, Any] = {}
    options = fresh().options()
    for segment, pool in groups.items():
        sample = pool[:count]
        if not sample:
            continue
        engine = fresh()
        engine.recommend(sample[0], options)  # first-call costs out of the measurement
        engine = fresh()
        started = time.process_time()
        for user in sample:
            engine.recommend(user, options)
        report[f"{segment}_ms_per_user"] = round(
            (time.process_time() - started) * 1000 / len(sample), 4
        )
    batch = users["batch"][:1000]
    clock = _SearchClock()

    def one_by_one() -> tuple[float, float]:
        """(CPU ms, of it in HNSW searches ms)"""
        engine = fresh()
        clock.seconds = 0.0
        started = time.process_time()
        for user in batch:
            engine.recommend(user, options)
        return (time.process_time() - started) * 1000, clock.seconds * 1000

    def together() -> tuple[float, float]:
        engine = fresh()
        clock.seconds = 0.0
        started = time.process_time()
        engine.recommend_batch(batch, options)
        return (time.process_time() - started) * 1000, clock.seconds * 1000

    # three rounds, the order alternated, medians: one timed batch moved by ±20% run to run
    rounds: list[tuple[tuple[float, float], tuple[float, float]]] = []  # (one by one, batch)
    try:
        for r in range(BATCH_ROUNDS):
            if r % 2 == 0:
                singles_ms = one_by_one()
                rounds.append((singles_ms, together()))
            else:
                batch_ms = together()
                rounds.append((one_by_one(), batch_ms))
    finally:
        clock.close()
    singles = statistics.median(o[0] for o, _ in rounds)
    batched = statistics.median(b[0] for _, b in rounds)
    if any(b[1] for _, b in rounds):  # the candidate stage: one HNSW search per user either way
        report["batch_search_ms"] = round(statistics.median(b[1] for _, b in rounds), 2)
        report["same_1000_one_by_one_search_ms"] = round(
            statistics.median(o[1] for o, _ in rounds), 2
        )
        # the floor of batch_over_one_by_one while a batch searches as single calls do
        report["batch_search_over_one_by_one"] = round(
            statistics.median(b[1] / o[0] for o, b in rounds), 3
        )
    report["batch_chunk_users"] = settings.batch.chunk_users  # as the server ranks a batch
    report["batch_1000_ms"] = round(batched, 2)
    report["same_1000_one_by_one_ms"] = round(singles, 2)
    report["batch_over_one_by_one"] = round(batched / singles, 3)
    report["batch_over_one_by_one_rounds"] = [round(b[0] / o[0], 3) for o, b in rounds]
    known = [report.get(f"{s}_ms_per_user") for s in ("trainable", "cold")]
    counts = [len(groups["trainable"]), len(groups["cold"])]
    if all(k is not None for k in known) and sum(counts):
        report["known_ms_per_user"] = round(
            sum(k * c for k, c in zip(known, counts, strict=True)) / sum(counts), 4
        )
    return report


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


_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process of process group ``pgid`` (the
    server's master and workers: ServerProcess starts them in a session of their own)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ..., utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def measured(
    server: _ServerProcess, url: str, method: str, bodies: list[Any], concurrency: int
) -> dict[str, Any]:
    """:func:`load` plus the server's CPU per request: on a shared machine throughput moves with
    whatever else runs, while the server's own CPU time per request hardly does."""
    before = group_cpu_s(server.process.pid)
    result = asyncio.run(load(url, method, bodies, concurrency))
    cpu = group_cpu_s(server.process.pid) - before
    result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, result["requests"]), 4)
    return result


def results_counters(url: str) -> dict[str, int]:
    """The results cache's hits, misses and held-back first offers (``/cache_stats``)."""
    stats = requests.get(f"{url}/cache_stats", timeout=10).json()["results"]
    return {key: int(stats[key]) for key in ("hits", "misses", "not_admitted")}


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """What a mix did to the results cache: its misses are computed answers (at 1M users most
    are known users asked for the first time, whose cost is the uncached path's)."""
    delta: dict[str, Any] = {key: after[key] - before[key] for key in before}
    lookups = delta["hits"] + delta["misses"]
    delta["hit_rate"] = round(delta["hits"] / lookups, 4) if lookups else None
    return delta


def ratio_of(rec: dict[str, Any], health: dict[str, Any]) -> dict[str, float]:
    """Throughput and p99 of a /recommend mix relative to /health's measured just before, and
    /health's server CPU per request over the mix's (the throughput ratio of a server that has
    a core to itself: what the first ratio tends to on an idle machine, if the server limits)."""
    return {
        "throughput_over_health": round(rec["throughput_rps"] / health["throughput_rps"], 3),
        "p99_over_health_p99": round(rec["p99_ms"] / max(health["p99_ms"], 1e-9), 3),
        "health_cpu_over_recommend_cpu": round(
            health["server_cpu_ms_per_request"] / max(rec["server_cpu_ms_per_request"], 1e-9), 3
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]  # numbers mean little without it
    bodies, _ = user_mix(args.processed, args.requests, args.seed)
    users = split_users(args.processed, args.distinct, args.compare, args.batch_runs, args.seed)
    uncached = [{"user_id": u, "topk": 10} for u in users["uncached"]]
    peer = [{"user_id": u, "topk": 10} for u in users["peer"]]
    mixes: dict[str, Any] = {}
    server = ServerProcess(args.processed, args.registry, args.workers, args.port)
    try:
        startup = server.wait_ready()
        health = f"{server.url}/health"
        recommend = f"{server.url}/recommend"
        asyncio.run(load(health, "GET", [None] * 500, args.concurrency))  # connections
        health_u = measured(server, health, "GET", [None] * args.requests, args.concurrency)
        rec_u = measured(server, recommend, "POST", uncached, args.concurrency)
        mixes["uncached"] = {"health": health_u, "recommend": rec_u, **ratio_of(rec_u, health_u)}
        ours_peer = measured(server, recommend, "POST", peer, args.concurrency)
        for _ in range(2):  # warm the mix; twice: cache.admission repeat stores a second visit
            asyncio.run(load(recommend, "POST", bodies[:500], args.concurrency))
        health_c = measured(server, health, "GET", [None] * args.requests, args.concurrency)
        before = results_counters(server.url)
        rec_c = measured(server, recommend, "POST", bodies, args.concurrency)
        mixes["cached"] = {"health": health_c, "recommend": rec_c, **ratio_of(rec_c, health_c)}
        if args.workers == 1:  # /cache_stats answers for the worker that serves it
            mixes["cached"]["results_cache"] = counter_delta(before, results_counters(server.url))
        batch_ms, batch_wall = [], []
        for run_index in range(args.batch_runs):
            batch_users = users["batch"][run_index * 1000 : (run_index + 1) * 1000]
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
    finally:
        server.stop()
    reference = ReferenceApp(args.processed, args.registry, args.port and args.port + 1)
    try:
        reference.wait_ready()
        ref_url = f"{reference.url}/recommend"
        asyncio.run(load(ref_url, "POST", peer[:200], args.concurrency))  # connections, imports
        theirs = measured(reference, ref_url, "POST", peer, args.concurrency)
    finally:
        reference.stop()
    engine = engine_times(args.processed, args.registry, users, args.engine_users)
    return {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "load_average_1_5_15": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "startup_to_ready_s": round(startup, 3),
        "mixes": mixes,
        "peer": {
            "users": len(peer),
            "ours": ours_peer,
            "implicit_reference": theirs,
            "ours_over_reference": round(ours_peer["throughput_rps"] / theirs["throughput_rps"], 3),
            "reference_cpu_over_ours": round(
                theirs["server_cpu_ms_per_request"]
                / max(ours_peer["server_cpu_ms_per_request"], 1e-9),
                3,
            ),
        },
        "batch_1000_uncached_server_ms": {
            "first": batch_ms[0],
            "median": round(statistics.median(batch_ms), 3),
            "min": min(batch_ms),
        },
        "batch_1000_client_ms_median": round(statistics.median(batch_wall), 3),
        "engine_in_process": engine,
        "worker_rss_mb": memory,
    }


def engine_only(args: argparse.Namespace) -> int:
    """``--engine-only``: the in-process engine measurement of :func:`run` and its targets."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    users = split_users(args.processed, args.distinct, args.compare, args.batch_runs, args.seed)
    engine = engine_times(args.processed, args.registry, users, args.engine_users)
    after = [round(x, 2) for x in os.getloadavg()]
    report = {"load_average_1_5_15": {"before": load_before, "after": after}}
    report["engine_in_process"] = engine
    print(json.dumps(report, indent=2))
    ok = {
        "batch <= 1/5 of one by one (engine)": engine["batch_over_one_by_one"] <= 0.2,
        _engine_target(args): engine.get("known_ms_per_user", 1e9) <= _engine_ms(args),
    }
    report_targets(ok, report, args.json)
    return 0


def _engine_ms(args: argparse.Namespace) -> float:
    """Issue 12's engine target per uncached known user: 0.25 ms (demo), 2 ms at 50K products."""
    return SCALE_ENGINE_MS if args.scale else ENGINE_MS


def _engine_target(args: argparse.Namespace) -> str:
    return f"engine <= {_engine_ms(args):g} ms per uncached known user"


def _startup_s(args: argparse.Namespace) -> float:
    """Ready after start-up: 5 s on the demo shop, 15 s on the 1M × 50K shop (issue 12)."""
    return SCALE_STARTUP_S if args.scale else STARTUP_S


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shop_arguments(parser)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--distinct", type=int, default=20000, help="users of the uncached mix")
    parser.add_argument("--compare", type=int, default=2000, help="users of the peer comparison")
    parser.add_argument("--engine-users", type=int, default=2000, help="users per segment timed")
    parser.add_argument("--batch-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="the server's port, the reference app's is the next one (default: free ports)",
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="only the in-process engine times (no server, no HTTP): seconds instead of minutes",
    )
    args = parser.parse_args()
    resolve_shop(args)
    if args.engine_only:
        return engine_only(args)
    report = run(args)
    print(json.dumps(report, indent=2))
    uncached, cached = report["mixes"]["uncached"], report["mixes"]["cached"]
    engine = report["engine_in_process"]
    ok = {
        "uncached /recommend >= 0.5x /health": uncached["throughput_over_health"] >= 0.5,
        "uncached p99 <= 3x /health p99": uncached["p99_over_health_p99"] <= 3,
        "cached /recommend >= 0.8x /health": cached["throughput_over_health"] >= 0.8,
        "cached p99 <= 2x /health p99": cached["p99_over_health_p99"] <= 2,
        "uncached >= 1.0x the implicit reference": report["peer"]["ours_over_reference"] >= 1.0,
        "batch 1000 uncached < 100 ms": report["batch_1000_uncached_server_ms"]["median"] < 100,
        "batch <= 1/5 of one by one (engine)": engine["batch_over_one_by_one"] <= 0.2,
        _engine_target(args): engine.get("known_ms_per_user", 1e9) <= _engine_ms(args),
        f"startup < {_startup_s(args):g} s": report["startup_to_ready_s"] < _startup_s(args),
    }
    report_targets(ok, report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
