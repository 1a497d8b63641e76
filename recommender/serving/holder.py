"""Hot reload: one :class:`ModelHolder` per process owns the current (bundle, engine, caches).

A reload builds the new bundle off the request path and publishes it with one reference
assignment, so a request that already took :attr:`ModelHolder.state` finishes on the old model.
A failed load keeps the old state serving and is recorded in :attr:`ModelHolder.last_error`
(public text: paths relative to the configured roots; the log has the full message).
A background thread polls ``Registry.current_marker()`` so that *every* worker process (each has
its own holder) picks up a newly promoted model within ``reload.poll_interval_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from recommender.config.serving import ServingSettings
from recommender.errors import NotReadyError, RecsysError
from recommender.serving.allocator import release_free_heap
from recommender.serving.bundle import ModelBundle, load_bundle
from recommender.serving.caches import ServingCaches, WarmupReport
from recommender.serving.engine import Engine
from recommender.serving.live_feed import LiveFeed
from recommender.serving.live_state import LiveState
from recommender.serving.new_products import bundle_embedder
from recommender.serving.redaction import public_message, serving_roots

logger = logging.getLogger(__name__)

MIN_RETRY_SECONDS = 30.0  # a marker whose load failed is retried at most this often


@dataclass(frozen=True)
class ServingState:
    """What one model version serves with; replaced as a whole on reload."""

    bundle: ModelBundle
    engine: Engine
    caches: ServingCaches
    loaded_at: float


@dataclass(frozen=True)
class ReloadResult:
    """Outcome of one reload attempt."""

    ok: bool
    previous_model_id: str | None
    model_id: str | None
    seconds: float
    error: str | None = None
    finished_at: float = field(default_factory=time.time)  # epoch seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "previous_model_id": self.previous_model_id,
            "model_id": self.model_id,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "finished_at": self.finished_at,
        }


def _registry_marker(settings: ServingSettings) -> str | None:
    from recommender.registry import Registry

    return Registry(settings.paths.registry_dir).current_marker()


def _registry_current_id(settings: ServingSettings) -> str | None:
    from recommender.registry import Registry

    record = Registry(settings.paths.registry_dir).current()
    return None if record is None else record.model_id


class ModelHolder:
    """The process's current serving state, its reloads and its registry poller.

    ``on_reload`` (optional) is called with every :class:`ReloadResult`, success or failure, from
    whichever thread reloaded (request, poller or startup); the service counts reloads with it.
    """

    def __init__(
        self,
        settings: ServingSettings,
        loader: Callable[[ServingSettings], ModelBundle] = load_bundle,
        marker: Callable[[ServingSettings], str | None] = _registry_marker,
        current_id: Callable[[ServingSettings], str | None] = _registry_current_id,
        on_reload: Callable[[ReloadResult], None] | None = None,
        live_feed: LiveFeed | None = None,
    ) -> None:
        self.settings = settings
        self.live_feed = live_feed  # when set, every loaded model gets live state from the store
        self._loader = loader
        self._marker = marker
        self._current_id = current_id
        self._seen_marker: str | None = None
        self._state: ServingState | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._warmer: threading.Thread | None = None
        self._failed: tuple[str | None, float] | None = None
        self.started_at = time.time()
        self._on_reload = on_reload
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0  # successful loads, the startup load included
        self.reload_failures = 0
        self.last_success: ReloadResult | None = None
        self.last_failure: ReloadResult | None = None

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ServingState | None:
        """The current state (take it once per request and use that reference throughout)."""
        return self._state

    def require(self) -> ServingState:
        """The current state, or NotReadyError saying why there is none."""
        state = self._state
        if state is None:
            raise NotReadyError(self.not_ready_reason())
        return state

    def not_ready_reason(self) -> str:
        if self.last_error:
            return f"no model loaded: {self.last_error['message']}"
        return "no model loaded yet (startup in progress)"

    # ------------------------------------------------------------------ reload
    def reload(
        self,
        warm: bool = True,
        background_warmup: bool = True,
        preloaded: ModelBundle | None = None,
    ) -> ReloadResult:
        """Load the registry's current model and swap it in; on failure keep serving the old one.

        ``preloaded``: a bundle loaded before this process started serving (gunicorn's master
        loads one before it forks the workers, ``service/preload.py``), served instead of loading
        when it is still the registry's current model; engine, caches and live state are this
        holder's own either way.
        """
        result = self._reload(preloaded)
        if self._on_reload is not None:
            try:
                self._on_reload(result)
            except Exception:  # noqa: BLE001 - reporting must never undo a reload
                logger.exception("reload callback failed")
        if result.ok and warm:
            self.warm_up(background=background_warmup)
        return result

    def _current(self, preloaded: ModelBundle | None) -> ModelBundle | None:
        """``preloaded`` when the registry still names the model it was loaded at, else None."""
        if preloaded is None:
            return None
        marker = self._safe_marker()
        if marker != preloaded.marker:
            logger.info(
                "the preloaded model %s is no longer current (registry marker %s): loading",
                preloaded.model_id,
                marker,
            )
            return None
        logger.debug("serving the preloaded model %s", preloaded.model_id)
        return preloaded

    def _reload(self, preloaded: ModelBundle | None = None) -> ReloadResult:
        with self._reload_lock:
            previous = self._state
            previous_id = previous.bundle.model_id if previous else None
            started = time.perf_counter()
            logger.debug("reload: loading the current model (serving %s)", previous_id)
            try:
                bundle = self._current(preloaded) or self._loader(self.settings)
            except Exception as exc:  # noqa: BLE001 - any failure must leave the old model serving
                seconds = time.perf_counter() - started
                full = str(exc) if isinstance(exc, RecsysError) else f"{type(exc).__name__}: {exc}"
                message = public_message(full, serving_roots(self.settings))  # leaves the process
                self.last_error = {
                    "message": message,
                    "type": type(exc).__name__,
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "still_serving": previous_id,
                }
                self._failed = (self._safe_marker(), time.monotonic())
                log = logger.error if isinstance(exc, RecsysError) else logger.exception
                log("model load failed (still serving %s): %s", previous_id, full)
                self.reload_failures += 1
                self.last_failure = ReloadResult(False, previous_id, previous_id, seconds, message)
                return self.last_failure
            caches = ServingCaches.from_settings(self.settings.cache)
            engine = Engine(bundle, caches, self.settings)
            if self.live_feed is not None:
                # replay every event since the model's data cut-off before serving it
                embed = bundle_embedder(self.settings.paths.processed_dir, bundle)
                live = LiveState(bundle, self.settings.events, embed=embed)
                self.live_feed.attach(live)
                engine.live, engine.feed = live, self.live_feed
            state = ServingState(bundle, engine, caches, time.time())
            self._state = state  # the atomic swap
            self.last_error = None
            self._failed = None
            self.reloads += 1
            seconds = time.perf_counter() - started
            logger.info("serving model %s (previous %s)", bundle.model_id, previous_id)
            logger.debug(
                "loaded model %s in %.2fs: %d users (%d trainable), %d items",
                bundle.model_id,
                seconds,
                bundle.histories.n_users,
                bundle.histories.n_trainable,
                bundle.n_items,
            )
            self.last_success = ReloadResult(True, previous_id, bundle.model_id, seconds)
            return self.last_success

    def warm_up(self, background: bool = False) -> WarmupReport | None:
        """Warm the current caches (a fresh report); in a daemon thread when ``background``."""
        state = self._state
        if state is None:
            return None
        report = WarmupReport()
        state.caches.warmup = report

        def run() -> None:
            try:
                state.engine.warm_up(report)
                release_free_heap()  # the chunks' freed arrays (.allocator)
                logger.debug(
                    "cache warm-up %s: %d items, %d users in %.2fs",
                    report.state,
                    report.items_warmed,
                    report.users_warmed,
                    report.seconds,
                )
            except Exception as exc:  # noqa: BLE001 - warm-up is best effort
                report.state, report.error = "failed", str(exc)
                logger.exception("cache warm-up failed")

        if background:
            self._warmer = threading.Thread(target=run, name="recsys-warmup", daemon=True)
            self._warmer.start()
        else:
            run()
        return report

    def wait_for_warmup(self, timeout: float | None = None) -> None:
        """Block until a background warm-up finishes (tests, benchmarks)."""
        if self._warmer is not None:
            self._warmer.join(timeout)

    # ------------------------------------------------------------------ polling
    def _safe_marker(self) -> str | None:
        try:
            return self._marker(self.settings)
        except Exception as exc:  # noqa: BLE001 - an unreadable registry must not kill the poller
            logger.warning("cannot read the registry marker: %s", exc)
            return None

    def poll_once(self) -> bool:
        """Reload when the registry's current marker differs from the loaded one; True if it did."""
        marker = self._safe_marker()
        if marker is None or marker == self._seen_marker:
            return False
        state = self._state
        if state is not None and state.bundle.marker == marker:
            return False
        if state is not None and self._same_model(state.bundle.model_id):
            self._seen_marker = marker  # the registry changed (e.g. a new candidate), not current
            self._clear_error(state.bundle.model_id)
            return False
        if self._failed is not None:
            failed_marker, failed_at = self._failed
            retry_after = max(MIN_RETRY_SECONDS, 6 * self.settings.reload.poll_interval_seconds)
            if failed_marker == marker and time.monotonic() - failed_at < retry_after:
                logger.debug("registry poll: marker %s failed to load recently; waiting", marker)
                return False
        logger.debug("registry poll: marker changed to %s; reloading", marker)
        return self.reload().ok

    def _clear_error(self, serving_id: str) -> None:
        """The registry is readable and names the serving model: an earlier failed reload no
        longer describes the service (else /health reports it, and alerts fire, until restart)."""
        if self.last_error is not None:
            logger.info(
                "registry names the serving model %s again: reload error cleared", serving_id
            )
            self.last_error = None
            self._failed = None

    def _same_model(self, model_id: str) -> bool:
        try:
            return self._current_id(self.settings) == model_id
        except Exception:  # noqa: BLE001 - unreadable registry: let reload() report it
            return False

    def start_polling(self) -> None:
        """Start the poller thread (no-op when ``reload.poll_interval_seconds`` is 0)."""
        interval = self.settings.reload.poll_interval_seconds
        if interval <= 0 or self._poller is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll_once()
                except Exception:  # noqa: BLE001 - keep polling whatever happens
                    logger.exception("registry poll failed")

        self._poller = threading.Thread(target=loop, name="recsys-registry-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop the poller (called from the app's lifespan shutdown)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
