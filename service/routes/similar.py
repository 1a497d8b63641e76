"""POST /similar_items."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from service.deps import get_state
from service.json_route import JsonBodyRoute
from service.responses import OrjsonResponse
from service.schemas import (
    ERROR_RESPONSES,
    ErrorResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)

router = APIRouter(tags=["recommendations"], route_class=JsonBodyRoute)


@router.post(
    "/similar_items",
    response_model=SimilarItemsResponse,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse, "description": "unknown product"}},
)
async def similar_items(body: SimilarItemsRequest, request: Request) -> OrjsonResponse:
    """Products most similar to one product (CF factors; embeddings for unbought ones);
    with ``user_id`` re-ranked for that user, their seen products left out."""
    state = get_state(request)
    started = time.perf_counter()
    filters = None if body.filters is None else body.filters.model_dump(exclude_none=True)
    result = state.engine.similar_items(
        body.product_id, body.topk, body.method, user_id=body.user_id, filters=filters
    )
    return OrjsonResponse(
        {
            "product_id": body.product_id,
            "method": result.method,
            "similar_items": result.items,
            "model_id": state.bundle.model_id,
            "topk": body.topk,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
    )
