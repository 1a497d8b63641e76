"""Helpers shared by the scripts: user ids, the traffic mix, percentiles, cache counters.

Standard library only (pyarrow optional), so the scripts run anywhere with ``requests``/``aiohttp``.
User ids come from the running service when it advertises examples (``/model_info`` or ``/health``
carrying ``sample_user_ids: {"trainable": [...], "cold": [...]}``; with ``admin.public_sample_ids``
off, as in production, only for the admin token), else from the processed data
files (``trainable_user_mapping.json``, ``user_item_mappings.json``, ``interactions.parquet`` for
activity) under ``--processed-dir``. The traffic mix (:func:`build_plan`) is the one the load test
and the serving benchmark both send.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the library's defaults (recommender.vocabulary.DEFAULT_*_DIR; a test keeps them equal): the
# scripts use the standard library only, so they cannot import it
DEFAULT_PROCESSED_DIR = "data/processed"
DEFAULT_REGISTRY_DIR = "artifacts/cf"
TRAINABLE_FILE = "trainable_user_mapping.json"
MAPPINGS_FILE = "user_item_mappings.json"
INTERACTIONS_FILE = "interactions.parquet"
SAMPLE_KEYS = ("sample_user_ids", "example_user_ids", "sample_users")
ADMIN_TOKEN_ENV = "RECSYS_ADMIN_TOKEN"  # the service's default admin.token_env


def admin_token_default() -> str | None:
    """``--admin-token`` default: the token the service reads, when it is set here too."""
    return os.environ.get(ADMIN_TOKEN_ENV) or None


def admin_headers(token: str | None) -> dict[str, str]:
    """Headers that show the admin token (``/model_info`` then lists sample ids in production)."""
    return {"X-Admin-Token": token} if token else {}


class Unreachable(Exception):
    """The service could not be queried before the test (dead port, not ready, no users)."""


@dataclass
class UserPool:
    """Known user ids by segment; ``unknown`` ids are made up and guaranteed not to be known."""

    trainable: list[str] = field(default_factory=list)
    cold: list[str] = field(default_factory=list)
    source: str = "none"

    def unknown(self, n: int, prefix: str = "new-user") -> list[str]:
        """``n`` fresh ids the service has never seen (random suffix, so each run differs)."""
        run = uuid.uuid4().hex[:8]
        return [f"{prefix}-{run}-{i}" for i in range(n)]


def base_url(host: str, port: int) -> str:
    """``http://host:port`` (an explicit scheme in ``host`` is kept)."""
    host = host.rstrip("/")
    return f"{host}:{port}" if "://" in host else f"http://{host}:{port}"


def _from_service(payloads: Iterable[Mapping[str, Any] | None]) -> UserPool | None:
    for payload in payloads:
        if not isinstance(payload, Mapping):
            continue
        for key in SAMPLE_KEYS:
            sample = payload.get(key)
            if isinstance(sample, Mapping):
                trainable = [str(u) for u in sample.get("trainable") or []]
                cold = [str(u) for u in sample.get("cold") or []]
                if trainable or cold:
                    return UserPool(trainable, cold, f"service:{key}")
    return None


def activity(processed_dir: Path) -> dict[str, int]:
    """Interactions per user from ``interactions.parquet`` ({} when pyarrow or the file is absent).

    Real traffic comes mostly from active users, and the service warms the profiles of the most
    active ones at startup, so the load test ranks known users by activity for its Zipf draw.
    """
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        column = pq.read_table(processed_dir / INTERACTIONS_FILE, columns=["user_id"])["user_id"]
    except Exception:  # noqa: BLE001 - optional: without it users keep the file order
        return {}
    return {str(row["values"]): int(row["counts"]) for row in pc.value_counts(column).to_pylist()}


def positive_users(processed_dir: Path) -> set[str] | None:
    """Users with at least one positive interaction (None when pyarrow, the file or the
    ``is_positive`` column is absent). A known user without one is served like an unknown user,
    so the smoke test's cold-start example must have one."""
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(processed_dir / INTERACTIONS_FILE, columns=["user_id", "is_positive"])
    except Exception:  # noqa: BLE001 - optional: without it every cold user is kept
        return None
    liked = table.filter(pc.fill_null(table["is_positive"], False))["user_id"]
    return {str(u) for u in pc.unique(liked).to_pylist()}


def _from_files(processed_dir: Path) -> UserPool | None:
    """Trainable and cold users (a positive interaction, no CF row) from the processed files, most
    active first (stable ties)."""
    try:
        trainable_doc = json.loads((processed_dir / TRAINABLE_FILE).read_text(encoding="utf-8"))
        mappings_doc = json.loads((processed_dir / MAPPINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    trainable = [str(u) for u in trainable_doc.get("user_ids", [])]
    trainable_set = set(trainable)
    cold = [str(u) for u in mappings_doc.get("user_ids", []) if str(u) not in trainable_set]
    liked = positive_users(processed_dir)
    if liked is not None:
        cold = [u for u in cold if u in liked]
    counts = activity(processed_dir)
    if counts:
        trainable.sort(key=lambda u: -counts.get(u, 0))
        cold.sort(key=lambda u: -counts.get(u, 0))
    return UserPool(trainable, cold, f"files:{processed_dir}")


def discover_users(
    service_payloads: Iterable[Mapping[str, Any] | None],
    processed_dir: str | Path | None,
    prefer_files: bool = False,
) -> UserPool:
    """Real user ids: the service's advertised samples, or the processed data files.

    The smoke test needs a few ids and asks the service first; the load test needs every id (a
    realistic spread of users) and reads the files first (``prefer_files``).
    """
    payloads = list(service_payloads)
    files = _from_files(Path(processed_dir)) if processed_dir else None
    service = _from_service(payloads)
    pool = (files or service) if prefer_files else (service or files)
    return pool or UserPool()


MIXES = {  # share of requests per segment
    "mixed": {"unknown": 0.6, "cold": 0.3, "trainable": 0.1},
    "coldstart": {"unknown": 0.6, "cold": 0.4},
    "cf": {"trainable": 1.0},
}
WEIGHT_CONFIGS = (
    {"cf": 1.0, "content": 0.3, "popularity": 0.2, "quality": 0.1},
    {"popularity": 1.0, "quality": 0.5},
    {"cf": 0.5, "item_similarity": 0.5, "content": 0.5},
)
ZIPF_S = 1.1


def zipf_sampler(ids: list[str], rng: random.Random) -> Any:
    """A function drawing from ``ids`` with P(i) ∝ 1 / (i + 1)^ZIPF_S: ``ids[0]`` is the most
    frequent visitor (known users come most active first, see ``_client.activity``)."""
    cumulative = list(itertools.accumulate(1.0 / (r + 1) ** ZIPF_S for r in range(len(ids))))
    return lambda: rng.choices(ids, cum_weights=cumulative, k=1)[0]


def build_plan(
    pool: UserPool, mix: str, n: int, catalogue: dict[str, list[Any]], seed: int
) -> list[tuple[str, dict[str, Any]]]:
    """``n`` (segment, /recommend payload) pairs drawn from the mix; deterministic for a seed."""
    rng = random.Random(seed)
    groups = {
        "trainable": pool.trainable,
        "cold": pool.cold,
        "unknown": pool.unknown(max(n // 3, 1), "load-new"),
    }
    shares = {seg: share for seg, share in MIXES[mix].items() if groups[seg]}
    if not shares:
        raise Unreachable(f"no user ids for mix {mix!r}: pass --processed-dir with the served data")
    samplers = {seg: zipf_sampler(groups[seg], rng) for seg in shares}
    segments = rng.choices(list(shares), weights=list(shares.values()), k=n)
    plan = []
    for segment in segments:
        payload: dict[str, Any] = {"user_id": samplers[segment](), "topk": 10}
        roll = rng.random()
        if roll < 0.10:
            payload["filters"] = random_filter(catalogue, rng)
        elif roll < 0.20:
            payload["rerank"] = True
            payload["rerank_weights"] = rng.choice(WEIGHT_CONFIGS)
        plan.append((segment, payload))
    return plan


def random_filter(catalogue: dict[str, list[Any]], rng: random.Random) -> dict[str, Any]:
    """One valid /recommend filter: a few excluded ids, a brand, a category or a price."""
    options: list[dict[str, Any]] = [{"exclude_product_ids": catalogue["product_id"][:3]}]
    if catalogue["brand"]:
        options.append({"brand": [rng.choice(catalogue["brand"])]})
    if catalogue["category"]:
        options.append({"category": [rng.choice(catalogue["category"])]})
    if catalogue["price"]:
        prices = sorted(catalogue["price"])
        options.append({"price_max": prices[len(prices) // 2]})
    return rng.choice(options)


def filter_values(items: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Sorted distinct ids, brands, categories and prices of ``items`` (filters draw from them)."""
    items = list(items)
    return {
        key: sorted({item[key] for item in items if isinstance(item.get(key), str | int | float)})
        for key in ("product_id", "brand", "category", "price")
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in [0, 100] of ``values`` (0.0 for an empty list)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def cache_counters(cache_stats: Any) -> dict[str, int]:
    """Sum ``hits``/``misses``/``evictions`` over every cache found in a ``/cache_stats`` body.

    Walks the JSON so it does not depend on how caches are nested (top level or under ``caches``).
    """
    totals = {"hits": 0, "misses": 0, "evictions": 0}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("hits"), int) and isinstance(node.get("misses"), int):
                for key in totals:
                    value = node.get(key, 0)
                    totals[key] += value if isinstance(value, int) else 0
                return
            for value in node.values():
                walk(value)

    walk(cache_stats)
    return totals


def per_cache(cache_stats: Any) -> dict[str, dict[str, int]]:
    """``{cache name: {"hits", "misses"}}`` for every cache found in a ``/cache_stats`` body."""
    found: dict[str, dict[str, int]] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("hits"), int) and isinstance(node.get("misses"), int):
                found[name] = {"hits": node["hits"], "misses": node["misses"]}
                return
            for key, value in node.items():
                walk(value, str(key))

    walk(cache_stats, "all")
    return found


def hit_rate(hits: int, misses: int) -> float | None:
    """hits / (hits + misses), or None when there was no lookup at all."""
    total = hits + misses
    return round(hits / total, 4) if total else None


def report_targets(
    targets: Mapping[str, bool], report: Mapping[str, Any], path: Path | None
) -> bool:
    """Print a PASS/MISS line per target, write ``report`` + ``targets`` as JSON to ``path`` when
    given; True when every target passed (the benchmarks' exit status)."""
    for name, passed in targets.items():
        print(f"{'PASS' if passed else 'MISS'}  {name}")
    if path:
        path.write_text(json.dumps({**report, "targets": dict(targets)}, indent=2) + "\n")
    return all(targets.values())
