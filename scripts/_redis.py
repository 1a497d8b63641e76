"""A throw-away ``redis-server`` on a free loopback port, with durable settings.

Shared by ``benchmark_events.py`` and the tests' ``tests/fixtures/redis_server.py``. It runs
with ``appendonly yes`` + ``appendfsync always``: what production needs for an event store
ack to mean durable, so benchmarks measure the real cost.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from scripts._server import HOST, free_port

START_TIMEOUT_SECONDS = 10.0


@dataclass
class RedisServer:
    """A redis-server process that can be killed and restarted on the same port and data."""

    binary: str
    port: int
    directory: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server; returns once it answers PING."""
        command = [
            self.binary, "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(host=HOST, port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if client.ping():
                    client.close()
                    return
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: what acknowledged writes must survive (appendfsync always)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_redis_server(binary: str, directory: Path) -> RedisServer:
    """A started server on a free port keeping its data in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(binary, free_port(), directory)
    server.start()
    return server
