"""Keep the batch path's arrays in the process heap instead of fresh pages from the kernel.

A batch chunk allocates a dozen ``(users, items)`` arrays (1.6 MB each for 200 users of the demo
shop). glibc's malloc serves such sizes with ``mmap`` or returns them to the kernel when the free
top of the heap passes its trim threshold, so the next chunk's arrays are new pages, each
faulted in on its first write: on the demo shop ~40% of a 1,000-user batch's CPU time
(DEPLOYMENT_OPTIMIZATION.md §2). With the ``mmap`` and trim thresholds set to ``megabytes`` the
freed arrays stay in the heap and the next chunk reuses them; the process keeps at most that
much freed memory. Single requests allocate a few kB and never reach either threshold.

Only glibc on Linux has these knobs (``mallopt``); elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's upper bound on 64-bit (mallopt refuses more)
_applied: int | None = None


def retain_heap(megabytes: int) -> bool:
    """Set glibc's ``mmap`` threshold (at most its 32 MB bound) and trim threshold to
    ``megabytes`` MB (0: leave malloc's defaults); whether they were set. Process-wide and
    idempotent: a model reload calls it again with the same value."""
    global _applied
    if megabytes <= 0:
        return False
    if _applied == megabytes:
        return True
    mallopt = _glibc("mallopt")
    if mallopt is None:  # not glibc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    size = int(megabytes) << 20
    done = bool(mallopt(_M_MMAP_THRESHOLD, min(size, _MMAP_THRESHOLD_MAX))) and bool(
        mallopt(_M_TRIM_THRESHOLD, size)
    )
    if done:
        _applied = megabytes
        log.debug("malloc keeps up to %d MB of freed arrays (batch.retain_heap_mb)", megabytes)
    return done


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the kernel (glibc ``malloc_trim(0)``); whether it could.

    Why: a cache warm-up scores hundreds of users in chunks, and their freed arrays stayed in the
    heap (~40 MB a worker at 50K products), private to each worker, until a batch happened to
    reuse them. glibc trims only its main arena whole: ``config/gunicorn.conf.py`` keeps every
    thread of the preloading master's workers on it (``M_ARENA_MAX`` 1).
    """
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    return bool(trim(0))


def _glibc(name: str) -> Any:
    """glibc's function ``name`` (None off Linux, or where the C library has no such symbol)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
