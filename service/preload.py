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

import gc
import logging
import time

import orjson
from fastapi import FastAPI

from recommender.serving import ModelBundle
from recommender.serving.allocator import release_free_heap
from recommender.serving.engine import compile_kernels
from recommender.serving.new_products import bundle_embedder
from service.responses import ORJSON_OPTIONS

logger = logging.getLogger(__name__)


def preload_model(app: FastAPI) -> ModelBundle | None:
    """Load ``app``'s current model into ``app.state.preloaded`` (None when the load failed), then
    freeze the heap for the workers that will be forked; the bundle or None."""
    app.state.preloaded = None
    gc.unfreeze()  # on SIGHUP: the replaced bundle's reference cycles are collectable again
    gc.collect()  # ... and collected before the new one is loaded beside it
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
    try:  # the one-request kernels, compiled once here rather than in every worker
        compile_kernels(bundle)
    except Exception as exc:  # noqa: BLE001 - then each worker's engine compiles them
        logger.warning("the request kernels were not compiled in the master: %s", exc)
    _encode_records(bundle)
    gc.collect()
    gc.freeze()  # the forked workers' collections skip (and never write to) the loaded objects
    release_free_heap()  # the load's temporaries: else mapped into every worker's PSS
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


def _encode_records(bundle: ModelBundle) -> None:
    """Encode the product records once, here. orjson asks CPython for the UTF-8 form of every
    non-ASCII string it writes (Vietnamese names, brands), which CPython then keeps inside the
    string: made in the master, those are shared; made on a worker's first answers, they cost it
    a private copy of every page such a string lies on (~5 MB a worker at 50K products)."""
    try:
        orjson.dumps(bundle.catalogue.records, option=ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:  # a record the answers encode otherwise
        logger.debug("product records not pre-encoded: %s", exc)
