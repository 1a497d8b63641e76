"""Keep the loaded model out of the garbage collector's full passes.

A model bundle is hundreds of thousands of long-lived Python objects (product records, id
indexes). Every full (generation 2) collection walks all of them with the GIL held: ~100 ms on
the demo shop, a stall of every request in the worker, and the request path's own allocations
(a 1,000-user batch above all) trigger such passes every few seconds under load. After a model
is loaded, :func:`freeze_loaded_objects` collects once and moves everything alive into the
permanent generation (:func:`gc.freeze`), so later passes only walk what requests allocate.
Frozen objects are still freed by reference counting; a replaced model's reference cycles, if
any, stay until the process ends (a reload is rare; workers are recycled).
"""

from __future__ import annotations

import gc
import logging
import time

from recommender.serving import ReloadResult

logger = logging.getLogger(__name__)


def freeze_loaded_objects() -> float:
    """Collect, then freeze every live object; the seconds it took (logged at DEBUG)."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    seconds = time.perf_counter() - started
    logger.debug(
        "froze %d objects out of the collector in %.1f ms", gc.get_freeze_count(), seconds * 1000
    )
    return seconds


def freeze_after_load(result: ReloadResult) -> None:
    """A :class:`~recommender.serving.ModelHolder` reload hook: freeze after each new model."""
    if result.ok:
        freeze_loaded_objects()
