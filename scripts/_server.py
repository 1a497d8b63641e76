"""Start a real server on a free loopback port, as an operator would, and stop it cleanly.

Shared by ``benchmark_serving.py``, ``deployment_report.py`` and the tests'
``tests/fixtures/live_server.py``, so all three run the same command lines with the same
environment: ``uvicorn service.api:app`` or gunicorn with uvicorn workers, pointed at the artifacts
through ``RECSYS_PATHS__*`` variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import requests

REPO = Path(__file__).resolve().parents[1]
APP = "service.api:app"
HOST = "127.0.0.1"
UVICORN_WORKER = "uvicorn.workers.UvicornWorker"
GUNICORN_CONFIG = REPO / "config" / "gunicorn.conf.py"
KINDS = ("uvicorn", "gunicorn")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(
    kind: str,
    port: int,
    workers: int,
    *,
    gunicorn_config: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The operator's command line for ``kind`` (uvicorn | gunicorn), bound to localhost.

    gunicorn runs the checklist's plain command, or with ``-c gunicorn_config`` the production one.
    """
    if kind == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", APP, "--host", HOST, "--port", str(port)]
        command += ["--workers", str(workers)]
    elif kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn"]
        if gunicorn_config is not None:
            command += ["-c", str(gunicorn_config)]
        command += [APP, "-w", str(workers), "-k", UVICORN_WORKER, "-b", f"{HOST}:{port}"]
        command += ["--no-control-socket"]
    else:
        raise ValueError(f"unknown server kind {kind!r} (expected one of {', '.join(KINDS)})")
    return command + list(extra)


def server_env(
    processed_dir: Path,
    registry_dir: Path,
    extra: Mapping[str, str] | None = None,
    *,
    drop_prefix: str = "RECSYS_",
) -> dict[str, str]:
    """This environment without ``drop_prefix*`` variables, plus the artifact paths and ``extra``.

    ``drop_prefix="RECSYS_PATHS__"`` keeps the caller's other ``RECSYS_*`` settings.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefix)}
    env.update(
        RECSYS_PATHS__PROCESSED_DIR=str(Path(processed_dir).resolve()),
        RECSYS_PATHS__REGISTRY_DIR=str(Path(registry_dir).resolve()),
        PYTHONPATH=str(REPO),
    )
    env.update(extra or {})
    return env


class ServerProcess:
    """A server started in its own process group (so :meth:`stop` reaches every worker)."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        port: int,
        *,
        stdout: int | IO[bytes] = subprocess.DEVNULL,
        stderr: int | IO[bytes] = subprocess.DEVNULL,
    ) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env=dict(env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    def wait_ready(
        self, timeout: float = 120.0, *, require_ready: bool = True, interval: float = 0.05
    ) -> float:
        """Seconds from process start until /health answers (200 when ``require_ready``).

        Raises RuntimeError when the process exits first or nothing answers within ``timeout``.
        """
        deadline = self.started + timeout
        last = "no answer"
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                status = requests.get(f"{self.url}/health", timeout=2).status_code
                if status == 200 or not require_ready:
                    return time.perf_counter() - self.started
                last = f"/health {status}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(interval)
        raise RuntimeError(f"server not up after {timeout}s ({last})")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the master, wait, then kill its process group if anything is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        try:  # workers left behind by a crashed master
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.process.returncode
