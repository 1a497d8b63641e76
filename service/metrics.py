"""Request metrics: Prometheus counters/histograms for /metrics, in-process summaries for /stats.

Exported series (``/metrics``, Prometheus text format):

- ``recsys_http_requests_total{endpoint,status}`` and
  ``recsys_http_request_duration_seconds{endpoint}`` (histogram) — every HTTP request;
- ``recsys_http_errors_total{endpoint,code}`` — error responses by their ``error.code``;
- ``recsys_recommend_request_duration_seconds{path}`` (histogram) — ``/recommend`` by the path
  that answered (``cf``, ``content``, ``popularity``); ``recsys_recommendations_total{path}``
  counts users served per path (batch users included);
- ``recsys_model_reloads_total{result}`` and
  ``recsys_model_last_reload_timestamp_seconds{result}`` — ``success`` / ``failure``;
- ``recsys_events_accepted_total{type}``, ``recsys_events_rejected_total{field}``,
  ``recsys_event_store_errors_total{operation}``, ``recsys_events_replication_lag``;
- scrape-time state of the live model (:mod:`service.collector`): caches, model info, warm-up.

The failure series (``recsys_model_reloads_total{result="failure"}``, every store-error
operation) are exported at 0 from startup, so that the alert rules of ``deploy/prometheus``
(``increase() > 0``) see the first failure.

The per-request series are plain counts (:mod:`service.request_series`), written out at scrape
time as the families above.

Label values are bounded: endpoints are the known route paths (anything else is ``other``),
paths are the engine strategies, codes come from :mod:`service.errors`.

Registries. By default each app owns its :class:`Metrics` and its own ``CollectorRegistry``: one
worker process, one set of numbers (several apps in one process — tests — never share counters).
With ``uvicorn --workers N`` or gunicorn, a scrape then sees the worker that answered it. Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory *before the server starts* (wipe it
at each deploy) to use ``prometheus_client``'s multiprocess mode: counters and histograms of all
workers are written to memory-mapped files there and summed at scrape time, the reload timestamps
keep the maximum over workers; the live collector (caches, model info, warm-up) still describes
the worker that answered, because those objects exist per process. No ``live*`` gauge mode is
used, so gunicorn needs no ``child_exit`` hook (``mark_process_dead``); counters of a worker that
exited stay in the sums, as Prometheus counters should.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from recommender import vocabulary as V
from recommender.serving import ReloadResult
from service.collector import ServingCollector
from service.request_series import (
    ERRORS,
    LATENCY,
    PATH_LATENCY,
    PATHS,
    REQUESTS,
    RequestSeries,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WINDOW = 10_000  # latencies kept per endpoint for the /stats percentiles
OTHER = "other"
STRATEGIES = (V.STRATEGY_CF, V.STRATEGY_CONTENT, V.STRATEGY_POPULARITY)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STORE_OPERATIONS = ("append", "append_products", "read")  # record_store_error's operations


class _SharedRequestSeries:
    """The request series as ``prometheus_client`` objects, for multiprocess mode only: their
    values are written to the shared files that every worker's scrape sums."""

    def __init__(self, registry: CollectorRegistry) -> None:
        name, doc = REQUESTS
        self.requests = Counter(name, doc, ["endpoint", "status"], registry=registry)
        name, doc = LATENCY
        self.latency = Histogram(
            name, doc, ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry
        )
        name, doc = ERRORS
        self.errors = Counter(name, doc, ["endpoint", "code"], registry=registry)
        name, doc = PATH_LATENCY
        self.path_latency = Histogram(
            name, doc, ["path"], buckets=LATENCY_BUCKETS, registry=registry
        )
        name, doc = PATHS
        self.paths = Counter(name, doc, ["path"], registry=registry)

    def observe(
        self, endpoint: str, status: int, seconds: float, code: str | None, path: str | None
    ) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if code is not None:
            self.errors.labels(endpoint, code).inc()
        if path is not None:
            self.path_latency.labels(path).observe(seconds)
            self.paths.labels(path).inc()


def _percentiles(values: Iterable[float]) -> dict[str, float | None]:
    window = np.fromiter(values, dtype=np.float64)
    if not window.size:
        return {"p50": None, "p95": None, "p99": None, "mean": None}
    p50, p95, p99 = np.percentile(window, [50, 95, 99]) * 1000
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(window.mean() * 1000), 3),
    }


class Metrics:
    """Counts per endpoint/status/error code, latencies per endpoint and path, reloads.

    ``multiprocess_dir`` (default: ``$PROMETHEUS_MULTIPROC_DIR``) switches :meth:`render` to
    the summed view of all workers; see the module docstring.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        window: int = WINDOW,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.endpoints = frozenset(endpoints)
        self.started = time.time()
        self.multiprocess_dir = multiprocess_dir or os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        self.collector = ServingCollector()
        if self.multiprocess_dir is None:
            self.registry.register(self.collector)
        reg = self.registry
        # the request series: plain counts exported at scrape time (service.request_series);
        # in multiprocess mode also prometheus_client's objects, whose values live in the files
        self._series = RequestSeries(LATENCY_BUCKETS, window)
        self._shared: _SharedRequestSeries | None = None
        if self.multiprocess_dir is None:
            reg.register(self._series)
        else:
            self._shared = _SharedRequestSeries(reg)
        self._reloads = Counter(
            "recsys_model_reloads_total",
            "Model load attempts (startup, /reload_model, registry poll) by result.",
            ["result"],
            registry=reg,
        )
        self._last_reload = Gauge(
            "recsys_model_last_reload_timestamp_seconds",
            "Unix time of the last model load attempt by result.",
            ["result"],
            registry=reg,
            multiprocess_mode="max",
        )
        self._events_accepted = Counter(
            "recsys_events_accepted_total",
            "Events stored durably by POST /events, by event type.",
            ["type"],
            registry=reg,
        )
        self._events_rejected = Counter(
            "recsys_events_rejected_total",
            "POST /events requests refused with 422, by the offending field.",
            ["field"],
            registry=reg,
        )
        self._store_errors = Counter(
            "recsys_event_store_errors_total",
            "Event store calls that failed (store unavailable), by operation.",
            ["operation"],
            registry=reg,
        )
        self._replication_lag = Gauge(
            "recsys_events_replication_lag",
            "Store latest sequence minus the sequence this worker has applied (max over workers).",
            registry=reg,
            multiprocess_mode="max",
        )
        # every outcome is exported from startup at 0, so that an alert's increase() sees the
        # first failure (a series that appears at 1 has no increase) and dashboards show a line
        for outcome in ("success", "failure"):
            self._reloads.labels(outcome)
        for operation in STORE_OPERATIONS:
            self._store_errors.labels(operation)
        self._window = window
        self._accepted_children: dict[str, Any] = {}

    def endpoint_of(self, path: str) -> str:
        """The label for a request path (unknown paths share one label)."""
        return path if path in self.endpoints else OTHER

    def observe(
        self,
        endpoint: str,
        status: int,
        seconds: float,
        error_code: str | None = None,
        path: str | None = None,
    ) -> None:
        """Record one finished request; ``path`` (a single /recommend's strategy) also counts
        one user served on that path."""
        self._series.observe(endpoint, status, seconds, error_code, path)
        if self._shared is not None:
            self._shared.observe(endpoint, status, seconds, error_code, path)

    def record_paths(self, strategies: Iterable[str]) -> None:
        """Count users served per recommendation path (batches; a single /recommend is counted
        by :meth:`observe`)."""
        counted: dict[str, int] = {}
        for strategy in strategies:
            counted[strategy] = counted.get(strategy, 0) + 1
        self._series.add_paths(counted)
        if self._shared is not None:
            for strategy, count in counted.items():
                self._shared.paths.labels(strategy).inc(count)

    def record_events_accepted(self, types: Iterable[str]) -> None:
        """Count stored events by type."""
        counts: dict[str, int] = {}
        for kind in types:
            counts[kind] = counts.get(kind, 0) + 1
        for kind, count in counts.items():
            child = self._accepted_children.get(kind)
            if child is None:  # prometheus' labels() costs a lock and a tuple per call
                child = self._accepted_children[kind] = self._events_accepted.labels(kind)
            child.inc(count)

    def record_events_rejected(self, field: str) -> None:
        """Count a 422 of POST /events by the field it names."""
        self._events_rejected.labels(field).inc()

    def record_store_error(self, operation: str) -> None:
        """Count a failed store call (``append``, ``append_products``, ``read``: degraded)."""
        self._store_errors.labels(operation).inc()

    def record_replication_lag(self, lag: int | None) -> None:
        """Set the replication lag (records not yet applied by this worker)."""
        if lag is not None:
            self._replication_lag.set(lag)

    def record_reload(self, result: ReloadResult) -> None:
        """Count one model load attempt (the :class:`ModelHolder` ``on_reload`` hook)."""
        outcome = "success" if result.ok else "failure"
        self._reloads.labels(outcome).inc()
        self._last_reload.labels(outcome).set(result.finished_at)

    def snapshot(self) -> dict[str, Any]:
        """The request part of /stats: totals, per-endpoint and per-path counts and latency,
        errors by code (this process's numbers)."""
        now = self._series.snapshot()
        counts: dict[str, int] = {}
        errors: dict[str, int] = {}
        for (endpoint, status), count in now.requests.items():
            counts[endpoint] = counts.get(endpoint, 0) + count
            if status >= 400:
                errors[endpoint] = errors.get(endpoint, 0) + count
        codes: dict[str, int] = {}
        for (_, code), count in now.errors.items():
            codes[code] = codes.get(code, 0) + count
        windows, path_windows, paths = now.windows, now.path_windows, now.paths
        endpoints = {
            endpoint: {
                "count": count,
                "errors": errors.get(endpoint, 0),
                "latency_ms": _percentiles(windows.get(endpoint, ())),
            }
            for endpoint, count in sorted(counts.items())
        }
        return {
            "uptime_seconds": round(time.time() - self.started, 3),
            "requests_total": sum(counts.values()),
            "errors_total": sum(errors.values()),
            "errors_by_code": dict(sorted(codes.items())),
            "endpoints": endpoints,
            "paths": {p: paths.get(p, 0) for p in STRATEGIES},
            "recommend_latency_ms_by_path": {
                p: _percentiles(path_windows.get(p, ())) for p in STRATEGIES
            },
            "latency_window": self._window,
        }

    def render(self) -> bytes:
        """Prometheus text exposition: this app's registry, or in multiprocess mode the sum over
        every worker's files plus this worker's live collector."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self.collector)
        return generate_latest(registry)
