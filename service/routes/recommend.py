"""POST /recommend and POST /batch_recommend."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from recommender.experiments import Choice
from recommender.serving import Engine, Filters, Recommendation, RecommendOptions
from service.batch import encode_batch
from service.deps import (
    get_batch_slots,
    get_experiments,
    get_metrics,
    get_settings,
    get_state,
    get_variant_models,
)
from service.encoding import answer_json, record_json
from service.experiments import answer_tags, merged_options, serving_for
from service.json_route import JsonBodyRoute
from service.responses import PATH_KEY, JsonBytesResponse
from service.schemas import (
    ERROR_RESPONSES,
    BatchRecommendRequest,
    BatchRecommendResponse,
    ErrorResponse,
    RecommendFilters,
    RecommendRequest,
    RecommendResponse,
)

router = APIRouter(tags=["recommendations"], route_class=JsonBodyRoute)


def _filters(spec: RecommendFilters | None) -> Filters | None:
    return None if spec is None else Filters.from_mapping(spec.model_dump(exclude_none=True))


PlainKey = tuple[int | None, bool, bool | None, bool]  # topk, exclude_seen, rerank, explain
# per engine (model version): the options of requests without filters, weights, context or A/B
# variant, parsed once; bounded by the valid keys (an invalid one raises and is not kept)
_PLAIN: weakref.WeakKeyDictionary[Engine, dict[PlainKey, RecommendOptions]] = (
    weakref.WeakKeyDictionary()
)
# the same for requests with filters or weights (no context, no A/B variant), keyed by their
# values too; at most LOOSE_KEPT per engine (ids lists can be long), the oldest go first
LOOSE_KEPT = 256
_LOOSE: weakref.WeakKeyDictionary[Engine, dict[tuple[Any, ...], RecommendOptions]] = (
    weakref.WeakKeyDictionary()
)


def _loose_key(body: RecommendRequest | BatchRecommendRequest, explain: bool) -> tuple[Any, ...]:
    """Every value the options of a request without context or variant are made of."""
    spec = body.filters
    filters = None
    if spec is not None:  # a model's field values, in field order; lists as tuples
        filters = tuple(tuple(v) if isinstance(v, list) else v for v in spec.__dict__.values())
    weights = None if body.rerank_weights is None else tuple(body.rerank_weights.items())
    return (body.topk, body.exclude_seen, body.rerank, explain, filters, weights)


def _options(
    engine: Engine, body: RecommendRequest | BatchRecommendRequest, choice: Choice | None = None
) -> RecommendOptions:
    context = body.context_items if isinstance(body, RecommendRequest) else None
    explain = body.explain if isinstance(body, RecommendRequest) else False
    if choice is None and body.filters is None and body.rerank_weights is None and not context:
        plain = _PLAIN.get(engine)
        if plain is None:
            plain = _PLAIN.setdefault(engine, {})
        key = (body.topk, body.exclude_seen, body.rerank, explain)
        options = plain.get(key)
        if options is None:
            options = plain[key] = engine.options(
                topk=body.topk, exclude_seen=body.exclude_seen, rerank=body.rerank, explain=explain
            )
        return options
    kept: dict[tuple[Any, ...], RecommendOptions] | None = None
    if choice is None and not context:
        kept = _LOOSE.get(engine)
        if kept is None:
            kept = _LOOSE.setdefault(engine, {})
        key = _loose_key(body, explain)
        options = kept.get(key)
        if options is not None:
            return options
    loose: dict[str, Any] = {
        "topk": body.topk,
        "exclude_seen": body.exclude_seen,
        "filters": _filters(body.filters),
        "rerank": body.rerank,
        "weights": body.rerank_weights,
        "explain": explain,
    }
    if context:
        loose["context_items"] = context
    options = engine.options(**merged_options(loose, choice))
    if kept is not None:  # valid (an invalid one raised): kept
        kept[key] = options
        if len(kept) > LOOSE_KEPT:
            del kept[next(iter(kept))]
    return options


def _chunks_by_variant(
    engines: Sequence[Engine],
    users: Sequence[str],
    options: Sequence[RecommendOptions],
    size: int,
) -> Iterator[list[Recommendation]]:
    """Rank ``size`` users per step, each with their variant's model and options, in order."""
    for start in range(0, len(users), size):
        stop = min(len(users), start + size)
        groups: dict[tuple[int, bytes], list[int]] = {}
        for i in range(start, stop):
            groups.setdefault((id(engines[i]), options[i].digest), []).append(i)
        ranked: list[Recommendation | None] = [None] * (stop - start)
        for indices in groups.values():
            opts, engine = options[indices[0]], engines[indices[0]]
            part = next(engine.recommend_chunks([users[i] for i in indices], opts, None))
            for i, result in zip(indices, part, strict=True):
                ranked[i - start] = result
        yield [r for r in ranked if r is not None]


@router.post("/recommend", response_model=RecommendResponse, responses=ERROR_RESPONSES)
async def recommend(body: RecommendRequest, request: Request) -> Response:
    """Top-k products for one user: CF (trainable), cold hybrid (known), popularity (unknown)."""
    default = get_state(request)
    started = time.perf_counter()
    runner = get_experiments(request)
    choice = runner.choose(body.session_id or body.user_id) if runner is not None else None
    state = default
    if choice is not None:
        state, choice = serving_for(runner, get_variant_models(request), choice, default)
    engine = state.engine
    options = _options(engine, body, choice)
    result = engine.recommend(body.user_id, options)
    latency_ms = (time.perf_counter() - started) * 1000
    request.scope[PATH_KEY] = result.strategy  # counted with the request's latency
    extra = {
        "model_id": state.bundle.model_id,
        "topk": options.topk,
        "latency_ms": round(latency_ms, 3),
        **answer_tags(runner, choice, result),
    }
    # the JSON of result.as_dict() (user_id as sent) and extra, joined from encoded records
    content = answer_json(result, body.user_id, record_json(engine), extra, memo=True)
    return JsonBytesResponse(content)


BATCH_RESPONSES = {
    **ERROR_RESPONSES,
    429: {
        "model": ErrorResponse,
        "description": "batch_busy: no batch slot freed in time; retry after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
}


@router.post("/batch_recommend", response_model=BatchRecommendResponse, responses=BATCH_RESPONSES)
async def batch_recommend(body: BatchRecommendRequest, request: Request) -> Response:
    """Recommendations for up to ``requests.max_batch_size`` users (and ``requests.max_batch_items``
    users × topk); at most ``batch.max_concurrent`` batches compute at once per worker, the
    others wait up to ``batch.max_wait_seconds`` and then get 429 with ``Retry-After``."""
    state = get_state(request)
    started = time.perf_counter()
    options = _options(state.engine, body)
    chunk_users = get_settings(request).batch.chunk_users
    # checked before waiting for a slot: an invalid batch is a 422 at once, never a 429
    chunks = state.engine.recommend_chunks(body.user_ids, options, chunk_users)
    runner = get_experiments(request)
    choices = [runner.choose(str(u)) if runner else None for u in body.user_ids]
    if any(choices):
        models = get_variant_models(request)
        served = [serving_for(runner, models, c, state) for c in choices]
        choices = [c for _, c in served]
        engines = [s.engine for s, _ in served]
        per_user = [
            options if c is None else _options(e, body, c)
            for e, c in zip(engines, choices, strict=True)
        ]
        users = [str(u) for u in body.user_ids]
        chunks = _chunks_by_variant(engines, users, per_user, chunk_users)
    async with get_batch_slots(request).slot():
        # ranking, payload building and JSON encoding run on a worker thread, one chunk of
        # users per step, so the event loop serves /recommend between steps
        encoded = await encode_batch(
            chunks,
            body.user_ids,
            state.bundle.model_id,
            options.topk,
            started,
            record_json(state.engine),
            lambda i, result: answer_tags(runner, choices[i], result),
        )
    get_metrics(request).record_paths(encoded.strategies)
    return Response(encoded.body, media_type="application/json")
