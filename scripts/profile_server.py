"""Profile the server process while it answers uncached (or, ``--cached``, cached) ``/recommend``
or ``POST /events`` (cProfile inside uvicorn).

Usage::

    python scripts/profile_server.py [--processed data/processed] [--registry artifacts/cf]
        [--endpoint recommend|events] [--users 3000] [--concurrency 16] [--top 40]
        [--out server.prof] [--cached] [--port 18100]

Runs ``service.api:app`` under ``uvicorn.Server`` in this process with cProfile on in the event
loop's thread (where ``/recommend`` runs), drives it from a separate client process with distinct
known users (``benchmark_serving.split_users``: every request a cache miss, warm-up off), then
prints the functions by cumulative and by own time (``--clock thread``: CPU time of the loop's
thread; ``wall``: elapsed time). Where the time of a request goes in the service layer
(middleware, metrics, parsing, response building) is what the in-process engine numbers of
``benchmark_serving.py`` cannot show.

``--endpoint events`` POSTs ``--users`` single events (unique ids, a SQLite store in a temporary
folder) instead, and also prints the whole process's CPU per request (the loop's thread plus the
store's writer thread, which cProfile does not see).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from _client import DEFAULT_PROCESSED_DIR, DEFAULT_REGISTRY_DIR
from _server import HOST, REPO, free_port

_CLIENT = """
import asyncio, json, sys
sys.path.insert(0, {scripts!r})
from benchmark_serving import load
bodies = json.loads(sys.stdin.read())
print(json.dumps(asyncio.run(load({url!r}, "POST", bodies, {concurrency}))))
"""
_EVENTS_CLIENT = """
import asyncio, json, sys, time
import aiohttp
sys.path.insert(0, {scripts!r})
from _client import percentile
bodies = json.loads(sys.stdin.read())
async def main():
    queue, latencies, errors = iter(bodies), [], 0
    headers = {{"X-Ingest-Token": {token!r}, "Content-Type": "application/json"}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit={concurrency})) as s:
        async def worker():
            nonlocal errors
            for body in queue:
                started = time.perf_counter()
                async with s.post({url!r}, data=json.dumps(body), headers=headers) as r:
                    await r.read()
                    errors += r.status != 202
                latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range({concurrency})))
        wall = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {{"requests": len(ms), "errors": errors, "throughput_rps": round(len(ms) / wall, 1),
            "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3)}}
print(json.dumps(asyncio.run(main())))
"""
TOKEN = "profile-server-token"


def _drive(url: str, bodies: list[dict], concurrency: int) -> dict:
    template = _EVENTS_CLIENT if url.endswith("/events") else _CLIENT
    code = template.format(
        scripts=str(REPO / "scripts"), url=url, concurrency=concurrency, token=TOKEN
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(bodies), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"client failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=REPO / DEFAULT_PROCESSED_DIR)
    parser.add_argument("--registry", type=Path, default=REPO / DEFAULT_REGISTRY_DIR)
    parser.add_argument("--endpoint", choices=("recommend", "events"), default="recommend")
    parser.add_argument("--users", type=int, default=3000, help="requests (distinct users)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None, help="also write the pstats file here")
    parser.add_argument("--clock", choices=("thread", "wall"), default="thread")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cached",
        action="store_true",
        help="profile cached answers: the first 200 users asked again and again",
    )
    args = parser.parse_args()
    os.environ.update(
        RECSYS_PATHS__PROCESSED_DIR=str(args.processed.resolve()),
        RECSYS_PATHS__REGISTRY_DIR=str(args.registry.resolve()),
        RECSYS_LOGGING__LEVEL="WARNING",
        RECSYS_WARMUP__ENABLED="false",
        RECSYS_INGEST_TOKEN=TOKEN,
    )
    tmp = tempfile.TemporaryDirectory(prefix="profile-server-")
    os.environ.setdefault("RECSYS_EVENTS__SQLITE_PATH", str(Path(tmp.name) / "events.sqlite3"))
    import uvicorn
    import uvloop
    from benchmark_serving import split_users

    from service.api import create_app

    if args.endpoint == "events":
        path = "/events"
        mappings = json.loads((args.processed / "user_item_mappings.json").read_text())
        items = [str(item) for item in mappings["item_ids"]]
        bodies: list[dict] = [
            {"event_id": f"p-{i}", "user_id": f"p-u{i // 25}", "product_id": items[i % len(items)],
             "type": "view"}
            for i in range(args.users + 200)
        ]  # fmt: skip
    else:
        path = "/recommend"
        users = split_users(args.processed, args.users, 0, 0, args.seed)["uncached"]
        bodies = [{"user_id": u, "topk": 10} for u in users]
    port = args.port or free_port()
    config = uvicorn.Config(
        create_app(), host=HOST, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    # CPU time of the loop's thread: on a shared machine wall time charges whatever runs while
    # this process waits for a core (a socket write that wakes the client, above all)
    profile = cProfile.Profile(time.thread_time if args.clock == "thread" else time.perf_counter)
    result: dict = {}
    loop: asyncio.AbstractEventLoop | None = None

    def client() -> None:
        base = f"http://{HOST}:{port}"
        for _ in range(2000):  # bounded: 20 s
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.01)
        _drive(f"{base}{path}", bodies[:200], args.concurrency)  # connections, first calls
        assert loop is not None
        loop.call_soon_threadsafe(profile.enable)
        measured = bodies[200:]
        if args.cached:  # the same 200 users again: every answer from the results cache
            measured = [bodies[i % 200] for i in range(len(bodies) - 200)]
        cpu = time.process_time()
        result.update(_drive(f"{base}{path}", measured, args.concurrency))
        result["process_cpu_s"] = round(time.process_time() - cpu, 3)
        loop.call_soon_threadsafe(profile.disable)
        time.sleep(0.2)
        server.should_exit = True

    async def serve() -> None:
        nonlocal loop
        loop = asyncio.get_running_loop()
        await server.serve()

    driver = threading.Thread(target=client, daemon=True)
    driver.start()
    uvloop.run(serve())
    driver.join(timeout=5)
    print(json.dumps(result))
    stats = pstats.Stats(profile)
    if args.out is not None:
        stats.dump_stats(str(args.out))
    total = stats.total_tt  # type: ignore[attr-defined]
    requests_done = max(1, result.get("requests", 1))
    print(f"profiled CPU {total:.2f} s = {total * 1000 / requests_done:.3f} ms per request")
    process = result.get("process_cpu_s", 0.0)
    print(f"process CPU {process:.2f} s = {process * 1000 / requests_done:.3f} ms per request")
    tmp.cleanup()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
