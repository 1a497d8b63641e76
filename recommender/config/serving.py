"""Serving settings: the typed model of ``config/serving_config.yaml`` (keys documented there)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender import vocabulary as V
from recommender.config.candidates import CandidateSettings
from recommender.config.experiments import ExperimentsSettings

__all__ = ["CandidateSettings", "ServingSettings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsSettings(_Strict):
    processed_dir: str = V.DEFAULT_PROCESSED_DIR
    registry_dir: str = V.DEFAULT_REGISTRY_DIR


class CacheSpec(_Strict):
    max_size: int = Field(50_000, ge=1)
    ttl_seconds: float = Field(3600.0, gt=0)
    # the most bytes the entries may hold: max_size shrinks to what fits (None: max_size alone)
    max_bytes: int | None = Field(None, ge=1)


class CacheSettings(_Strict):
    # a profile is 4 bytes a product: 256 MiB hold 30,161 at 2,000 products, 1,336 at 50,000
    user_profile: CacheSpec = CacheSpec(max_size=50_000, ttl_seconds=3600.0, max_bytes=256 * 2**20)
    item_similarity: CacheSpec = CacheSpec(max_size=5_000, ttl_seconds=3600.0)
    results: CacheSpec = CacheSpec(max_size=10_000, ttl_seconds=300.0)
    # "repeat" (the shipped serving_config.yaml's): a user's profile and answer are stored on
    # their second request within the doorkeeper's memory (most storefront visitors come once:
    # storing their first is wasted work); "always": on the first (a library Engine's default,
    # so that code building its own settings caches as it always did)
    admission: Literal["always", "repeat"] = "always"


class WarmupSettings(_Strict):
    enabled: bool = True
    popular_items: int = Field(200, ge=0)
    active_users: int = Field(1000, ge=0)
    max_seconds: float = Field(2.0, ge=0)


class RequestSettings(_Strict):
    default_topk: int = Field(10, ge=1, le=100)
    max_topk: int = Field(100, ge=1, le=1000)
    max_similar_topk: int = Field(50, ge=1, le=1000)
    max_batch_size: int = Field(1000, ge=1)
    max_batch_items: int = Field(20_000, ge=1)
    max_context_items: int = Field(50, ge=1, le=10_000)
    max_body_bytes: int = Field(1_048_576, ge=1024)


class BatchSettings(_Strict):
    max_concurrent: int = Field(1, ge=1)
    max_wait_seconds: float = Field(2.0, ge=0)
    retry_after_seconds: int = Field(1, ge=1)
    chunk_users: int = Field(200, ge=1)
    # freed batch arrays kept in the heap, MB (0: malloc's defaults): recommender.serving.allocator
    retain_heap_mb: int = Field(32, ge=0, le=2047)
    # threads a chunk's ANN queries are searched on (the candidate stage; same results)
    search_threads: int = Field(1, ge=1, le=64)


class RerankSettings(_Strict):
    enabled: bool = True
    diversity: float = Field(0.1, ge=0.0, le=1.0)
    candidate_multiplier: int = Field(3, ge=1, le=20)
    weights: dict[str, dict[str, float]] | None = None
    similar_user_weight: float = Field(0.5, ge=0.0, le=1.0)


class ReloadSettings(_Strict):
    poll_interval_seconds: float = Field(5.0, ge=0)
    freeze_gc: bool = True  # service.heap: the loaded model out of the GC's full passes


class ShutdownSettings(_Strict):
    drain_seconds: float = Field(5.0, ge=0, le=300)


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = True


class CorsSettings(_Strict):
    allow_origins: list[str] = Field(default_factory=list)
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST"])
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])


class AdminSettings(_Strict):
    token_env: str = "RECSYS_ADMIN_TOKEN"
    public_sample_ids: bool = True


class PopularityWeights(_Strict):
    """How much one live event of each type counts towards trending popularity."""

    view: float = Field(1.0, ge=0)
    cart: float = Field(3.0, ge=0)
    purchase: float = Field(5.0, ge=0)
    rating: float = Field(2.0, ge=0)
    remove_from_cart: float = Field(0.0, ge=0)


EventKind = Literal["view", "cart", "purchase", "rating", "remove_from_cart"]
DEFAULT_SEEN_TYPES: tuple[EventKind, ...] = ("cart", "purchase", "rating")


class EventsSettings(_Strict):
    """The shared event store (``recommender.events``) and the limits of ingestion."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = V.DEFAULT_EVENTS_SQLITE_PATH
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    sqlite_busy_timeout_ms: int = Field(5000, ge=0)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = Field("recsys:{events}:", min_length=1)
    redis_socket_timeout_seconds: float = Field(1.0, gt=0)
    redis_retries: int = Field(3, ge=0, le=20)
    ack_timeout_seconds: float = Field(10.0, gt=0)
    max_batch: int = Field(500, ge=1, le=100_000)
    clock_skew_seconds: float = Field(300.0, ge=0)
    poll_interval_seconds: float = Field(0.5, gt=0)
    replay_batch: int = Field(5000, ge=1)
    popularity_weights: PopularityWeights = PopularityWeights()
    # event types whose product is "seen" (excluded from the user's answers); purchase always is
    seen_types: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_SEEN_TYPES))
    # a trainable user's CF vector from the full live history (ALS fold-in) instead of the row;
    # None: the model's own choice (``live_fold_in``, decided on validation by the build)
    trainable_fold_in: bool | None = None
    positive_rating: int = Field(4, ge=1, le=5)  # a live rating at least this is taste evidence
    # live-state memory bounds per worker (see LiveState._evict): the newest items per user
    # (seen and liked, each), and seen + liked entries over all users before the least recently
    # active users' live history is dropped
    max_items_per_user: int = Field(500, ge=1)
    max_live_items: int = Field(2_000_000, ge=1)
    popularity_refresh_seconds: float = Field(
        1.0, ge=0
    )  # live popularity recomputed at most this often
    # products the model does not know (PUT) served at once, until the next build folds them in
    max_new_products: int = Field(1000, ge=0, le=10_000)  # ranking tie-break holds to ~12K items


class ServingSettings(_Strict):
    """Everything the running service can be tuned by."""

    paths: PathsSettings = PathsSettings()
    cache: CacheSettings = CacheSettings()
    warmup: WarmupSettings = WarmupSettings()
    requests: RequestSettings = RequestSettings()
    batch: BatchSettings = BatchSettings()
    rerank: RerankSettings = RerankSettings()
    candidates: CandidateSettings = CandidateSettings()
    reload: ReloadSettings = ReloadSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    logging: LoggingSettings = LoggingSettings()
    cors: CorsSettings = CorsSettings()
    admin: AdminSettings = AdminSettings()
    events: EventsSettings = EventsSettings()
    experiments: ExperimentsSettings = ExperimentsSettings()
