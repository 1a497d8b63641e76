"""Open the event store the settings name: ``events.backend`` is ``sqlite`` or ``redis``."""

from __future__ import annotations

from pathlib import Path

from recommender.config.serving import EventsSettings
from recommender.events.store import EventStore


def open_event_store(settings: EventsSettings, base_dir: str | Path | None = None) -> EventStore:
    """The configured backend; a relative ``sqlite_path`` is resolved against ``base_dir``.

    Never connects eagerly: a store that is down at start-up raises
    :class:`~recommender.errors.StoreUnavailableError` on first use, so the service can start
    and keep recommending from the model.
    """
    if settings.backend == "redis":
        from recommender.events.redis_store import RedisEventStore  # redis only when used

        return RedisEventStore(
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            socket_timeout_seconds=settings.redis_socket_timeout_seconds,
            retries=settings.redis_retries,
            ack_timeout_seconds=settings.ack_timeout_seconds,
        )
    from recommender.events.sqlite_store import SqliteEventStore

    path = Path(settings.sqlite_path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return SqliteEventStore(
        path,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        ack_timeout_seconds=settings.ack_timeout_seconds,
    )
