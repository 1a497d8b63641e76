"""Log format: one JSON object per line for the project's and uvicorn's loggers."""

from __future__ import annotations

import json
import logging

from recommender.config import ServingSettings

_LOGGERS = ("recommender", "service", "uvicorn", "uvicorn.error", "uvicorn.access")


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; uvicorn's access lines also get their fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            if len(record.args) == 5:  # (client, method, path, http version, status)
                client, method, path, _, status = record.args
                entry.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: ServingSettings) -> None:
    """Level and format of the project's and uvicorn's loggers from ``logging.*`` (idempotent).

    Each logger in ``_LOGGERS`` gets exactly one handler of ours (uvicorn's own handlers are
    replaced, so its startup and access lines come out in the same JSON format) and does not
    propagate, so no line is printed twice. ``uvicorn --log-level`` is overridden: the configured
    ``logging.level`` applies, as for the application's loggers.
    """
    formatter: logging.Formatter = (
        _JsonFormatter()
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
