"""Gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py service.api:app``.

Environment knobs (all optional):

- ``GUNICORN_BIND`` (default ``0.0.0.0:8000``), ``WEB_CONCURRENCY`` workers (default 4: one per core
  on a 4-core host; every worker loads its own model bundle, see DEPLOYMENT_OPTIMIZATION.md),
- ``GUNICORN_GRACEFUL_TIMEOUT`` seconds a worker gets after SIGTERM to finish in-flight requests
  (default 30; then it is killed), ``RECSYS_LOGGING__LEVEL`` log level (the app reads it too).

Logs: one JSON object per line on stderr (errors/lifecycle) and stdout (uvicorn access lines, with
``client``, ``method``, ``path``, ``status`` fields). The plain checklist command
``gunicorn service.api:app -w 4 -k uvicorn.workers.UvicornWorker -b 0.0.0.0:8000`` works without
this file, with gunicorn's default text logs.
"""

import json
import logging
import os
import time

bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "uvicorn.workers.UvicornWorker"
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = 60  # a worker silent this long (stuck, not slow: requests take milliseconds) is restarted
keepalive = 5  # seconds an idle keep-alive connection stays open (behind a load balancer: > its idle)
preload_app = False  # each worker builds its bundle in its own lifespan; mmap'd arrays share pages
loglevel = os.environ.get("RECSYS_LOGGING__LEVEL", "info").lower()
accesslog = "-"
errorlog = "-"

ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; uvicorn access records get their fields split out."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(zip(ACCESS_FIELDS, record.args, strict=False))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}
