"""Multi-worker deployment: uvicorn --workers and gunicorn + UvicornWorker drain on SIGTERM.

A real server with two workers gets concurrent load (single and batch recommendations); SIGTERM goes
to the master while requests are in flight. Every request sent before the signal must complete with
200 and the master must exit 0, taking its workers with it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.fixtures.live_server import Server, live_server

pytestmark = pytest.mark.slow

CLIENTS = 4
FINAL_BATCH = 1000  # users in each client's last request: slow enough to be in flight


def user_ids(processed_dir: Path) -> list[str]:
    mappings = json.loads((processed_dir / "user_item_mappings.json").read_text())
    return [str(u) for u in mappings["user_ids"]]


def make_client(
    server: Server, users: list[str], n: int
) -> Callable[[requests.Session], requests.Response]:
    """Client ``n``: even clients send single requests, odd ones batches of 50 users."""

    def send(session: requests.Session) -> requests.Response:
        if n % 2:
            start = (n * 50 + int(time.monotonic() * 1000)) % (len(users) - 50)
            payload = {"user_ids": users[start : start + 49] + ["new-visitor"], "topk": 10}
            return session.post(f"{server.url}/batch_recommend", json=payload, timeout=30)
        user = users[(n * 7 + int(time.monotonic() * 1000)) % len(users)]
        return session.post(f"{server.url}/recommend", json={"user_id": user}, timeout=30)

    return send


def drain_under_load(server: Server, users: list[str]) -> tuple[list[dict], int, float]:
    """Load the server, then SIGTERM the master while every client's last, slow request is served.

    Each client ends with one batch of ``FINAL_BATCH`` users. SIGTERM goes out once all of them were
    sent and had time to reach the server, so exactly ``CLIENTS`` requests are in flight (a request
    still unread in a keep-alive socket when the signal lands is not in flight for any server).
    """
    final = threading.Event()
    sent = threading.Barrier(CLIENTS + 1)
    results: list[dict] = []

    def client(n: int) -> None:
        send = make_client(server, users, n)
        with requests.Session() as session:
            while not final.is_set():
                results.append(timed(lambda: send(session), n))
            payload = {"user_ids": users[:FINAL_BATCH], "topk": 20}
            sent.wait(10)
            results.append(
                timed(
                    lambda: session.post(f"{server.url}/batch_recommend", json=payload, timeout=30),
                    n,
                    final=True,
                )
            )

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    final.set()
    sent.wait(10)
    time.sleep(0.01)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    try:
        code = server.process.wait(25)
    except Exception:  # noqa: BLE001 - reported by the assertion below
        code = None
    for result in results:  # times relative to the signal, for the assertions and messages
        result["began"] = round(result["began"] - signalled, 3)
        result["ended"] = round(result["ended"] - signalled, 3)
    return results, code, time.monotonic() - signalled


def timed(call: Callable[[], requests.Response], client: int, final: bool = False) -> dict:
    """Run one request; its status (or the exception) and start/end times."""
    began = time.monotonic()
    status: int | str
    try:
        status = call().status_code
    except requests.RequestException as exc:
        status = f"error:{type(exc).__name__}: {exc}"
    ended = time.monotonic()
    return {"status": status, "client": client, "final": final, "began": began, "ended": ended}


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


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_sigterm_drains_in_flight_requests(
    kind: str, embedded_dir: Path, registry_dir: Path, tmp_path: Path
) -> None:
    users = user_ids(embedded_dir)
    with live_server(embedded_dir, registry_dir, log_dir=tmp_path, kind=kind, workers=2) as server:
        for _ in range(10):  # both workers are up: a few answers in a row
            assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        results, code, waited = drain_under_load(server, users)
        time.sleep(0.5)
        left_behind = group_members(server.process.pid)
        log = server.log_text()
    failed = [r for r in results if r["status"] != 200]
    finals = [r for r in results if r["final"]]
    assert len(finals) == CLIENTS
    assert any(r["ended"] > 0 for r in finals), (
        f"every last request ended before SIGTERM: the test proved nothing {finals}"
    )
    assert len(results) > 20
    assert failed == [], f"{len(failed)} of {len(results)} requests failed: {failed[:3]}\n{log}"
    assert code == 0, f"{kind} master exited with {code} after {waited:.1f}s\n{log[-3000:]}"
    assert waited < 20
    assert left_behind == [], "processes survived their master"
