"""GET /stats, GET /cache_stats, GET /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from recommender.serving import ModelHolder
from service.deps import get_holder, get_metrics, get_state, get_variant_models
from service.responses import OrjsonResponse
from service.schemas import NOT_READY, CacheStatsResponse, StatsResponse

router = APIRouter(tags=["operations"])


def _serving_summary(holder: ModelHolder) -> dict[str, Any]:
    """Model, reload and cache part of /stats (the numbers /metrics exports for this process)."""
    state = holder.state
    success, failure = holder.last_success, holder.last_failure
    reloads = {
        "successes": holder.reloads,
        "failures": holder.reload_failures,
        "last_success_at": success.finished_at if success else None,
        "last_failure_at": failure.finished_at if failure else None,
        "last_error": holder.last_error,
    }
    if state is None:
        return {"model_id": None, "model": None, "reloads": reloads, "caches": None, "events": None}
    info = state.bundle.info
    caches = state.caches.stats()
    return {
        "model_id": state.bundle.model_id,
        "model": {
            "model_id": state.bundle.model_id,
            "model_type": info.get("model_type"),
            "data_version": info.get("data_version"),
            "embedding_version": info.get("embedding_version"),
            "loaded_at": state.loaded_at,
        },
        "reloads": reloads,
        "caches": caches,
        "events": live.stats() if (live := state.engine.live) is not None else None,
    }


@router.get("/stats", response_model=StatsResponse)
async def stats(request: Request) -> OrjsonResponse:
    """Requests per endpoint and per path (cf/content/popularity) with latency p50/p95/p99,
    errors by code, the model version, reloads, caches, warm-up and live events of this worker."""
    holder = get_holder(request)
    summary = _serving_summary(holder)
    models = get_variant_models(request)
    variant_models = None if models is None else models.stats(holder.state)
    return OrjsonResponse(
        {**get_metrics(request).snapshot(), **summary, "variant_models": variant_models}
    )


@router.get("/cache_stats", response_model=CacheStatsResponse, responses=NOT_READY)
async def cache_stats(request: Request) -> OrjsonResponse:
    """Per cache: size, max_size, hits, misses, hit_rate, evictions; and the warm-up state."""
    state = get_state(request)
    return OrjsonResponse({**state.caches.stats(), "model_id": state.bundle.model_id})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition (see ``service/metrics.py`` for the series and for
    multiprocess mode with ``PROMETHEUS_MULTIPROC_DIR``)."""
    return Response(get_metrics(request).render(), media_type=CONTENT_TYPE_LATEST)
