"""Log format: one JSON object per line, one set of keys for the app, uvicorn and gunicorn.

``config/gunicorn.conf.py`` formats gunicorn's own lines with :class:`JsonFormatter` too, so one
parser reads every line a deployment writes: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
``logger``, ``pid``, ``message``; access lines add ``client``, ``method``, ``path``,
``http_version`` and ``status``; a traceback comes as ``exception``.
"""

from __future__ import annotations

import json
import logging
import time

from recommender.config import ServingSettings

_LOGGERS = ("recommender", "service", "uvicorn", "uvicorn.error", "uvicorn.access")
ACCESS_LOGGERS = ("uvicorn.access",)
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; uvicorn's access lines also get their fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.name in ACCESS_LOGGERS and isinstance(record.args, tuple):
            if len(record.args) == len(ACCESS_FIELDS):  # (client, method, path, version, status)
                entry.update(zip(ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: ServingSettings) -> None:
    """Level and format of the project's and uvicorn's loggers from ``logging.*`` (idempotent).

    Each logger in ``_LOGGERS`` gets exactly one handler of ours (uvicorn's own handlers are
    replaced, so its startup and access lines come out in the same JSON format) and does not
    propagate, so no line is printed twice. ``uvicorn --log-level`` is overridden: the configured
    ``logging.level`` applies, as for the application's loggers.
    """
    formatter: logging.Formatter = (
        JsonFormatter()
        if settings.logging.json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    for name in _LOGGERS:
        log = logging.getLogger(name)
        log.setLevel(settings.logging.level)
        handler = next((h for h in log.handlers if getattr(h, "_recsys", False)), None)
        if handler is None:
            handler = logging.StreamHandler()
            handler._recsys = True  # type: ignore[attr-defined]
        log.handlers = [handler]
        log.propagate = False
        handler.setFormatter(formatter)
