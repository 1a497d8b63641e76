"""Request and response models of the HTTP API (SPEC §6).

Requests are strict: unknown fields, wrong types (``"10"`` for ``topk``, ``true`` for ``user_id``)
and out-of-range values are 422. Ranges that come from config (``topk`` ≤ ``requests.max_topk``,
batch size ≤ ``requests.max_batch_size``) are checked by the engine/route, so a config change
takes effect without a code change. Response models document the API (OpenAPI); routes return
pre-shaped dicts serialised by orjson.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from recommender import vocabulary as V

MAX_ID_LENGTH = 128


def _identifier(value: Any) -> int | str:
    """An id is an int or a non-empty string of at most 128 characters (not a bool or float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID_LENGTH:
        return value.strip()
    raise ValueError(
        f"must be an integer or a non-empty string of at most {MAX_ID_LENGTH} characters"
    )


Identifier = Annotated[
    int | str,
    PlainValidator(_identifier, json_schema_input_type=int | str),
    Field(description="An id as int or string (compared as its string form)."),
]
FilterValues = Annotated[
    list[Annotated[StrictStr, StringConstraints(max_length=200)]], Field(max_length=200)
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendFilters(_Request):
    """Values inside one list are OR-ed, different filters AND-ed; matching ignores case."""

    brand: FilterValues | None = None
    category: FilterValues | None = None
    skin_type: FilterValues | None = None
    price_min: float | None = Field(None, ge=0, allow_inf_nan=False)
    price_max: float | None = Field(None, ge=0, allow_inf_nan=False)
    exclude_product_ids: Annotated[list[Identifier], Field(max_length=1000)] | None = None


class _RecommendOptions(_Request):
    topk: StrictInt | None = Field(
        None, ge=1, description="1..requests.max_topk (100); default requests.default_topk (10)"
    )
    exclude_seen: StrictBool = True
    filters: RecommendFilters | None = None
    rerank: StrictBool | None = Field(None, description="MMR diversity; default rerank.enabled")
    rerank_weights: dict[str, float] | None = Field(
        None,
        description=f"signal -> weight over {', '.join(V.SIGNALS)}; finite, >= 0, not all zero",
    )


class RecommendRequest(_RecommendOptions):
    user_id: Identifier
    explain: StrictBool = False


class BatchRecommendRequest(_RecommendOptions):
    user_ids: Annotated[list[Identifier], Field(min_length=1)] = Field(
        ..., description="1..requests.max_batch_size (1000) user ids"
    )


class SimilarItemsRequest(_Request):
    product_id: Identifier
    topk: StrictInt = Field(10, ge=1, description="1..requests.max_similar_topk (50)")
    method: Literal["auto", "cf", "content"] = "auto"


class ProductOut(BaseModel):
    product_id: str
    rank: int
    score: float
    name: str | None = None
    brand: str | None = None
    category: str | None = None
    price: float | None = None
    avg_rating: float | None = None
    num_ratings: float | None = None
    num_sold: float | None = None
    skin_types: list[str] = []
    explain: dict[str, Any] | None = Field(
        None, description="relevance and per-signal value/weight/contribution (explain=true)"
    )


class UserRecommendations(BaseModel):
    user_id: int | str
    segment: Literal["trainable", "cold", "unknown"]
    strategy: Literal["cf", "content", "popularity"]
    is_fallback: bool
    fallback_method: str | None
    recommendations: list[ProductOut]


class RecommendResponse(UserRecommendations):
    model_id: str
    topk: int
    latency_ms: float


class BatchRecommendResponse(BaseModel):
    results: list[UserRecommendations]
    count: int
    cf_users: int
    fallback_users: int
    model_id: str
    topk: int
    total_latency_ms: float


class SimilarItemsResponse(BaseModel):
    product_id: int | str
    method: Literal["cf", "content"]
    similar_items: list[ProductOut]
    model_id: str
    topk: int
    latency_ms: float


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    model_id: str | None = None
    model_type: str | None = None
    n_users: int | None = None
    n_trainable_users: int | None = None
    n_items: int | None = None
    loaded_at: str | None = None
    uptime_seconds: float
    pid: int
    reason: str | None = None
    last_reload_error: dict[str, Any] | None = None


class ReloadResponse(BaseModel):
    status: Literal["reloaded"]
    previous_model_id: str | None
    model_id: str | None
    seconds: float


class CacheCounters(BaseModel):
    size: int
    max_size: int
    ttl_seconds: float
    hits: int
    misses: int
    hit_rate: float
    evictions: int
    bytes: int = Field(description="estimated bytes held by the entries now")
    entry_max_bytes: int | None = Field(
        description="largest entry this model and the request limits allow"
    )
    max_bytes: int | None = Field(description="bound: max_size × entry_max_bytes")


class WarmupOut(BaseModel):
    state: Literal["pending", "running", "done", "partial", "disabled", "failed"]
    items_warmed: int
    users_warmed: int
    seconds: float
    max_seconds: float
    started_at: float | None
    error: str | None


class CacheSummary(BaseModel):
    user_profile: CacheCounters
    item_similarity: CacheCounters
    results: CacheCounters
    warmup: WarmupOut


class CacheStatsResponse(CacheSummary):
    model_id: str


class LatencySummary(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None


class EndpointStats(BaseModel):
    count: int
    errors: int
    latency_ms: LatencySummary


class ModelVersion(BaseModel):
    model_id: str
    model_type: str | None
    data_version: str | None
    embedding_version: str | None
    loaded_at: float


class ReloadStats(BaseModel):
    successes: int
    failures: int
    last_success_at: float | None
    last_failure_at: float | None
    last_error: dict[str, Any] | None


class StatsResponse(BaseModel):
    """This worker's numbers (``/metrics`` has the same, in Prometheus form)."""

    uptime_seconds: float
    requests_total: int
    errors_total: int
    errors_by_code: dict[str, int]
    endpoints: dict[str, EndpointStats]
    paths: dict[str, int] = Field(description="users served per path: cf, content, popularity")
    recommend_latency_ms_by_path: dict[str, LatencySummary]
    latency_window: int
    model_id: str | None
    model: ModelVersion | None
    reloads: ReloadStats
    caches: CacheSummary | None = Field(None, description="null while no model is loaded")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (422, "invalid input"),
        (413, "body too large"),
        (503, "no model loaded"),
    )
}
