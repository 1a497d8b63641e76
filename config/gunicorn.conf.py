"""Gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py service.api:app``.

Environment knobs (all optional):

- ``GUNICORN_BIND`` (default ``0.0.0.0:8000``), ``WEB_CONCURRENCY`` workers (default 4: one per core
  on a 4-core host; the master loads the model once before it forks them, see ``preload_app``
  below, DEPLOYMENT_OPTIMIZATION.md §9.1 and scripts/benchmark_memory.py),
- ``GUNICORN_PRELOAD`` (default ``1``): ``0`` makes every worker import the app and load its own
  bundle, as gunicorn does without this file (more memory per worker, nothing shared but the
  memory-mapped arrays),
- ``GUNICORN_GRACEFUL_TIMEOUT`` seconds a worker gets after SIGTERM to drain and finish its
  requests (default ``shutdown.drain_seconds`` + 30; then it is killed; a value not above the
  drain period is refused), ``RECSYS_LOGGING__LEVEL`` log level (the app reads it too).

Logs: one JSON object per line, gunicorn's lines in the app's format (``service/log_format.py``:
``time``, ``level``, ``logger``, ``pid``, ``message``; access lines add ``client``, ``method``,
``path``, ``http_version``, ``status``). The plain checklist command
``gunicorn service.api:app -w 4 -k uvicorn.workers.UvicornWorker -b 0.0.0.0:8000`` works without
this file, with gunicorn's default text logs.
"""

import ctypes
import math
import os
import sys

from recommender.config import load_serving_settings


def _one_malloc_arena() -> None:
    """Every thread of the master and of its workers allocates from malloc's main arena, the one
    ``malloc_trim`` hands back whole: a worker's cache warm-up frees ~20 MB of chunk arrays that
    otherwise stay in its thread's own arena, private (DEPLOYMENT_OPTIMIZATION.md §9.1). glibc
    fixes the arena limit when a second thread first allocates: so here, before numpy or pyarrow
    start threads (glibc only; ``MALLOC_ARENA_MAX`` in the environment does the same)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(-8, 1)  # M_ARENA_MAX


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "uvicorn.workers.UvicornWorker"
# After SIGTERM a worker drains for shutdown.drain_seconds (health 503, still serving), then
# finishes its requests: gunicorn must not kill it before that (service/shutdown.py).
drain_seconds = load_serving_settings().shutdown.drain_seconds
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", math.ceil(drain_seconds) + 30))
if graceful_timeout <= drain_seconds:
    raise SystemExit(
        f"GUNICORN_GRACEFUL_TIMEOUT={graceful_timeout} must exceed shutdown.drain_seconds "
        f"({drain_seconds}) plus the longest request, or gunicorn kills workers while they drain"
    )
timeout = 60  # a worker silent this long (stuck, not slow: requests take milliseconds) is restarted
keepalive = (
    5  # seconds an idle keep-alive connection stays open (behind a load balancer: > its idle)
)
# The master imports the app and loads the current model before it forks the workers
# (service/preload.py): the libraries and the bundle's Python objects are then shared
# copy-on-write, as the bundle's large arrays (np.load(mmap_mode="r") maps of files written at
# build time, recommender/serving/array_store.py) are in any case. Each worker serves that bundle
# while it is current and builds its own engine, caches, live state, threads and connections; a
# reload or the registry poller swaps models per worker as before (the new model is then that
# worker's own: SIGHUP loads it in the master again and replaces the workers gracefully).
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"
if preload_app:
    _one_malloc_arena()
loglevel = os.environ.get("RECSYS_LOGGING__LEVEL", "info").lower()
accesslog = "-"
errorlog = "-"

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # the app's formatter: gunicorn's lines and the app's have the same keys (service/log_format.py)
    "formatters": {"json": {"()": "service.log_format.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}


def on_starting(server):
    """Before the sockets and the workers: load the model the workers will share."""
    if server.cfg.preload_app:
        from service.preload import preload_model

        preload_model(server.app.wsgi())


def on_reload(server):
    """SIGHUP, before the new workers are forked: they share the registry's current model."""
    on_starting(server)
