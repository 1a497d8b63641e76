"""PUT / PATCH /products/{product_id}: catalogue updates (admin token), durable in the store.

PUT replaces the whole record, PATCH changes the given fields; ``available: false`` hides the
product from every answer on every worker within ``events.poll_interval_seconds`` (and at once
on the next request of any worker: each request catches up with the store). A product the
serving model was not built with is recommendable at once (its text embedded with the model's
encoder, popularity from live events; see :mod:`recommender.serving.new_products`), up to
``events.max_new_products`` of them (more: 422), and part of the model after the next build.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from recommender.errors import InvalidEventError, UnknownProductError
from recommender.events import validate_product_update
from recommender.serving import LiveState
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
    if live is not None and not known_to_model:
        _check_room(live, product_id)
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


def _check_room(live: LiveState, product_id: str) -> None:
    """A product the model does not know takes one of ``events.max_new_products`` slots."""
    limit = live.settings.max_new_products
    if live.extra.index_of(product_id) is None and live.new_items.k >= limit:
        raise InvalidEventError(
            f"products[{product_id!r}]: the service already serves {limit} products created "
            "since the model was built (events.max_new_products); build a new model to fold "
            "them in, or raise the limit.",
            index=0,
            field="product_id",
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
