"""Drain-then-stop on SIGTERM, so that a rolling restart loses no request.

Uvicorn's own SIGTERM handling stops accepting at once: connections a load balancer already
queued in the listen backlog, and requests sent on idle keep-alive connections, are reset. Here,
inside the worker (``uvicorn service.api:app``, ``--workers N``, or gunicorn's UvicornWorker all
run the app in a uvicorn ``Server``), SIGTERM first starts a drain period of
``shutdown.drain_seconds``:

1. at once ``/health`` answers 503 ``"draining"`` (the load balancer takes the instance out of
   rotation) and every response carries ``Connection: close`` (keep-alive clients reconnect,
   through the balancer, elsewhere), while every request is still served;
2. when the period ends the worker accepts what the kernel already queued in the listen backlog
   (a busy worker can be hundreds of milliseconds behind; at most another drain period), stops
   accepting, finishes what it has, and exits 0.

A second SIGTERM skips the rest of the drain period; SIGINT (Ctrl-C) keeps uvicorn's immediate
behaviour. :meth:`Drain.install` runs in the app's lifespan, where uvicorn has installed its
signal handler: it takes SIGTERM over from that handler's server (and does nothing under servers
it does not know, e.g. the test client).
"""

from __future__ import annotations

import asyncio
import logging
import select
import signal
import threading
import time
from types import FrameType
from typing import Any

from starlette.types import Message, Send

logger = logging.getLogger(__name__)

# Loop iterations the stop waits, once no connection is queued, before uvicorn closes the
# listener: accepted connections get their request read (accept -> transport -> first read), so
# uvicorn's shutdown does not close them as idle.
ACCEPT_PASSES = 4


class Drain:
    """This worker's drain state; ``install`` connects it to uvicorn's server."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started_at: float | None = None  # wall clock of the SIGTERM that began the drain
        self._server: Any = None  # uvicorn.Server: its ``should_exit`` stops it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def reason(self) -> str:
        """What /health says while draining."""
        left = 0.0 if self.started_at is None else self.started_at + self.seconds - time.time()
        return (
            f"shutting down (SIGTERM): this worker stops accepting connections in "
            f"{max(0.0, left):.1f} s (shutdown.drain_seconds); send new requests elsewhere"
        )

    def install(self) -> bool:
        """Take SIGTERM over from the uvicorn server running this app; False when there is none."""
        if threading.current_thread() is not threading.main_thread():
            return False  # signals are the main thread's: an app run by a test client
        current = signal.getsignal(signal.SIGTERM)
        server = getattr(current, "__self__", None)
        if server is None or not hasattr(server, "should_exit"):
            logger.info("SIGTERM is not handled by a uvicorn server: no drain period")
            return False
        self._server, self._loop = server, asyncio.get_running_loop()
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._begin)  # the handler itself only hands over

    def _begin(self) -> None:
        if self.draining:
            logger.warning("second SIGTERM: stopping now, without the rest of the drain period")
            if self._timer is not None:
                self._timer.cancel()
            self._schedule_stop()
            return
        self.started_at = time.time()
        logger.info(
            "SIGTERM: draining for %.1f s (/health answers 503, requests are still served), "
            "then no new connections",
            self.seconds,
        )
        assert self._loop is not None
        self._timer = self._loop.call_later(self.seconds, self._schedule_stop)

    def _schedule_stop(self) -> None:
        if self._stopping is None:
            assert self._loop is not None
            self._stopping = self._loop.create_task(self._stop())

    async def _stop(self) -> None:
        """Accept what the kernel queued before the end, then let uvicorn stop accepting."""
        patience = max(1.0, self.seconds)
        deadline = time.monotonic() + patience
        listeners = _listeners(self._server)
        while listeners and _queued(listeners):
            if time.monotonic() > deadline:
                logger.warning(
                    "connections still arrive %.1f s after the drain period: whatever is queued "
                    "now is reset. Take the instance out of rotation sooner, or raise "
                    "shutdown.drain_seconds.",
                    patience,
                )
                break
            await asyncio.sleep(0.005)
        for _ in range(ACCEPT_PASSES):  # accepted connections: their requests are read
            await asyncio.sleep(0)
        logger.info("drain period over: no new connections; finishing the requests in progress")
        # should_exit, not uvicorn's handle_exit: that one re-raises SIGTERM after the shutdown,
        # and a worker that drained completely exits 0 (gunicorn would log a killed worker)
        self._server.should_exit = True


def _listeners(server: Any) -> list[Any]:
    """The listening sockets of a uvicorn server (empty when it has none we can see)."""
    try:
        return [sock for listener in server.servers for sock in listener.sockets]
    except (AttributeError, TypeError):
        return []


def _queued(listeners: list[Any]) -> bool:
    """True while a connection waits in a listen backlog (the listening socket is readable)."""
    try:
        return bool(select.select(listeners, [], [], 0)[0])
    except (OSError, ValueError):  # closed meanwhile
        return False


def closing(send: Send) -> Send:
    """``send`` with ``Connection: close`` on the response start (while draining, so that no
    keep-alive connection is idle, and reset, when the worker stops accepting)."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return send_closing
