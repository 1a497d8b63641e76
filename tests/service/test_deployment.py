"""Drain-then-stop: SIGTERM under steady load loses no request, for every supported server.

A real server (uvicorn with 1 and 2 workers, gunicorn with ``config/gunicorn.conf.py``) gets a
steady stream of requests from a client that records every one: ~``RATE`` per second on a new
connection each (some of them batches), ``KEEPALIVE_CLIENTS`` keep-alive sessions, a /health
poller, and two large batches sent just before the drain period ends, so they are in flight when
the worker stops accepting. SIGTERM goes to the master; the client keeps sending until ``AFTER``
seconds past the drain period. Every request sent before the drain period ended must answer 200
(none lost or reset), /health must turn 503 ``draining`` at once, keep-alive answers during the
drain must say ``Connection: close``, and the master must exit 0 with its workers gone.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.live_server import Server, live_server

pytestmark = pytest.mark.slow

DRAIN = 1.5  # shutdown.drain_seconds of these servers
RATE = 100  # requests per second on a new connection each
KEEPALIVE_CLIENTS = 2  # sessions reusing one connection, ~KEEPALIVE_RATE requests per second each
KEEPALIVE_RATE = 10
STEADY = 1.0  # seconds of load before SIGTERM
AFTER = 0.5  # seconds the client keeps sending after the drain period
# uvicorn's multi-process master relays SIGTERM to its workers from a loop that wakes every 0.5 s
SIGNAL_LAG = {"uvicorn": 0.6, "gunicorn-conf": 0.3}


@dataclass
class Sent:
    """One recorded request: what, when its last byte was sent and when it ended (seconds after
    SIGTERM), its outcome. ``sent`` is taken after ``sendall`` returned: the request was then in
    the server's socket buffers (the moment the client's own scheduling delays no longer count)."""

    kind: str
    sent: float
    ended: float
    status: int | str
    connection: str | None = None
    health: str | None = None


class Load:
    """The client: paced requests on threads (``http.client``), every one recorded."""

    def __init__(self, server: Server, users: list[str]) -> None:
        self.server, self.users = server, users
        self.results: list[Sent] = []
        self.stop = threading.Event()
        self.signalled = 0.0  # monotonic, for the request times
        self.signalled_wall = 0.0  # epoch, for the server's log times
        self._n = 0
        self._lock = threading.Lock()

    def _send(self, kind: str, conn: HTTPConnection, method: str, path: str, body: Any) -> None:
        """One request on ``conn`` (which reconnects when the last answer closed it)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        if kind != "keepalive":
            headers["Connection"] = "close"
        sent = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=headers)
            sent = time.monotonic()
            response = conn.getresponse()
            payload = response.read()
            record = Sent(kind, sent, time.monotonic(), response.status)
            record.connection = response.getheader("connection")
            if kind == "health":
                record.health = json.loads(payload).get("status")
        except (OSError, HTTPException) as exc:
            conn.close()
            record = Sent(kind, sent, time.monotonic(), f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.results.append(record)

    def _connection(self) -> HTTPConnection:
        return HTTPConnection("127.0.0.1", self.server.port, timeout=20)

    def _payload(self) -> tuple[str, dict]:
        with self._lock:
            self._n += 1
            n = self._n
        if n % 10 == 0:
            start = n % (len(self.users) - 20)
            return "/batch_recommend", {"user_ids": self.users[start : start + 20], "topk": 10}
        user = self.users[(n * 7) % len(self.users)] if n % 3 else f"new-visitor-{n}"
        return "/recommend", {"user_id": user}

    def fresh(self) -> None:
        path, payload = self._payload()
        self._send("fresh", self._connection(), "POST", path, payload)

    def keepalive(self) -> None:
        conn = self._connection()
        while not self.stop.is_set():
            path, payload = self._payload()
            self._send("keepalive", conn, "POST", path, payload)
            time.sleep(1 / KEEPALIVE_RATE)
        conn.close()

    def health(self) -> None:
        while not self.stop.is_set():
            self._send("health", self._connection(), "GET", "/health", None)
            time.sleep(0.05)

    def final_batch(self) -> None:
        """A large batch sent just before the drain period ends: in flight when it ends."""
        payload = {"user_ids": self.users[:1000], "topk": 20}
        self._send("final", self._connection(), "POST", "/batch_recommend", payload)

    def run(self) -> tuple[int | None, float]:
        """Load, SIGTERM, keep loading past the drain period; the master's exit code and wait."""
        threads = [threading.Thread(target=self.keepalive) for _ in range(KEEPALIVE_CLIENTS)]
        threads.append(threading.Thread(target=self.health))
        with ThreadPoolExecutor(max_workers=48) as pool:
            for thread in threads:
                thread.start()
            started = time.monotonic()
            end = started + STEADY + DRAIN + AFTER
            signal_at, finals_at = started + STEADY, started + STEADY + DRAIN - 0.15
            n = 0
            while (now := time.monotonic()) < end:
                if self.signalled == 0.0 and now >= signal_at:
                    self.signalled = time.monotonic()
                    self.signalled_wall = time.time()
                    self.server.process.send_signal(signal.SIGTERM)
                if finals_at and now >= finals_at:
                    finals_at = 0.0
                    for _ in range(2):
                        pool.submit(self.final_batch)
                pool.submit(self.fresh)
                n += 1
                time.sleep(max(0.0, started + n / RATE - time.monotonic()))
            self.stop.set()
            for thread in threads:
                thread.join(30)
        try:
            code = self.server.process.wait(20)
        except Exception:  # noqa: BLE001 - reported by the assertion
            code = None
        for record in self.results:  # times relative to the signal
            record.sent, record.ended = record.sent - self.signalled, record.ended - self.signalled
        return code, time.monotonic() - self.signalled


def log_entries(log: str) -> list[dict]:
    """The server's JSON log lines, each with ``at`` (epoch seconds) parsed from ``time``."""
    entries = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        stamp = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        entry["at"] = stamp.replace(tzinfo=timezone.utc).timestamp()
        entries.append(entry)
    return entries


def user_ids(processed_dir: Path) -> list[str]:
    mappings = json.loads((processed_dir / "user_item_mappings.json").read_text())
    return [str(u) for u in mappings["user_ids"]]


def group_members(pgid: int) -> list[str]:
    """Command lines of live (non-zombie) processes in process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(f"{stat.parent.name}: {cmdline}")
    return members


def wait_for_every_worker(server: Server, workers: int, timeout: float = 60.0) -> None:
    """Until /health has answered 200 from ``workers`` distinct pids: a worker answers only once
    its startup (and with it the drain's SIGTERM handler) is done, and on a loaded machine the
    second worker can come up seconds after the first (a SIGTERM before that skips its drain)."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < workers and time.monotonic() < deadline:
        health = requests.get(f"{server.url}/health", headers={"Connection": "close"}, timeout=5)
        if health.status_code == 200:
            pids.add(health.json()["pid"])
        else:
            time.sleep(0.1)
    assert len(pids) == workers, f"only {len(pids)} of {workers} workers answered /health"


@pytest.mark.parametrize(
    ("kind", "workers"), [("uvicorn", 1), ("uvicorn", 2), ("gunicorn-conf", 2)]
)
def test_sigterm_under_load_loses_no_request(
    kind: str, workers: int, embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    users = user_ids(embedded_dir)
    env = {
        "RECSYS_SHUTDOWN__DRAIN_SECONDS": str(DRAIN),
        "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
    }
    with live_server(
        embedded_dir, registry_dir, log_dir=tmp_path, kind=kind, workers=workers, env=env
    ) as server:
        wait_for_every_worker(server, workers)
        load = Load(server, users)
        code, waited = load.run()
        time.sleep(0.5)
        left_behind = group_members(server.process.pid)
        log = server.log_text()
    results, lag = load.results, SIGNAL_LAG[kind]
    before_end = [r for r in results if r.sent < DRAIN]
    lost = [r for r in before_end if r.status != 200 and r.kind != "health"]
    assert lost == [], f"{len(lost)} of {len(before_end)} requests lost: {lost[:5]}\n{log[-4000:]}"
    during = [r for r in results if r.kind == "fresh" and 0 <= r.sent < DRAIN]
    assert len(during) > RATE * DRAIN / 2, "the load did not go on through the drain period"
    finals = [r for r in results if r.kind == "final"]
    assert [r.status for r in finals] == [200, 200], finals

    health = [r for r in results if r.kind == "health"]
    assert all(r.status == 200 and r.health == "ok" for r in health if r.ended < 0), health
    draining = [r for r in health if lag <= r.sent and r.ended < DRAIN]
    assert draining and all(r.status == 503 and r.health == "draining" for r in draining), health

    keepalive = [r for r in results if r.kind == "keepalive" and r.status == 200]
    assert all(r.connection != "close" for r in keepalive if r.ended < 0), keepalive
    closing = [r for r in keepalive if lag <= r.sent < DRAIN]
    assert closing and all(r.connection == "close" for r in closing), closing

    stops = [e for e in log_entries(log) if e["message"].startswith("drain period over")]
    assert len(stops) == workers, f"every worker stops once:\n{log[-3000:]}"
    assert all(e["at"] >= load.signalled_wall + DRAIN - 0.001 for e in stops), (
        "a worker stopped before the drain period ended",
        [e["at"] - load.signalled_wall for e in stops],
    )
    assert code == 0, f"{kind} master exited with {code} after {waited:.1f}s\n{log[-3000:]}"
    assert waited < DRAIN + AFTER + 10
    assert left_behind == [], "processes survived their master"
