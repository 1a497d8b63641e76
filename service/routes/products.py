"""PUT / PATCH /products/{product_id}: catalogue updates (admin token), durable in the store.

PUT replaces the whole record, PATCH changes the given fields; ``available: false`` hides the
product from every answer on every worker within ``events.poll_interval_seconds`` (and at once
on the next request of any worker: each request catches up with the store). A product the
serving model was not built with is stored and recommended after the next build.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from recommender.errors import UnknownProductError
from recommender.events import validate_product_update
from service.deps import get_metrics, get_state, get_store, require_admin
from service.responses import OrjsonResponse
from service.schemas import (
    ERROR_RESPONSES,
    INGEST_RESPONSES,
    VISIBLE,
    ErrorResponse,
    ProductPatch,
    ProductPut,
    ProductUpdateResponse,
)

router = APIRouter(tags=["catalogue"], dependencies=[Depends(require_admin)])
ProductId = Annotated[
    str,
    Path(
        min_length=1, max_length=128, pattern=rf"^{VISIBLE}(?:.*{VISIBLE})?$", examples=["p00001"]
    ),
]
RESPONSES = {**ERROR_RESPONSES, **INGEST_RESPONSES}


async def _store(request: Request, product_id: str, fields: dict, replace: bool) -> OrjsonResponse:
    state = get_state(request)
    live = state.engine.live
    known_to_model = product_id in state.bundle.catalogue.index
    if not replace and not known_to_model and not (live and live.knows_product(product_id)):
        raise UnknownProductError(
            f"product {product_id!r} is not in the catalogue; create it with PUT first."
        )
    update = validate_product_update(product_id, fields, replace=replace)
    try:
        [seq] = await asyncio.to_thread(get_store(request).append_products, [update])
    except Exception:
        get_metrics(request).record_store_error("append_products")
        raise
    state.engine.sync_live()
    return OrjsonResponse(
        {
            "product_id": update.product_id,
            "seq": seq,
            "replace": replace,
            "known_to_model": known_to_model,
        }
    )


@router.put("/products/{product_id}", response_model=ProductUpdateResponse, responses=RESPONSES)
async def put_product(product_id: ProductId, body: ProductPut, request: Request) -> OrjsonResponse:
    """Create or replace a product record."""
    return await _store(request, product_id, body.model_dump(exclude_unset=True), replace=True)


@router.patch(
    "/products/{product_id}",
    response_model=ProductUpdateResponse,
    responses={
        **RESPONSES,
        404: {"model": ErrorResponse, "description": "unknown product (create it with PUT)"},
    },
)
async def patch_product(
    product_id: ProductId, body: ProductPatch, request: Request
) -> OrjsonResponse:
    """Change some fields of a product (``available``, ``price``, ``name`` ...)."""
    return await _store(request, product_id, body.model_dump(exclude_unset=True), replace=False)
