"""In-process CPU per request of the service layer: the ASGI app called directly, no sockets.

Usage::

    python scripts/benchmark_asgi.py [--processed data/processed] [--registry artifacts/cf]
        [--rounds 8] [--per-round 300] [--seed 7] [--json out.json]

Why: on a shared machine throughput and even the server's CPU per request move with whatever
else runs, while the CPU time of this thread over a few hundred requests, the best of several
interleaved rounds, hardly does. ``service.api:app`` (the config files' settings, warm-up off)
gets uvicorn's scope and one-message body; each round measures, in turn, ``GET /health``,
``/recommend`` of the load test's mixed traffic (warm: mostly results-cache hits), uncached known
users (each asked once) and the same number of other uncached users through
``Engine.recommend`` alone, so ``uncached - engine`` is what the HTTP layer adds to a miss.
``python_calls_per_request`` (one cProfile pass of each kind at the end) counts the Python
function calls of a request: a measure of the layer's work that no other job on the machine
moves.
Run the old and the new tree (``PYTHONPATH``) one after the other to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from _client import DEFAULT_PROCESSED_DIR, DEFAULT_REGISTRY_DIR


def _scope(method: str, path: str, body: bytes | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if body is not None:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def _call(app: Any, method: str, path: str, body: bytes | None) -> int:
    message = {"type": "http.request", "body": body or b"", "more_body": False}
    status = 0

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        nonlocal status
        if sent["type"] == "http.response.start":
            status = sent["status"]

    await app(_scope(method, path, body), receive, send)
    return status


async def _cpu_us(app: Any, method: str, path: str, bodies: list[bytes | None]) -> float:
    """CPU µs of this thread per request over ``bodies`` (every answer must be a 200)."""
    started = time.thread_time()
    for body in bodies:
        status = await _call(app, method, path, body)
        if status != 200:
            raise SystemExit(f"{method} {path} answered {status}: {body!r}")
    return (time.thread_time() - started) * 1e6 / len(bodies)


async def _calls(app: Any, method: str, path: str, bodies: list[bytes | None]) -> float:
    """Python function calls per request (cProfile's count): unlike time, the same on a loaded
    and an idle machine."""
    profile = cProfile.Profile()
    profile.enable()
    for body in bodies:
        await _call(app, method, path, body)
    profile.disable()
    return pstats.Stats(profile).total_calls / len(bodies)  # type: ignore[attr-defined]


def _engine_us(engine: Any, users: list[str]) -> float:
    options = engine.options(topk=10)
    started = time.thread_time()
    for user in users:
        engine.recommend(user, options)
    return (time.thread_time() - started) * 1e6 / len(users)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(
        RECSYS_PATHS__PROCESSED_DIR=str(args.processed.resolve()),
        RECSYS_PATHS__REGISTRY_DIR=str(args.registry.resolve()),
        RECSYS_LOGGING__LEVEL="WARNING",
        RECSYS_WARMUP__ENABLED="false",
    )
    from benchmark_serving import split_users, user_mix

    from service.api import create_app

    mix, _ = user_mix(args.processed, 2000, args.seed)
    need = (2 * args.rounds + 1) * args.per_round + 200
    users = split_users(args.processed, need, 0, 0, args.seed)["uncached"]
    if len(users) < need:
        raise SystemExit(f"{len(users)} distinct users, {need} needed: lower --rounds/--per-round")
    app = create_app()
    load_before = [round(x, 2) for x in os.getloadavg()]
    async with app.router.lifespan_context(app):
        engine = app.state.holder.require().engine
        mixed = [orjson.dumps(b) for b in mix]
        for body in mixed:  # warm: the mix's repeat visitors are now cached
            await _call(app, "POST", "/recommend", body)
        await _call(app, "POST", "/recommend", mixed[0])
        for user in users[:200]:  # first calls out of the measurement
            await _call(app, "POST", "/recommend", orjson.dumps({"user_id": user, "topk": 10}))
        pool = users[200:]
        results: dict[str, list[float]] = {"health": [], "cached": [], "uncached": [], "engine": []}
        n = args.per_round
        for r in range(args.rounds):
            http_users = pool[2 * r * n : (2 * r + 1) * n]
            engine_users = pool[(2 * r + 1) * n : (2 * r + 2) * n]
            uncached = [orjson.dumps({"user_id": u, "topk": 10}) for u in http_users]
            gc.collect()
            results["health"].append(await _cpu_us(app, "GET", "/health", [None] * n))
            results["cached"].append(await _cpu_us(app, "POST", "/recommend", mixed[:n]))
            results["uncached"].append(await _cpu_us(app, "POST", "/recommend", uncached))
            results["engine"].append(_engine_us(engine, engine_users))
        rest = pool[2 * args.rounds * n :]
        unseen = [orjson.dumps({"user_id": u, "topk": 10}) for u in rest[:n]]
        calls = {
            "health": await _calls(app, "GET", "/health", [None] * n),
            "cached": await _calls(app, "POST", "/recommend", mixed[:n]),
            "uncached": await _calls(app, "POST", "/recommend", unseen),
        }
    report: dict[str, Any] = {"load_average_before": load_before}
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for name, values in results.items():
        report[f"{name}_us"] = {
            "min": round(min(values), 1),
            "median": round(statistics.median(values), 1),
        }
    report["python_calls_per_request"] = {name: round(c, 1) for name, c in calls.items()}
    report["uncached_minus_engine_us"] = round(min(results["uncached"]) - min(results["engine"]), 1)
    report["uncached_minus_health_minus_engine_us"] = round(
        report["uncached_minus_engine_us"] - min(results["health"]), 1
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path(DEFAULT_PROCESSED_DIR))
    parser.add_argument("--registry", type=Path, default=Path(DEFAULT_REGISTRY_DIR))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
