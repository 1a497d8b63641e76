"""POST /recommend and POST /batch_recommend."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from recommender.errors import InvalidRequestError
from recommender.serving import Filters
from service.deps import get_metrics, get_settings, get_state
from service.json_route import JsonBodyRoute
from service.responses import PATH_KEY, OrjsonResponse
from service.schemas import (
    ERROR_RESPONSES,
    BatchRecommendRequest,
    BatchRecommendResponse,
    RecommendFilters,
    RecommendRequest,
    RecommendResponse,
)

router = APIRouter(tags=["recommendations"], route_class=JsonBodyRoute)


def _filters(spec: RecommendFilters | None) -> Filters | None:
    return None if spec is None else Filters.from_mapping(spec.model_dump(exclude_none=True))


@router.post("/recommend", response_model=RecommendResponse, responses=ERROR_RESPONSES)
async def recommend(body: RecommendRequest, request: Request) -> OrjsonResponse:
    """Top-k products for one user: CF (trainable), cold hybrid (known), popularity (unknown)."""
    state = get_state(request)
    started = time.perf_counter()
    result = state.engine.recommend(
        body.user_id,
        topk=body.topk,
        exclude_seen=body.exclude_seen,
        filters=_filters(body.filters),
        rerank=body.rerank,
        weights=body.rerank_weights,
        explain=body.explain,
    )
    latency_ms = (time.perf_counter() - started) * 1000
    request.scope[PATH_KEY] = result.strategy  # counted with the request's latency
    payload = result.as_dict()
    payload["user_id"] = body.user_id
    payload["model_id"] = state.bundle.model_id
    payload["topk"] = body.topk or get_settings(request).requests.default_topk
    payload["latency_ms"] = round(latency_ms, 3)
    return OrjsonResponse(payload)


@router.post("/batch_recommend", response_model=BatchRecommendResponse, responses=ERROR_RESPONSES)
async def batch_recommend(body: BatchRecommendRequest, request: Request) -> OrjsonResponse:
    """Recommendations for up to ``requests.max_batch_size`` users in one vectorised call."""
    state = get_state(request)
    settings = get_settings(request)
    limit = settings.requests.max_batch_size
    if len(body.user_ids) > limit:
        raise InvalidRequestError(
            f"user_ids has {len(body.user_ids)} ids; at most {limit} per batch "
            "(requests.max_batch_size). Split the batch."
        )
    started = time.perf_counter()
    # tens of milliseconds of numpy: off the event loop, so the worker keeps reading other
    # connections (and drains them on SIGTERM) meanwhile; the engine's caches are lock-protected
    results = await run_in_threadpool(
        state.engine.recommend_batch,
        body.user_ids,
        topk=body.topk,
        exclude_seen=body.exclude_seen,
        filters=_filters(body.filters),
        rerank=body.rerank,
        weights=body.rerank_weights,
    )
    payloads = []
    cf_users = 0
    for original, result in zip(body.user_ids, results, strict=True):
        payload = result.as_dict()
        payload["user_id"] = original
        cf_users += not result.is_fallback
        payloads.append(payload)
    get_metrics(request).record_paths(r.strategy for r in results)
    total_ms = (time.perf_counter() - started) * 1000
    return OrjsonResponse(
        {
            "results": payloads,
            "count": len(payloads),
            "cf_users": cf_users,
            "fallback_users": len(payloads) - cf_users,
            "model_id": state.bundle.model_id,
            "topk": body.topk or settings.requests.default_topk,
            "total_latency_ms": round(total_ms, 3),
        }
    )
