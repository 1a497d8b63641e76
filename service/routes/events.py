"""POST /events: shopper events into the shared store, acknowledged once durable.

Auth: ``X-Ingest-Token`` against ``$RECSYS_INGEST_TOKEN`` (closed, 403, when unset). The body
is one event object or a list of at most ``events.max_batch``, validated all-or-nothing by
:func:`recommender.events.validate_events` (422 naming the item index and field; unknown
product ids included). 503 when the store cannot take the batch: nothing was stored, and a retry
with the same ``event_id`` s is safe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request

from recommender.errors import InvalidEventError
from recommender.events import Event, validate_events
from recommender.serving import ServingState
from service.deps import (
    get_experiments,
    get_metrics,
    get_settings,
    get_state,
    get_store,
    require_ingest,
)
from service.json_route import RequestRoute
from service.responses import OrjsonResponse
from service.schemas import INGEST_RESPONSES, NOT_READY, EventIn, EventsResponse

log = logging.getLogger(__name__)
router = APIRouter(
    tags=["events"], dependencies=[Depends(require_ingest)], route_class=RequestRoute
)


def _price_of(state: ServingState) -> Any:
    """Product id -> its current price (NaN when unknown), for attributed revenue."""
    catalogue, live = state.bundle.catalogue, state.engine.live

    def price(product_id: str) -> float:
        item = catalogue.index.get(product_id)
        if item is None:
            return float("nan")
        if live is not None and live.has_catalogue_changes:
            value = live.record(item).get("price")
            return float("nan") if value is None else float(value)
        return float(catalogue.price[item])

    return price


async def _attribute(request: Request, state: ServingState, events: list[Event]) -> None:
    """Copy events from a recommendation into the experiment ledger; the event store already
    holds them durably, so a failed copy is logged (and can be rebuilt), never a failed ack."""
    runner = get_experiments(request)
    if runner is None or not runner.specs or not any(e.recommendation_id for e in events):
        return
    try:
        await asyncio.to_thread(runner.ledger.record_outcomes, events, _price_of(state))
    except Exception:
        log.exception("experiment ledger: could not record %d outcomes", len(events))


def _body_schema(max_batch: int) -> dict[str, Any]:
    """One event or a list of them (the limit is rewritten from config in service.openapi)."""
    ref = {"$ref": "#/components/schemas/EventIn"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        ref,
                        {"type": "array", "items": ref, "minItems": 1, "maxItems": max_batch},
                    ]
                }
            }
        },
    }


@router.post(
    "/events",
    status_code=202,
    response_model=EventsResponse,
    responses={**INGEST_RESPONSES, **NOT_READY},
    openapi_extra={"requestBody": _body_schema(500)},
)
async def post_events(request: Request) -> OrjsonResponse:
    """Store shopper events (view, cart, purchase, rating, remove_from_cart) durably.

    The answer (202) carries each event's ``event_id`` and store sequence number; every worker
    reflects the events in its next answer for that user (read-your-writes)."""
    settings = get_settings(request).events
    metrics = get_metrics(request)
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        metrics.record_events_rejected("invalid_json")
        raise InvalidEventError(
            f"the body is not JSON ({exc}); send one event object or a list.",
            index=0,
            field="item",
        ) from None
    state = get_state(request)
    live = state.engine.live
    known = live.knows_product if live is not None else state.bundle.catalogue.index.__contains__
    try:
        events = validate_events(
            payload,
            max_batch=settings.max_batch,
            clock_skew_seconds=settings.clock_skew_seconds,
            known_product=known,
        )
    except InvalidEventError as exc:
        metrics.record_events_rejected(exc.field or "item")
        raise
    store = get_store(request)
    try:
        seqs = await store.append_async(events)
    except Exception:
        metrics.record_store_error("append")
        raise
    metrics.record_events_accepted(event.type for event in events)
    await _attribute(request, state, events)
    acks = [{"event_id": e.event_id, "seq": seq} for e, seq in zip(events, seqs, strict=True)]
    return OrjsonResponse({"accepted": len(acks), "events": acks}, status_code=202)


__all__ = ["EventIn", "router"]
