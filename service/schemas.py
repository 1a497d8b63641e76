"""Request and response models of the HTTP API (SPEC §6).

Requests are strict: unknown fields, wrong types (``"10"`` for ``topk``, ``true`` for ``user_id``,
``"100"`` or ``true`` for a number; JSON integers are fine where a number is expected) and
out-of-range values are 422. Ranges that come from config (``topk`` ≤ ``requests.max_topk``,
batch size ≤ ``requests.max_batch_size``) are checked by the engine, so a config change takes
effect without a code change; :mod:`service.openapi` writes the same limits from the running
settings into the OpenAPI schema, so that a schema-valid request is never a 422. Response models
document the API (OpenAPI); routes return pre-shaped dicts serialised by orjson.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from recommender import vocabulary as V
from recommender.scoring.hybrid import MAX_WEIGHT

MAX_ID_LENGTH = 128
EXACT_FLOAT_INT = 2**53  # floats represent every integer up to this exactly
# the integers whose decimal string has at most MAX_ID_LENGTH characters (sign included)
MAX_INT_ID = 10**MAX_ID_LENGTH - 1
MIN_INT_ID = -(10 ** (MAX_ID_LENGTH - 1) - 1)
_ID_RULE = (
    f"a string of 1..{MAX_ID_LENGTH} characters (not only spaces) or an integer, which is "
    f"converted to its decimal string of at most {MAX_ID_LENGTH} characters"
)


def _integral(value: Any) -> Any:
    """``10.0`` -> ``10``: JSON Schema counts a number without fraction as an integer, so the
    server does too (exactly representable ones only); anything else is left for the type check.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOAT_INT:
        return int(value)
    return value


Topk = Annotated[int, Field(strict=True, ge=1), BeforeValidator(_integral)]
"""``topk``: a JSON integer (``10.0`` too), never ``"10"`` or ``true``; the upper bound is
config (:mod:`service.openapi`)."""


def _identifier(value: Any) -> str:
    """An id as its string form: a 1..128-character string (surrounding spaces are dropped) or an
    int converted to its decimal string of at most 128 characters; never a bool or float.

    Ids are compared as strings anyway, and a string always echoes back (orjson cannot encode an
    int beyond 64 bits)."""
    value = _integral(value)
    if isinstance(value, float) and value.is_integer():
        raise ValueError(
            "an integer id written as a float beyond 2**53 is not exact: send it as an integer "
            "without fraction or exponent, or as a string"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        if MIN_INT_ID <= value <= MAX_INT_ID:
            return str(value)
        raise ValueError(f"integer id too long: an id must be {_ID_RULE}")
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH and value.strip():
        return value.strip()
    raise ValueError(f"an id must be {_ID_RULE}")


Identifier = Annotated[
    str,
    PlainValidator(_identifier),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": r"\S"},
                {"type": "integer", "minimum": MIN_INT_ID, "maximum": MAX_INT_ID},
            ],
            "description": f"An id: {_ID_RULE}. Responses echo the string form.",
        },
        mode="validation",
    ),
]
FilterValues = Annotated[
    list[Annotated[StrictStr, StringConstraints(max_length=200)]], Field(max_length=200)
]
Price = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Weight = Annotated[float, Field(strict=True, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]


def _known_signal(name: str) -> str:
    if name not in V.SIGNALS:
        raise ValueError(f"unknown signal {name!r}; known signals are {', '.join(V.SIGNALS)}")
    return name


Signal = Annotated[str, AfterValidator(_known_signal)]
# rerank_weights' JSON Schema, written out for its "some weight above 0" rule (pydantic checks it
# in RecommendOptions._some_weight): at least one signal is present with a value above 0
_WEIGHTS_SCHEMA = {
    "type": "object",
    "propertyNames": {"enum": list(V.SIGNALS)},
    "additionalProperties": {"type": "number", "minimum": 0, "maximum": MAX_WEIGHT},
    "minProperties": 1,
    "anyOf": [
        {"required": [name], "properties": {name: {"exclusiveMinimum": 0}}} for name in V.SIGNALS
    ],
}
Weights = Annotated[
    dict[Signal, Weight], Field(min_length=1), WithJsonSchema(_WEIGHTS_SCHEMA, mode="validation")
]


# Examples (shown by /docs, sent by schemathesis' examples phase) use ids of the demo shop:
# user "1" and product "p00001"; an id the model does not know gets the popularity answer.
DEMO_USER = "1"
DEMO_PRODUCT = "p00001"
FILTERS_EXAMPLE: dict[str, Any] = {
    "category": ["Kem dưỡng"],
    "skin_type": ["da dầu"],
    "price_max": 500000,
    "exclude_product_ids": [DEMO_PRODUCT],
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendFilters(_Request):
    """Values inside one list are OR-ed, different filters AND-ed; matching ignores case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [FILTERS_EXAMPLE, {"brand": ["Cocoon"], "price_min": 100000}]
        },
    )

    brand: FilterValues | None = None
    category: FilterValues | None = None
    skin_type: FilterValues | None = None
    price_min: Price | None = Field(None, description="at most price_max when both are given")
    price_max: Price | None = Field(None, description="at least price_min when both are given")
    exclude_product_ids: Annotated[list[Identifier], Field(max_length=1000)] | None = None


class _RecommendOptions(_Request):
    topk: Topk | None = Field(
        None, description="1..requests.max_topk (100); default requests.default_topk (10)"
    )
    exclude_seen: StrictBool = True
    filters: RecommendFilters | None = None
    rerank: StrictBool | None = Field(None, description="MMR diversity; default rerank.enabled")
    rerank_weights: Weights | None = Field(
        None,
        description=(
            f"signal -> weight over {', '.join(V.SIGNALS)}; each a number in 0..{MAX_WEIGHT:g}, "
            "at least one above 0; only the ratios matter"
        ),
    )

    @model_validator(mode="after")
    def _some_weight(self) -> _RecommendOptions:
        if self.rerank_weights is not None and not any(self.rerank_weights.values()):
            raise ValueError("rerank_weights: at least one weight must be greater than 0")
        return self


class RecommendRequest(_RecommendOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": DEMO_USER, "topk": 10},
                {"user_id": DEMO_USER, "topk": 5, "filters": FILTERS_EXAMPLE, "rerank": True},
                {
                    "user_id": DEMO_USER,
                    "topk": 5,
                    "rerank_weights": {"cf": 0.7, "popularity": 0.2, "quality": 0.1},
                    "explain": True,
                },
                {"user_id": "new-visitor", "topk": 5, "context_items": [DEMO_PRODUCT]},
            ]
        },
    )
    user_id: Identifier
    explain: StrictBool = False
    context_items: Annotated[list[Identifier], Field(max_length=10_000)] | None = Field(
        None,
        description=(
            "product ids in front of the shopper now (the cart, the product on screen), oldest "
            "first: they count as the user's newest session items for every signal (a visitor "
            "without history gets the cold hybrid from them) and are left out of the answer "
            "like seen items (exclude_seen=false keeps them); at most "
            "requests.max_context_items (50); an id the shop does not know is a 422"
        ),
    )
    session_id: Identifier | None = Field(
        None,
        description=(
            "the storefront's session id of a visitor without an account: A/B experiments "
            "assign such visitors by it (leave it out for logged-in shoppers)"
        ),
    )


class BatchRecommendRequest(_RecommendOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_ids": [DEMO_USER, "999999", "new-visitor"], "topk": 5},
                {"user_ids": [DEMO_USER], "topk": 3, "filters": FILTERS_EXAMPLE},
            ]
        },
    )
    user_ids: Annotated[list[Identifier], Field(min_length=1)] = Field(
        ..., description="1..requests.max_batch_size (1000) user ids"
    )


class SimilarItemsRequest(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"product_id": DEMO_PRODUCT, "topk": 5},
                {"product_id": DEMO_PRODUCT, "topk": 10, "method": "content"},
                {"product_id": DEMO_PRODUCT, "topk": 5, "user_id": DEMO_USER},
            ]
        },
    )
    product_id: Identifier
    topk: Topk = Field(10, description="1..requests.max_similar_topk (50)")
    method: Literal["auto", "cf", "content"] = "auto"
    user_id: Identifier | None = Field(
        None,
        description=(
            "re-rank the neighbours for this user: their seen products left out, the rest "
            "ordered by (1 - w) * similarity + w * the user's hybrid score, both min-max scaled "
            "over the neighbours (w = rerank.similar_user_weight, 0.5); score is that blend"
        ),
    )
    filters: RecommendFilters | None = Field(
        None, description="keep only the neighbours that match (as in /recommend)"
    )


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
    user_id: str = Field(description="the requested id in its string form")
    segment: Literal["trainable", "cold", "unknown"]
    strategy: Literal["cf", "content", "popularity"]
    is_fallback: bool
    fallback_method: str | None
    recommendations: list[ProductOut]
    recommendation_id: str = Field(
        description="send it back on POST /events for a click, cart or purchase from this list"
    )
    experiment: str | None = Field(None, description="the A/B experiment this answer is in")
    variant: str | None = Field(None, description="the experiment's variant this user sees")


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
    product_id: str = Field(description="the requested id in its string form")
    method: Literal["cf", "content"]
    similar_items: list[ProductOut]
    model_id: str
    topk: int
    latency_ms: float


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable", "draining"]
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
    max_bytes: int | None = Field(
        description="bound: (max_size + window_max_size) × entry_max_bytes"
    )
    window_size: int | None = Field(
        None, description="results cache, admission repeat: held-back answers kept now"
    )
    window_max_size: int | None = Field(None, description="the most the window keeps")
    window_hits: int | None = Field(None, description="hits answered from the window")


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


class LiveEventsStats(BaseModel):
    """What this worker has applied from the shared event store (read without catching up, so
    ``applied_seq`` shows how far the tail thread got: how fast events reach other workers)."""

    applied_seq: int = Field(description="the last store sequence number applied")
    events_applied: int
    users: int = Field(description="users with live events")
    unavailable_products: int
    new_products: int = Field(
        0, description="products created since the model was built, served (content, live)"
    )
    new_products_not_served: int = Field(
        0, description="new products beyond events.max_new_products: served after a build"
    )
    data_cutoff: float = Field(description="unix seconds: live events before it are in the model")
    items_held: int = Field(description="live seen + liked items held (cap: events.max_live_items)")
    users_evicted: int = Field(
        description="users whose live history was dropped for events.max_live_items"
    )
    memory_bytes: int = Field(
        description="bytes of this worker's live state (arrays + per-user lists, estimated)"
    )


class ModelMemory(BaseModel):
    model_id: str
    heap_bytes: int = Field(description="array bytes in this process")
    mapped_bytes: int = Field(description="array bytes memory-mapped (shared page cache)")


class LoadedVariantModel(ModelMemory):
    model_type: str | None
    loaded_at: float


class VariantModelsStats(BaseModel):
    max_loaded_models: int
    default: ModelMemory | None = Field(description="the default model, for comparison")
    loaded: list[LoadedVariantModel]
    failures: dict[str, str] = Field(description="model id -> why its variant gets control")
    load_failures: int


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
    events: LiveEventsStats | None = Field(
        None, description="this worker's live state; null without a model or an event store"
    )
    variant_models: VariantModelsStats | None = Field(
        None, description="models A/B variants name, loaded beside the default (this worker)"
    )


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _responses(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": text} for status, text in statuses}


NOT_READY = _responses((503, "no model loaded"))
"""Documented error statuses of an endpoint that needs the model."""
TOO_LARGE = _responses((413, "body too large (requests.max_body_bytes)"))
ERROR_RESPONSES = {**_responses((422, "invalid input")), **TOO_LARGE, **NOT_READY}
"""... of a JSON-body endpoint (every status each operation can answer is documented, so that
schemathesis' status_code_conformance holds)."""


# ---------------------------------------------------------------- events and catalogue updates
EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "evt-000123",
    "user_id": "visitor-42",
    "product_id": DEMO_PRODUCT,
    "type": "view",
}
_TEXT = Annotated[str, StringConstraints(max_length=500)]
# a character str.strip() keeps: \s in every regex engine, and the ASCII separators Python
# counts as space too (so the schema and the validator agree on what "only spaces" means)
VISIBLE = r"[^\s\x1c-\x1f]"
_EVENT_ID = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": VISIBLE},
                # 64-bit: the route's JSON parser (orjson) reads longer integers as floats
                {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1},
            ]
        }
    ),
]


def _without_nulls(schema: dict[str, Any]) -> None:
    """Optional fields may be left out but never sent as null (the validators refuse null):
    say so in the schema, so that a schema-valid request is never a 422."""
    for prop in schema.get("properties", {}).values():
        branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
        if "anyOf" in prop and len(branches) == 1:
            del prop["anyOf"]
            prop.update(branches[0])
        if prop.get("default", 0) is None:
            del prop["default"]


def _patch_schema(schema: dict[str, Any]) -> None:
    _without_nulls(schema)
    schema["minProperties"] = 1
    schema["examples"] = [{"available": False}, {"price": 199000}]


def _put_schema(schema: dict[str, Any]) -> None:
    _without_nulls(schema)
    schema["examples"] = [
        {"name": "Kem dưỡng ẩm", "brand": "Cocoon", "category": "Kem dưỡng", "price": 250000}
    ]


class EventIn(_Request):
    """One shopper event (``POST /events`` takes one or a list of at most ``events.max_batch``).

    Documentation only: the route validates the body with
    :func:`recommender.events.validate_events`, whose 422 names the item index and field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    event_id: _EVENT_ID | None = Field(
        None, description="idempotency key: the same id twice is stored once"
    )
    user_id: _EVENT_ID
    product_id: _EVENT_ID = Field(
        description="a product of the catalogue (or one created by PUT /products/{id})"
    )
    type: Literal["view", "cart", "purchase", "rating", "remove_from_cart"]
    rating: Annotated[int, Field(strict=True, ge=1, le=5)] | None = Field(
        None, description="1-5, required with type 'rating' and refused otherwise"
    )
    timestamp: float | None = Field(
        None,
        ge=0,
        description="UTC seconds since the epoch (or ISO-8601 with offset); default now; "
        "at most events.clock_skew_seconds in the future",
    )
    recommendation_id: _EVENT_ID | None = None


class EventAck(BaseModel):
    event_id: str
    seq: int = Field(description="the store's sequence number (first write wins on a retry)")


class EventsResponse(BaseModel):
    """Sent only once every event of the request is durable in the shared store."""

    accepted: int
    events: list[EventAck]


class ProductPatch(_Request):
    """Fields to change (PATCH: at least one); ``available: false`` hides the product."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    brand: _TEXT | None = None
    category: _TEXT | None = None
    skin_types: Annotated[list[_TEXT], Field(max_length=20)] | None = None
    price: Price | None = None
    available: StrictBool | None = None


class ProductPut(_Request):
    """A whole product record (PUT): ``skin_types`` defaults to ``[]``, ``available`` to true."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_put_schema)

    name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    brand: _TEXT
    category: _TEXT
    skin_types: Annotated[list[_TEXT], Field(max_length=20)] | None = None
    price: Price
    available: StrictBool | None = None


class ProductUpdateResponse(BaseModel):
    product_id: str
    seq: int
    replace: bool
    known_to_model: bool = Field(
        description="false for a product the serving model has not been built with: it is "
        "served at once by content and live popularity (no CF factors until the next build)"
    )


INGEST_RESPONSES = {
    **_responses(
        (400, "the body is not JSON"),
        (403, "ingest token wrong, or ingest disabled (RECSYS_INGEST_TOKEN unset)"),
        (401, "X-Ingest-Token missing"),
        (422, "invalid event: the message names the item index and field"),
        (503, "event store unavailable (nothing stored; retry with the same event_id)"),
    ),
    **TOO_LARGE,
}
