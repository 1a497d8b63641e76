"""Run independent training jobs (one per model type) on forked worker processes.

The demo build tunes ALS, BPR and EASE one after the other, each mostly on one core (BPR and the
hybrid search are single-threaded numpy/numba), so a 2-core machine sat half idle. The jobs share
nothing but read-only inputs, so forked workers see those inputs without pickling them; only each
job's result (a ``TrainedModel``: factors and a few dicts) travels back. Progress lines a worker
prints go through a queue to the parent's ``say``, as they happen. Where ``fork`` is unavailable,
or with one worker, the jobs run here in order; either way the results are the same (each job
seeds its own randomness).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_job: Callable[[Any, Callable[[str], None]], Any] | None = None  # set in the parent before fork
_lines: Any = None  # the fork context's SimpleQueue of progress lines
_in_worker = False  # set in each forked worker


def worker_threads(threads: int) -> int:
    """``threads`` here; 1 in a forked worker. The workers already fill the cores, and GNU
    OpenMP (implicit's ALS) deadlocks in a forked child that starts a team of 2+ threads after
    its parent ran one (a child with one thread is safe: tests/recommender/training/
    test_parallel.py::test_a_worker_fits_als_after_the_parent_ran_openmp)."""
    return 1 if _in_worker else threads


def _run(item: Any) -> Any:
    global _in_worker
    assert _job is not None and _lines is not None
    _in_worker = True
    return _job(item, _lines.put)


def parallel_map(
    job: Callable[[T, Callable[[str], None]], R],
    items: Sequence[T],
    workers: int,
    say: Callable[[str], None],
) -> list[R]:
    """``[job(item, say) for item in items]``, on up to ``workers`` forked processes."""
    workers = min(workers, len(items))
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return [job(item, say) for item in items]
    global _job, _lines
    context = mp.get_context("fork")
    _job, _lines = job, context.SimpleQueue()
    lines = _lines

    def relay() -> None:
        while (line := lines.get()) is not None:
            say(line)

    relayer = threading.Thread(target=relay, daemon=True)
    relayer.start()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_run, items))
    finally:
        lines.put(None)
        relayer.join(timeout=10)
        _job, _lines = None, None
