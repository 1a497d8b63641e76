"""Open the experiment ledger the settings name: ``experiments.ledger_backend`` is ``sqlite``
(one host, the default) or ``redis`` (several hosts share one table, stop and promote)."""

from __future__ import annotations

from recommender.config.experiments import ExperimentsSettings
from recommender.experiments.ledger import ExperimentLedger, LedgerBase


def open_ledger(settings: ExperimentsSettings) -> LedgerBase:
    """The configured backend; never connects eagerly (a ledger that is down at start-up only
    costs impressions and the table, never an answer)."""
    if settings.ledger_backend == "redis":
        from recommender.experiments.redis_ledger import RedisLedger  # redis only when used

        return RedisLedger(
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            socket_timeout_seconds=settings.redis_socket_timeout_seconds,
            flush_seconds=settings.flush_seconds,
            retention_days=settings.retention_days,
            compact_interval_seconds=settings.compact_interval_seconds,
        )
    return ExperimentLedger(
        settings.ledger_path,
        settings.flush_seconds,
        retention_days=settings.retention_days,
        compact_interval_seconds=settings.compact_interval_seconds,
    )
