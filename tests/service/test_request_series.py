"""The request series exported from plain counts (service.request_series) read exactly as the
prometheus_client objects they replace: the same exposition text, line for line."""

from __future__ import annotations

import random
import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from service.metrics import LATENCY_BUCKETS, Metrics
from service.request_series import ERRORS, LATENCY, PATH_LATENCY, PATHS, REQUESTS, RequestSeries

CREATED = re.compile(rb"^(\S+_created\{[^}]*\}) \S+$", re.MULTILINE)


Observation = tuple[str, int, float, str | None, str | None]


def _observations(seed: int = 3) -> list[Observation]:
    """Requests of every kind, latencies on and around every bucket bound."""
    rng = random.Random(seed)
    edges = [*LATENCY_BUCKETS, 0.0, 3.0, 100.0, 1e-7]
    latencies = edges + [b * f for b in LATENCY_BUCKETS for f in (0.999, 1.001)]
    latencies += [rng.random() * 3 for _ in range(200)]
    rng.shuffle(latencies)
    kinds: list[tuple[str, int, str | None, str | None]] = [
        ("/recommend", 200, None, "cf"),
        ("/recommend", 200, None, "popularity"),
        ("/recommend", 422, "invalid_request", None),
        ("/health", 200, None, None),
        ("other", 404, "not_found", None),
        ("/batch_recommend", 429, "batch_busy", None),
    ]
    out = []
    for i, seconds in enumerate(latencies):
        endpoint, status, code, path = kinds[i % len(kinds)]
        out.append((endpoint, status, seconds, code, path))
    return out


def _reference(observations: list[Observation], batch: bool = True) -> bytes:
    """What the prometheus_client objects exported for the same requests."""
    reg = CollectorRegistry()
    requests = Counter(*REQUESTS, ["endpoint", "status"], registry=reg)
    latency = Histogram(*LATENCY, ["endpoint"], buckets=LATENCY_BUCKETS, registry=reg)
    errors = Counter(*ERRORS, ["endpoint", "code"], registry=reg)
    by_path = Histogram(*PATH_LATENCY, ["path"], buckets=LATENCY_BUCKETS, registry=reg)
    paths = Counter(*PATHS, ["path"], registry=reg)
    for endpoint, status, seconds, code, path in observations:
        requests.labels(endpoint, str(status)).inc()
        latency.labels(endpoint).observe(seconds)
        if code is not None:
            errors.labels(endpoint, code).inc()
        if path is not None:
            by_path.labels(path).observe(seconds)
            paths.labels(path).inc()
    if batch:
        paths.labels("content").inc(7)
    return generate_latest(reg)


def _ours(observations: list[Observation], batch: bool = True) -> bytes:
    series = RequestSeries(LATENCY_BUCKETS, 100)
    reg = CollectorRegistry()
    reg.register(series)
    for observation in observations:
        series.observe(*observation)
    if batch:
        series.add_paths({"content": 7})
    return generate_latest(reg)


def _without_times(text: bytes) -> bytes:
    return CREATED.sub(rb"\1 <time>", text)


def test_the_exposition_is_the_prometheus_objects_line_for_line():
    observations = _observations()
    ours, theirs = _ours(observations), _reference(observations)
    assert _without_times(ours) == _without_times(theirs)
    assert b'recsys_http_request_duration_seconds_bucket{endpoint="/recommend",le="0.001"}' in ours
    assert b'recsys_recommendations_total{path="content"} 7.0' in ours


def test_no_traffic_exports_the_same_empty_families():
    ours = _ours([], batch=False)
    assert ours == _reference([], batch=False)
    assert ours.count(b"# TYPE") == 5


def test_stats_counts_come_from_the_series():
    metrics = Metrics(["/recommend", "/health"])
    for observation in _observations()[:60]:
        metrics.observe(*observation)
    metrics.record_paths(["cf", "cf", "content"])
    stats = metrics.snapshot()
    assert stats["requests_total"] == 60
    assert stats["endpoints"]["/recommend"]["count"] == 30
    assert stats["endpoints"]["/recommend"]["errors"] == 10
    assert stats["errors_total"] == 30
    assert stats["errors_by_code"] == {"batch_busy": 10, "invalid_request": 10, "not_found": 10}
    assert stats["paths"] == {"cf": 12, "content": 1, "popularity": 10}
    assert stats["recommend_latency_ms_by_path"]["cf"]["p50"] is not None
