"""The per-request series as plain counts under one lock, exported when Prometheus scrapes.

Why: ``prometheus_client``'s ``Counter.inc`` and ``Histogram.observe`` are several Python calls
and a lock each; a ``/recommend`` made six of them (requests and users-served counters, latency
and path histograms), about a tenth of the Python calls of a cached answer. Here a request is a
``bisect`` and a few list increments under one lock, and :meth:`RequestSeries.collect` writes
the families ``prometheus_client`` wrote for those objects: the same names, help, labels,
cumulative buckets (``le`` as it formats them), ``_count``, ``_sum`` and ``_created`` samples
(``tests/service/test_request_series.py`` compares the two expositions). The same counts are the
request part of ``/stats``.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) still needs ``prometheus_client``'s objects,
whose values live in the files every worker's scrape sums: :class:`service.metrics.Metrics`
feeds both there.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

REQUESTS = ("recsys_http_requests", "HTTP requests by endpoint and status code.")
LATENCY = (
    "recsys_http_request_duration_seconds",
    "HTTP request latency by endpoint (server side, body included).",
)
ERRORS = (
    "recsys_http_errors",
    "Error responses by endpoint and error code (the body's error.code).",
)
PATH_LATENCY = (
    "recsys_recommend_request_duration_seconds",
    "POST /recommend latency (server side) by the path that answered it.",
)
PATHS = (
    "recsys_recommendations",
    "Users served by recommendation path (cf, content, popularity), batches included.",
)


def _created_series() -> bool:
    """``_created`` samples unless disabled, as ``prometheus_client`` decides at import."""
    flag = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False")
    return flag.lower() not in ("true", "1", "t")


class _Histogram:
    """One label set: per-bucket counts (not cumulative; the last is ``+Inf``), their sum and
    the recent values kept for the ``/stats`` percentiles."""

    __slots__ = ("counts", "sum", "created", "window")

    def __init__(self, buckets: int, window: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.created = time.time()
        self.window: deque[float] = deque(maxlen=window)

    def observe(self, index: int, seconds: float) -> None:
        """One request of ``seconds`` in bucket ``index``."""
        self.counts[index] += 1
        self.sum += seconds
        self.window.append(seconds)


class SeriesSnapshot(NamedTuple):
    """The counts at one moment: requests by (endpoint, status), errors by (endpoint, code),
    recent latencies by endpoint and by path, users served by path."""

    requests: dict[tuple[str, int], int]
    errors: dict[tuple[str, str], int]
    windows: dict[str, list[float]]
    path_windows: dict[str, list[float]]
    paths: dict[str, int]


class RequestSeries(Collector):
    """Requests by endpoint and status, latency by endpoint, errors by endpoint and code,
    ``/recommend`` latency and users served by path."""

    def __init__(self, buckets: Sequence[float], window: int) -> None:
        self.bounds = (*buckets, float("inf"))
        self._le = [floatToGoString(bound) for bound in self.bounds]
        self._window = window
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], list[float]] = {}  # [count, created]
        self.latency: dict[str, _Histogram] = {}
        self.errors: dict[tuple[str, str], list[float]] = {}
        self.path_latency: dict[str, _Histogram] = {}
        self.paths: dict[str, list[float]] = {}

    def observe(
        self, endpoint: str, status: int, seconds: float, code: str | None, path: str | None
    ) -> None:
        """One finished request (``path``: a single ``/recommend``'s, one user served)."""
        index = bisect_left(self.bounds, seconds)  # the first bucket with seconds <= le
        with self._lock:
            row = self.requests.get((endpoint, status))
            if row is None:
                row = self.requests[(endpoint, status)] = [0, time.time()]
            row[0] += 1
            hist = self.latency.get(endpoint)
            if hist is None:
                hist = self.latency[endpoint] = _Histogram(len(self.bounds), self._window)
            hist.observe(index, seconds)
            if code is not None:
                row = self.errors.get((endpoint, code))
                if row is None:
                    row = self.errors[(endpoint, code)] = [0, time.time()]
                row[0] += 1
            if path is not None:
                hist = self.path_latency.get(path)
                if hist is None:
                    hist = self.path_latency[path] = _Histogram(len(self.bounds), self._window)
                hist.observe(index, seconds)
                self._count_path(path, 1)

    def add_paths(self, counts: dict[str, int]) -> None:
        """Users served per path by a batch."""
        with self._lock:
            for path, count in counts.items():
                self._count_path(path, count)

    def _count_path(self, path: str, count: int) -> None:
        row = self.paths.get(path)
        if row is None:
            row = self.paths[path] = [0, time.time()]
        row[0] += count

    def snapshot(self) -> SeriesSnapshot:
        """Copies of the counts and windows (for ``/stats``), taken under the lock."""
        with self._lock:
            return SeriesSnapshot(
                requests={key: int(row[0]) for key, row in self.requests.items()},
                errors={key: int(row[0]) for key, row in self.errors.items()},
                windows={e: list(h.window) for e, h in self.latency.items()},
                path_windows={p: list(h.window) for p, h in self.path_latency.items()},
                paths={path: int(row[0]) for path, row in self.paths.items()},
            )

    def describe(self) -> Iterable[Metric]:
        return ()  # families appear with their first sample, as labelled metrics' do

    def collect(self) -> Iterator[Metric]:
        created = _created_series()
        with self._lock:
            requests = [([e, str(s)], row[0], row[1]) for (e, s), row in self.requests.items()]
            latency = [([e], *self._histogram(h)) for e, h in self.latency.items()]
            errors = [([e, c], row[0], row[1]) for (e, c), row in self.errors.items()]
            path_latency = [([p], *self._histogram(h)) for p, h in self.path_latency.items()]
            paths = [([p], row[0], row[1]) for p, row in self.paths.items()]
        yield _counter(*REQUESTS, ("endpoint", "status"), requests, created)
        yield self._histograms(*LATENCY, "endpoint", latency, created)
        yield _counter(*ERRORS, ("endpoint", "code"), errors, created)
        yield self._histograms(*PATH_LATENCY, "path", path_latency, created)
        yield _counter(*PATHS, ("path",), paths, created)

    @staticmethod
    def _histogram(hist: _Histogram) -> tuple[list[int], float, float]:
        return list(hist.counts), hist.sum, hist.created

    def _histograms(
        self,
        name: str,
        documentation: str,
        label: str,
        rows: list[tuple[list[str], list[int], float, float]],
        created: bool,
    ) -> Metric:
        family = Metric(name, documentation, "histogram")
        for values, counts, total, since in rows:
            labels = {label: values[0]}
            acc = 0.0
            for le, count in zip(self._le, counts, strict=True):
                acc += count
                family.samples.append(Sample(name + "_bucket", {**labels, "le": le}, acc))
            family.samples.append(Sample(name + "_count", labels, acc))
            family.samples.append(Sample(name + "_sum", labels, total))
            if created:
                family.samples.append(Sample(name + "_created", labels, since))
        return family


def _counter(
    name: str,
    documentation: str,
    labelnames: tuple[str, ...],
    rows: list[tuple[list[str], float, float]],
    created: bool,
) -> Metric:
    family = Metric(name, documentation, "counter")
    for values, count, since in rows:
        labels = dict(zip(labelnames, values, strict=True))
        family.samples.append(Sample(name + "_total", labels, float(count)))
        if created:
            family.samples.append(Sample(name + "_created", labels, since))
    return family
