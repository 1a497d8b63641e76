"""Smoke test for a running recommendation service: every item of the checklist's smoke list.

Usage::

    .venv/bin/python scripts/smoke_test.py --host localhost --port 8000 [--admin-token TOKEN]

Prints one line per check (PASS / FAIL / SKIP) and exits 0 only when no check failed. User ids are
real ones: advertised by the service or read from ``--processed-dir`` (see ``_client.py``); the
unknown user is a fresh made-up id.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from _client import (
    DEFAULT_PROCESSED_DIR,
    UserPool,
    admin_headers,
    admin_token_default,
    base_url,
    cache_counters,
    discover_users,
    hit_rate,
    percentile,
)


class CheckFailed(Exception):
    """A check's expectation was not met; the message says which."""


class Skip(Exception):
    """A check cannot apply to this deployment (e.g. the data has no cold users)."""


class Smoke:
    """The checks, sharing one HTTP session, the user pool and what earlier checks learned."""

    def __init__(
        self, base: str, pool: UserPool, admin_token: str | None, timeout: float, max_p95_ms: float
    ):
        self.base, self.pool, self.admin_token, self.timeout = base, pool, admin_token, timeout
        self.max_p95_ms = max_p95_ms
        self.http = requests.Session()
        self.unknown_user = pool.unknown(1, "smoke-unknown")[0]
        self.product_id: Any = None

    def call(
        self, method: str, path: str, payload: Any = None, expect: int = 200, **kw: Any
    ) -> Any:
        response = self.http.request(
            method, self.base + path, json=payload, timeout=self.timeout, **kw
        )
        if response.status_code != expect:
            raise CheckFailed(
                f"{method} {path} -> {response.status_code} (expected {expect}): "
                f"{response.text[:200]}"
            )
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def recommend(self, user_id: Any, topk: int = 10, **extra: Any) -> dict[str, Any]:
        body = self.call("POST", "/recommend", {"user_id": user_id, "topk": topk, **extra})
        items = body.get("recommendations")
        if not isinstance(items, list) or not items:
            raise CheckFailed(f"user {user_id}: no recommendations in {str(body)[:200]}")
        ids = [item["product_id"] for item in items]
        if len(set(ids)) != len(ids):
            raise CheckFailed(f"user {user_id}: duplicate products {ids}")
        if [item["rank"] for item in items] != list(range(1, len(items) + 1)):
            raise CheckFailed(f"user {user_id}: ranks are not 1..{len(items)}")
        if len(items) != topk:
            raise CheckFailed(f"user {user_id}: {len(items)} items, asked for {topk}")
        return body

    def answered_by(
        self, label: str, user_id: Any, strategy: str, fallback: str | None
    ) -> dict[str, Any]:
        """``/recommend`` for ``user_id``, which must be answered by ``strategy``/``fallback``
        with scores that rank (not all equal: a flat list is a catalogue-order non-answer)."""
        body = self.recommend(user_id)
        got = (body.get("strategy"), body.get("is_fallback"), body.get("fallback_method"))
        if got != (strategy, fallback is not None, fallback):
            raise CheckFailed(
                f"{label} user {user_id}: strategy={got[0]} is_fallback={got[1]} "
                f"fallback_method={got[2]} (expected {strategy}, {fallback is not None}, "
                f"{fallback})"
            )
        distinct_scores(label, user_id, body["recommendations"])
        return body

    def trainable(self) -> str:
        if not self.pool.trainable:
            raise CheckFailed(
                "no trainable user id known: pass --processed-dir or --trainable-user"
            )
        return self.pool.trainable[0]

    # --- checks -------------------------------------------------------------------------------
    def health(self) -> str:
        body = self.call("GET", "/health")
        return f"status={body.get('status')} model={body.get('model_id')}"

    def model_info(self) -> str:
        body = self.call("GET", "/model_info")
        if not body.get("model_id"):
            raise CheckFailed(f"/model_info has no model_id: {str(body)[:200]}")
        return f"model={body['model_id']} type={body.get('model_type')}"

    def cache_stats(self) -> str:
        body = self.call("GET", "/cache_stats")
        counters = cache_counters(body)
        rate = hit_rate(counters["hits"], counters["misses"])
        return f"hits={counters['hits']} misses={counters['misses']} hit_rate={rate}"

    def stats(self) -> str:
        body = self.call("GET", "/stats")
        return f"keys={','.join(sorted(body)[:6])}"

    def metrics(self) -> str:
        text = self.call("GET", "/metrics")
        if "# TYPE" not in text:
            raise CheckFailed("/metrics is not Prometheus text (no '# TYPE' line)")
        return (
            f"{sum(1 for line in text.splitlines() if line.startswith('# TYPE'))} metric families"
        )

    def recommend_trainable(self) -> str:
        user = self.trainable()
        body = self.answered_by("trainable", user, "cf", None)
        self.product_id = body["recommendations"][0]["product_id"]
        return f"user={user} strategy=cf segment={body.get('segment')} {body.get('latency_ms')} ms"

    def recommend_cold(self) -> str:
        if not self.pool.cold:
            raise Skip("the data has no known user with a positive interaction and no CF row")
        user = self.pool.cold[0]
        body = self.answered_by("cold", user, "content", "cold_hybrid")
        return f"user={user} strategy=content (cold hybrid) segment={body.get('segment')}"

    def recommend_unknown(self) -> str:
        body = self.answered_by("unknown", self.unknown_user, "popularity", "popularity")
        return f"user={self.unknown_user} strategy=popularity segment={body.get('segment')}"

    def batch(self) -> str:
        users = [self.trainable(), *self.pool.cold[:1], self.unknown_user]
        body = self.call("POST", "/batch_recommend", {"user_ids": users, "topk": 5})
        results = body.get("results") or []
        if len(results) != len(users):
            raise CheckFailed(f"{len(results)} results for {len(users)} users")
        cf, fallback = (_count(body.get(k)) for k in ("cf_users", "fallback_users"))
        if (cf, fallback) != (1, len(users) - 1):
            raise CheckFailed(
                f"cf_users={cf} fallback_users={fallback}, expected 1 and {len(users) - 1}"
            )
        return f"{len(users)} users cf={cf} fallback={fallback} {body.get('total_latency_ms')} ms"

    def rerank(self) -> str:
        user = self.trainable()
        weights = {"cf": 1.0, "popularity": 0.5, "quality": 0.5}
        self.recommend(user, rerank=True, rerank_weights=weights, explain=True)
        bad = self.call(
            "POST", "/recommend", {"user_id": user, "rerank_weights": {"cf": -1}}, expect=422
        )
        if "error" not in bad:
            raise CheckFailed(f"invalid weights: 422 without an error object: {str(bad)[:200]}")
        return f"weights {weights} accepted; negative weight rejected with 422"

    def similar_items(self) -> str:
        if self.product_id is None:
            raise CheckFailed("no product id known (the trainable recommendation failed)")
        body = self.call("POST", "/similar_items", {"product_id": self.product_id, "topk": 5})
        ids = [item["product_id"] for item in body.get("similar_items") or []]
        if not ids or self.product_id in ids:
            raise CheckFailed(f"product {self.product_id}: similar items {ids}")
        self.call(
            "POST", "/similar_items", {"product_id": "no-such-product-0", "topk": 5}, expect=404
        )
        return f"product={self.product_id} -> {len(ids)} items; unknown product -> 404"

    def latency(self, calls: int = 20) -> str:
        users = [*self.pool.trainable[:5], *self.pool.cold[:5], self.unknown_user]
        timings = []
        for i in range(calls):
            start = time.perf_counter()
            self.call("POST", "/recommend", {"user_id": users[i % len(users)], "topk": 10})
            timings.append((time.perf_counter() - start) * 1000)
        p95 = percentile(timings, 95)
        if p95 >= self.max_p95_ms:
            raise CheckFailed(f"p95 {p95:.1f} ms >= {self.max_p95_ms} ms over {calls} calls")
        return f"p95={p95:.1f} ms max={max(timings):.1f} ms over {calls} calls"

    def admin(self) -> str:
        if not self.admin_token:
            raise Skip("no --admin-token given")
        self.call("POST", "/cache_warmup", expect=401)
        self.call("POST", "/cache_warmup", headers={"X-Admin-Token": self.admin_token})
        return "cache_warmup: 401 without token, 200 with token"


def distinct_scores(label: str, user_id: Any, items: list[dict[str, Any]]) -> None:
    """Raise CheckFailed when every recommended item has the same score (nothing was ranked)."""
    scores = {item.get("score") for item in items}
    if len(items) > 1 and len(scores) == 1:
        raise CheckFailed(
            f"{label} user {user_id}: all {len(items)} scores are {scores.pop()} "
            "(a flat list in catalogue order, not a ranking)"
        )


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else int(value or 0)


def run(smoke: Smoke) -> int:
    """Run every check in checklist order; print one line each; return the number of failures."""
    checks: list[tuple[str, Callable[[], str]]] = [
        ("health", smoke.health),
        ("model info", smoke.model_info),
        ("cache stats", smoke.cache_stats),
        ("stats", smoke.stats),
        ("metrics", smoke.metrics),
        ("recommend (trainable, CF path)", smoke.recommend_trainable),
        ("recommend (cold-start, known user)", smoke.recommend_cold),
        ("recommend (unknown user)", smoke.recommend_unknown),
        ("batch recommend", smoke.batch),
        ("reranking", smoke.rerank),
        ("similar items", smoke.similar_items),
        ("latency", smoke.latency),
        ("admin auth", smoke.admin),
    ]
    failed = 0
    for name, check in checks:
        try:
            print(f"PASS {name}: {check()}", flush=True)
        except Skip as exc:
            print(f"SKIP {name}: {exc}", flush=True)
        except (CheckFailed, requests.RequestException, KeyError, TypeError, ValueError) as exc:
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--admin-token",
        default=admin_token_default(),
        help="also check admin auth (POST /cache_warmup), and read sample user ids from "
        "/model_info where they are admin-only (default: $RECSYS_ADMIN_TOKEN)",
    )
    parser.add_argument(
        "--processed-dir",
        default=DEFAULT_PROCESSED_DIR,
        help="where to read user ids when the service does not advertise any",
    )
    parser.add_argument("--trainable-user", help="use this trainable user id")
    parser.add_argument("--cold-user", help="use this known cold-start user id")
    parser.add_argument("--max-p95-ms", type=float, default=200.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)

    base = base_url(args.host, args.port)
    payloads = []
    for path in ("/model_info", "/health"):
        try:
            headers = admin_headers(args.admin_token)
            payloads.append(requests.get(base + path, headers=headers, timeout=args.timeout).json())
        except (requests.RequestException, ValueError):
            payloads.append(None)
    pool = discover_users(payloads, args.processed_dir)
    if args.trainable_user:
        pool.trainable.insert(0, args.trainable_user)
    if args.cold_user:
        pool.cold.insert(0, args.cold_user)
    print(
        f"smoke test against {base} (users from {pool.source}: {len(pool.trainable)} trainable, "
        f"{len(pool.cold)} cold)",
        flush=True,
    )
    failed = run(Smoke(base, pool, args.admin_token, args.timeout, args.max_p95_ms))
    print(f"{'OK' if not failed else 'FAILED'}: {failed} check(s) failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
