"""Measure deployment options for DEPLOYMENT_OPTIMIZATION.md: workers, caches, memory, startup.

Usage::

    python scripts/deployment_report.py [--processed-dir data/processed]
        [--registry-dir artifacts/cf] [--total 500] [--concurrency 20] [--only NAME ...]

For each configuration it starts a real server on a free port (the operator's command line, with
``RECSYS_*`` overrides), times process start -> first /health 200, runs ``scripts/load_test.py``
(mixed users, after a warm-up) and reads every server process's RSS and PSS from /proc (Linux).
Prints one Markdown table; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _client import DEFAULT_PROCESSED_DIR, DEFAULT_REGISTRY_DIR
from _server import GUNICORN_CONFIG, REPO, ServerProcess, free_port, server_command, server_env

TINY_CACHES = {
    "RECSYS_CACHE__USER_PROFILE__MAX_SIZE": "1",
    "RECSYS_CACHE__ITEM_SIMILARITY__MAX_SIZE": "1",
    "RECSYS_CACHE__RESULTS__MAX_SIZE": "1",
    "RECSYS_WARMUP__ENABLED": "false",
}
CONFIGS = {  # name -> (server kind, workers, extra environment)
    "uvicorn-1": ("uvicorn", 1, {}),
    "uvicorn-2": ("uvicorn", 2, {}),
    "gunicorn-2": ("gunicorn", 2, {}),
    "uvicorn-1-no-warmup": ("uvicorn", 1, {"RECSYS_WARMUP__ENABLED": "false"}),
    "uvicorn-1-no-cache": ("uvicorn", 1, TINY_CACHES),
}


def memory_mib(pid: int) -> dict[str, float]:
    """RSS and PSS (shared pages split between the processes sharing them) of one process."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key.lower()] = round(int(rest.split()[0]) / 1024, 1)
    return values


def processes(master: int) -> list[int]:
    """The master and its descendants (workers), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [master], [master]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def measure(name: str, args: argparse.Namespace) -> dict:
    kind, workers, extra = CONFIGS[name]
    port = free_port()
    config = GUNICORN_CONFIG if kind == "gunicorn" else None
    server = ServerProcess(
        server_command(kind, port, workers, gunicorn_config=config),
        server_env(args.processed_dir, args.registry_dir, extra),
        port,
    )
    try:
        try:
            ready_s = server.wait_ready(120.0)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: server did not become ready ({exc})") from exc
        time.sleep(1.0 * workers)  # let every worker finish starting and warming up
        load = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "load_test.py"), "--port", str(port),
             "--host", "127.0.0.1", "--total", str(args.total), "--concurrency",
             str(args.concurrency), "--processed-dir", str(args.processed_dir)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        report = json.loads(load.stdout)
        memory = [memory_mib(pid) for pid in processes(server.process.pid)]
    finally:
        server.stop(60.0)
    return {"name": name, "ready_s": round(ready_s, 2), "report": report, "memory": memory}


def row(result: dict) -> str:
    r, lat = result["report"], result["report"]["latency_ms"]
    mem = result["memory"]
    total_pss = sum(m.get("pss", 0) for m in mem)
    biggest = max(mem, key=lambda m: m.get("rss", 0))
    return (
        f"| {result['name']} | {result['ready_s']} | {r['throughput_rps']} | {lat['p50']} | "
        f"{lat['p95']} | {lat['p99']} | {r['error_rate']:.2%} | {r['cache']['during']['hit_rate']} "
        f"| {len(mem)} | {biggest.get('rss')} | {round(total_pss, 1)} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed-dir", type=Path, default=REPO / DEFAULT_PROCESSED_DIR)
    parser.add_argument("--registry-dir", type=Path, default=REPO / DEFAULT_REGISTRY_DIR)
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args(argv)
    args.processed_dir, args.registry_dir = (
        args.processed_dir.resolve(),
        args.registry_dir.resolve(),
    )
    print(
        f"load: {args.total} requests, concurrency {args.concurrency}, mixed users; "
        f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}\n"
    )
    print("| config | ready s | req/s | p50 ms | p95 ms | p99 ms | errors | cache hit (window) "
          "| processes | max RSS MiB | total PSS MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.only:
        print(row(measure(name, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
