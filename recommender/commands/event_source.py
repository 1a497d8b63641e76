"""``--events`` of ``prepare`` / ``build`` / ``events``: which event store to read.

``auto`` (the default) is the store configured in ``serving_config.yaml`` (``events``): the SQLite
file when it exists (a relative path is taken from the working directory, like the service's),
or the Redis server; ``none`` reads no store; a ``redis://`` / ``rediss://`` URL or the path of an
existing SQLite file names one explicitly.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recommender.config import load_serving_settings
from recommender.config.serving import EventsSettings
from recommender.config.training import EventsInputSettings
from recommender.data.event_input import EventInput, read_event_input
from recommender.errors import InvalidRequestError
from recommender.events import EventStore, open_event_store

AUTO = "auto"
NONE = "none"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
log = logging.getLogger(__name__)


def add_events_argument(parser: argparse.ArgumentParser, default: str = AUTO) -> None:
    parser.add_argument(
        "--events",
        default=default,
        metavar="auto|none|PATH|URL",
        help=(
            "event store to read: auto = the configured one (serving_config.yaml events) when its "
            "SQLite file exists or it is Redis; none; a SQLite file; a redis:// URL "
            "(default: %(default)s)"
        ),
    )


def open_source_store(
    spec: str, config_dir: str | None, required: bool = False
) -> tuple[EventStore | None, str]:
    """The store ``spec`` names and a description of it; ``(None, why)`` when there is none.

    ``required`` (the ``events`` commands) turns "no store" into a one-line error.
    """
    configured = load_serving_settings(config_dir).events
    if spec == NONE:
        if required:
            raise InvalidRequestError("--events none: this command needs an event store.")
        return None, "--events none"
    if spec == AUTO:
        settings = configured
    elif spec.startswith(REDIS_SCHEMES):
        settings = configured.model_copy(update={"backend": "redis", "redis_url": spec})
    else:
        settings = configured.model_copy(update={"backend": "sqlite", "sqlite_path": spec})
        if not Path(spec).is_file():
            raise InvalidRequestError(
                f"--events {spec}: no such SQLite event store file; pass the path of the store "
                "the service writes (events.sqlite_path), a redis:// URL, or none."
            )
    if settings.backend == "sqlite" and not Path(settings.sqlite_path).is_file():
        if required:
            raise InvalidRequestError(
                f"event store {settings.sqlite_path} does not exist; pass --events PATH|URL."
            )
        return None, f"no event store at {settings.sqlite_path}"
    return open_event_store(settings), describe(settings)


def describe(settings: EventsSettings) -> str:
    """Where a store is, for logs and ``data_stats.json`` (a Redis URL without its password)."""
    if settings.backend == "redis":
        url = settings.redis_url
        if "@" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return f"redis {url} {settings.redis_key_prefix}"
    return f"sqlite {Path(settings.sqlite_path).resolve()}"


def read_source_events(
    spec: str, config_dir: str | None, settings: EventsInputSettings
) -> EventInput | None:
    """Everything in the store ``spec`` names, as prepare's input (None without a store)."""
    store, where = open_source_store(spec, config_dir)
    if store is None:
        log.info("prepare: building from the source only (%s)", where)
        return None
    with store:
        events = read_event_input(store, settings, where)
    log.info(
        "prepare: read %d events (%d interactions) and %d product records up to seq %d from %s",
        events.events_read,
        len(events.interactions),
        len(events.products),
        events.latest_seq,
        where,
    )
    return events
