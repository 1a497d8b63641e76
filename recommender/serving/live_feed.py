"""Keeps the serving model's :class:`LiveState` current from the shared event store.

Two ways in, so that an event acknowledged by any worker shows in the next answer of every
worker: a tail thread, and each request calls :meth:`LiveFeed.sync`, which catches up at once
when the store's latest sequence is ahead. The tail checks the store's cheap sequence hint
(SQLite: a shared counter in memory; Redis: one GET) every ``TAIL_CHECK_SECONDS`` and reads as
soon as it is ahead, so a worker that serves nobody still learns of another worker's events
within tens of milliseconds; every ``events.poll_interval_seconds`` it also reads the store
whatever the hint says (a missing hint file, product updates) and reports the lag.
The store being unavailable never fails a request: the answer comes from the model and what live
state already holds, the degradation is logged (once per outage) and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from recommender.config.serving import EventsSettings
from recommender.errors import StoreUnavailableError
from recommender.events.store import EventStore
from recommender.serving.live_state import LiveState

log = logging.getLogger(__name__)
TAIL_CHECK_SECONDS = 0.02  # how often the tail reads the sequence hint between full polls


class LiveFeed:
    """One per process: the store, the live state being fed, and the tail thread."""

    def __init__(
        self,
        store: EventStore,
        settings: EventsSettings,
        on_store_error: Callable[[str], None] | None = None,
        on_lag: Callable[[int | None], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._on_store_error = on_store_error
        self._on_lag = on_lag
        self.state: LiveState | None = None
        self.degraded = 0  # requests / polls answered without the store
        self.store_errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, state: LiveState) -> None:
        """Replay the store into ``state`` (events since the model's cut-off), then feed it."""
        self._catch_up(state)
        self.state = state

    def sync(self, state: LiveState | None = None) -> None:
        """Catch ``state`` (default: the attached one) up if the store is ahead; never raises."""
        state = state or self.state
        if state is None:
            return
        try:
            state.sync(self.store)
        except StoreUnavailableError as exc:
            self._failed(exc, "answering from the model and live state so far")
            self.degraded += 1
            if self._on_store_error is not None:
                self._on_store_error("read")
        else:
            self._recovered()

    def lag(self) -> int | None:
        """Store latest sequence minus the applied cursor (None when the store is unreachable)."""
        state = self.state
        if state is None:
            return None
        try:
            return max(0, self.store.latest_seq() - state.cursor)
        except StoreUnavailableError:
            return None

    def _catch_up(self, state: LiveState) -> None:
        try:
            state.catch_up(self.store)
        except StoreUnavailableError as exc:
            self._failed(exc, "live state will catch up when it is back")
        else:
            self._recovered()

    def _failed(self, exc: StoreUnavailableError, consequence: str) -> None:
        self.store_errors += 1
        message = str(exc)
        if self.last_error is None:
            log.warning("event store unavailable (%s): %s", consequence, message)
        self.last_error = message

    def _recovered(self) -> None:
        if self.last_error is not None:
            log.info("event store available again; live state caught up")
            self.last_error = None

    def start(self) -> None:
        """Start the tail thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        interval = self.settings.poll_interval_seconds

        def loop() -> None:
            while not self._stop.is_set():
                state = self.state
                if state is None:
                    self._stop.wait(interval)
                    continue
                self._follow(state, interval)
                if self._stop.is_set():
                    return
                try:
                    self._catch_up(state)
                    if self._on_lag is not None:
                        self._on_lag(self.lag())
                except Exception:  # noqa: BLE001 - the tail must outlive any bad record
                    log.exception("live event tail failed")

        self._thread = threading.Thread(target=loop, name="recsys-event-tail", daemon=True)
        self._thread.start()

    def _follow(self, state: LiveState, seconds: float) -> None:
        """For ``seconds``: catch up whenever the sequence hint is ahead of ``state``.

        :meth:`LiveState.sync` reads the hint and the store only when it is ahead; a store that
        fails is left alone for the rest of the period (the full poll after it logs and counts).
        """
        deadline = time.monotonic() + seconds
        while not self._stop.wait(min(TAIL_CHECK_SECONDS, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self.state is not state:  # or a reload swapped it
                return
            try:
                if state.sync(self.store):
                    self._recovered()
            except StoreUnavailableError:
                self._stop.wait(max(0.0, deadline - time.monotonic()))
                return
            except Exception:  # noqa: BLE001 - the tail must outlive any bad record
                log.exception("live event tail failed")
                self._stop.wait(max(0.0, deadline - time.monotonic()))
                return

    def stop(self) -> None:
        """Stop the tail thread (the store is closed by its owner)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
