"""``recsys export``: top-K of every known user (or a list) into one parquet file, for campaigns.

An e-mail campaign over the whole customer base must not go through thousands of HTTP calls. The
users are ranked in chunks by :meth:`Engine.recommend_batch` — the code path of
``/batch_recommend``, so the rows are exactly its answers — in worker processes that each load
the bundle (its arrays are memory-mapped: the processes share one copy). Rows are written chunk
by chunk into a temporary file renamed over ``--out`` at the end: a failed export leaves the
previous file alone. The ranking uses the registry's current model only, not the live events of
a running service.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recommender import vocabulary as V
from recommender.config import load_serving_settings
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidDataError
from recommender.storage import atomic_write
from recommender.training.progress import done_line

HELP = (
    "Write the top-K recommendations of every known user (or of the users in --users) to a "
    "parquet file, one row per (user, rank): the answers of /batch_recommend, in chunks, on "
    "--workers processes."
)
SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("segment", pa.string()),
        ("rank", pa.int32()),
        ("product_id", pa.string()),
        ("score", pa.float64()),
    ]
)

_engine: Any = None  # the worker process's Engine (set by _init_worker)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = " (default: %(default)s)"
    parser.add_argument("--out", required=True, help="output parquet file")
    parser.add_argument(
        "--users",
        default=None,
        help="file of user ids: one per line (.txt), or a user_id column (.csv, .parquet); "
        "default: every known user",
    )
    parser.add_argument("--topk", type=int, default=None, help="items per user (default: config)")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="ranking processes" + default,
    )
    parser.add_argument(
        "--chunk", type=int, default=None, help="users per chunk (default: the batch limits)"
    )
    parser.add_argument("--config-dir", default=None, help="directory of serving_config.yaml")


def read_user_file(path: str | Path) -> list[str]:
    """User ids of ``path`` in file order, first occurrence kept.

    Raises:
        InvalidDataError: missing/unreadable file, no ``user_id`` column, or no ids at all.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidDataError(f"--users {p}: no such file. Give a file of user ids.")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".parquet"):
            import pandas as pd

            frame = pd.read_csv(p, dtype=str) if suffix == ".csv" else pd.read_parquet(p)
            if V.USER_ID not in frame.columns:
                raise InvalidDataError(
                    f"--users {p} has no {V.USER_ID!r} column (columns: {list(frame.columns)}). "
                    f"Name the column of ids {V.USER_ID!r}, or give a .txt file with one id a line."
                )
            column = frame[V.USER_ID]
            if column.isna().any():
                line = int(column.isna().to_numpy().argmax()) + 2
                raise InvalidDataError(f"--users {p}: empty {V.USER_ID} on line {line}.")
            ids = [str(x).strip() for x in column]
        else:
            ids = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    except InvalidDataError:
        raise
    except UnicodeDecodeError as exc:
        raise InvalidDataError(f"--users {p} is not UTF-8 text ({exc}).") from exc
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise InvalidDataError(f"--users {p} cannot be read ({exc}).") from exc
    unique = list(dict.fromkeys(i for i in ids if i and not i.startswith("#")))
    if not unique:
        raise InvalidDataError(f"--users {p} holds no user ids (one per line).")
    return unique


def _init_worker(settings: ServingSettings) -> None:
    global _engine
    from recommender.serving import Engine, ServingCaches, load_bundle

    _engine = Engine(load_bundle(settings), ServingCaches.from_settings(settings.cache), settings)


def rank_chunk(users: Sequence[str], topk: int) -> tuple[int, dict[str, list[Any]]]:
    """(users, column lists) of one chunk, ranked by this process's engine (the path of
    ``/batch_recommend``)."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for rec in _engine.recommend_batch(list(users), topk=topk):
        for rank, item in enumerate(rec.items, start=1):
            columns["user_id"].append(rec.user_id)
            columns["segment"].append(rec.segment)
            columns["rank"].append(rank)
            columns["product_id"].append(str(item[V.PRODUCT_ID]))
            columns["score"].append(float(item["score"]))
    return len(users), columns


def _chunks(users: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(users), size):
        yield list(users[start : start + size])


def _progress(total: int, stream: Any) -> Any:
    """A tqdm bar with an ETA (users done/total, rate) on a terminal; otherwise none (the phase
    lines, each with its elapsed seconds, tell the story)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="user", file=stream, disable=not stream.isatty())


def export(
    settings: ServingSettings,
    out: str | Path,
    users: Sequence[str] | None = None,
    topk: int | None = None,
    workers: int = 1,
    chunk: int | None = None,
    stream: Any = None,
) -> dict[str, Any]:
    """Rank ``users`` (default: every known user) and write the parquet atomically.

    Returns a summary: users, rows, seconds, users_per_second, workers.
    """
    from recommender.serving import Engine, ServingCaches, load_bundle

    stream = stream or sys.stderr
    began = time.perf_counter()
    print(f"[1/3] loading the model from {settings.paths.registry_dir}", file=stream, flush=True)
    engine = Engine(load_bundle(settings), ServingCaches.from_settings(settings.cache), settings)
    print(f"      {done_line('loading', time.perf_counter() - began)}", file=stream, flush=True)
    options = engine.options(topk=topk) if topk is not None else engine.options()
    targets = list(users) if users is not None else list(engine.bundle.histories.user_ids)
    limits = settings.requests
    size = min(limits.max_batch_size, max(1, limits.max_batch_items // options.topk))
    size = max(1, min(size, chunk or size))
    workers = max(1, min(workers, -(-len(targets) // size)))
    print(
        f"[2/3] ranking {len(targets)} users (top {options.topk}, {size} a chunk, "
        f"{workers} process{'es' if workers > 1 else ''}) with model {engine.bundle.model_id}",
        file=stream,
        flush=True,
    )
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, SCHEMA) as writer, _progress(len(targets), stream) as bar:
            for count, part in _ranked(engine, settings, targets, size, options.topk, workers):
                table = pa.table(part, schema=SCHEMA)
                writer.write_table(table)
                rows += table.num_rows
                bar.update(count)

    ranking = time.perf_counter()
    atomic_write(out, write)
    seconds = time.perf_counter() - began
    print(f"      {done_line('ranking', time.perf_counter() - ranking)}", file=stream, flush=True)
    summary = {
        "users": len(targets),
        "rows": rows,
        "seconds": round(seconds, 2),
        "users_per_second": round(len(targets) / seconds, 1) if seconds > 0 else None,
        "workers": workers,
    }
    print(
        f"[3/3] wrote {out}: {rows} rows for {len(targets)} users in {seconds:.1f}s "
        f"({summary['users_per_second']} users/s)",
        file=stream,
        flush=True,
    )
    return summary


def _ranked(
    engine: Any,
    settings: ServingSettings,
    users: Sequence[str],
    size: int,
    topk: int,
    workers: int,
) -> Iterator[tuple[int, dict[str, list[Any]]]]:
    """Chunks in input order: ranked here for one worker, else by a process pool."""
    global _engine
    if workers == 1:
        _engine = engine
        for part in _chunks(users, size):
            yield rank_chunk(part, topk)
        return
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(settings,)
    ) as pool:
        parts = list(_chunks(users, size))
        yield from pool.map(rank_chunk, parts, [topk] * len(parts))


def run(args: argparse.Namespace) -> int:
    settings = load_serving_settings(args.config_dir)
    users = read_user_file(args.users) if args.users else None
    if args.topk is not None and args.topk < 1:
        raise InvalidDataError(f"--topk must be at least 1 (got {args.topk}).")
    export(settings, args.out, users, args.topk, args.workers, args.chunk)
    return 0
