"""Load the model once in gunicorn's master, before it forks the workers (``preload_app``).

Why: a worker that loads its own bundle holds its own copy of everything that is not
memory-mapped: the imported libraries (~115 MB) and the bundle's Python objects (catalogue
records, id indexes, score vectors: ~100 MB at 1M users × 50K products). Loaded in the master,
those pages are shared copy-on-write by every worker it forks (DEPLOYMENT_OPTIMIZATION.md §9.1).
:func:`preload_model` runs from ``config/gunicorn.conf.py``'s hooks: it loads the bundle with the
app's loader, keeps it on ``app.state.preloaded``, then collects and freezes the heap
(:func:`gc.freeze`) so that no worker's collector writes to those objects, and hands the freed
heap back to the kernel. Each worker's lifespan passes the bundle to its holder, which serves it
while it is still the registry's current model and loads as usual otherwise; engine, caches,
live state, warm-up, poller threads and event-store connections are created in the worker.

A preload that fails is logged and skipped: the workers then load on their own and report the
failure the usual way (/health 503 with the reason, the poller retries), so a corrupt model never
stops the master. ``uvicorn service.api:app`` and gunicorn without this config never preload.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import time

from fastapi import FastAPI

from recommender.serving import ModelBundle
from recommender.serving.new_products import bundle_embedder

logger = logging.getLogger(__name__)


def preload_model(app: FastAPI) -> ModelBundle | None:
    """Load ``app``'s current model into ``app.state.preloaded`` (None when the load failed), then
    freeze the heap for the workers that will be forked; the bundle or None."""
    app.state.preloaded = None
    gc.collect()  # the bundle being replaced, before the new one is loaded beside it
    started = time.perf_counter()
    try:
        bundle = app.state.loader(app.state.settings)
    except Exception as exc:  # noqa: BLE001 - the workers load (and report failures) themselves
        logger.warning("no model preloaded, each worker loads its own: %s", exc)
        return None
    app.state.preloaded = bundle
    try:  # the new-product encoder's libraries (scikit-learn: ~33 MB), imported for every worker
        bundle_embedder(app.state.settings.paths.processed_dir, bundle)
    except Exception as exc:  # noqa: BLE001 - then each worker imports them (and reports it)
        logger.warning("the new-product encoder was not preloaded: %s", exc)
    gc.collect()
    gc.freeze()  # the forked workers' collections skip (and never write to) the loaded objects
    _trim_heap()
    logger.info(
        "preloaded model %s for the workers in %.2fs",
        bundle.model_id,
        time.perf_counter() - started,
    )
    return bundle


def take_preloaded(app: FastAPI) -> ModelBundle | None:
    """The master's preloaded bundle, once: a worker's later reloads load from the registry."""
    bundle: ModelBundle | None = getattr(app.state, "preloaded", None)
    app.state.preloaded = None
    return bundle


def _trim_heap() -> None:
    """Return the master's freed heap (the load's temporaries) to the kernel: pages left dirty in
    the master would be mapped into every worker and counted in its PSS (glibc only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
