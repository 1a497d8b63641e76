"""GET /user_history: one user's interactions with product records (the console's explorer).

Read-only. A user's history is customer data: it is public only where ``admin.public_sample_ids``
is (the setting that already makes real customer ids public in /model_info, off in production);
otherwise it needs the admin token. Newest entries first, at most ``limit``; events that arrived
after the model's data cut-off (the live feed) are listed first and marked ``live``: the items
they made seen, then those only viewed (positive, not excluded), each newest first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from service.deps import get_settings, get_state, require_admin
from service.responses import OrjsonResponse
from service.schemas import NOT_READY, ErrorResponse

router = APIRouter(tags=["recommendations"])
MAX_HISTORY = 200


class HistoryEntry(BaseModel):
    model_config = {"extra": "allow"}  # the product record: name, brand, category, price ...
    product_id: str
    positive: bool = Field(description="taste evidence (a rating below the threshold is not)")
    live: bool = Field(description="from an event after the model's data cut-off")


class UserHistoryResponse(BaseModel):
    user_id: str
    segment: str
    known: bool = Field(description="in the model's data or with live events")
    total: int = Field(description="history length (entries beyond limit are left out)")
    items: list[HistoryEntry]
    model_id: str


def _entries(request: Request, user: str, limit: int) -> tuple[list[dict[str, Any]], int, bool]:
    state = get_state(request)
    bundle = state.bundle
    hist = bundle.histories
    live = state.engine.live
    live_user = live.user(user) if live is not None else None
    record = live.record if live is not None else bundle.catalogue.records.__getitem__
    rows: list[tuple[int, bool, bool]] = []
    if live_user is not None:  # seen (excluded) items, then positive-only ones (views)
        seen, liked = live_user.seen[::-1].tolist(), live_user.liked[::-1].tolist()
        liked_set, seen_set = set(liked), set(seen)
        rows += [(int(i), i in liked_set, True) for i in seen]
        rows += [(int(i), True, True) for i in liked if i not in seen_set]
    row = hist.index.get(user, -1)
    if row >= 0:
        items = hist.items(row)
        start, stop = int(hist.indptr[row]), int(hist.indptr[row + 1])
        positive = (
            [True] * len(items) if hist.positive is None else hist.positive[start:stop].tolist()
        )
        rows += [
            (int(i), bool(p), False)
            for i, p in zip(items[::-1].tolist(), positive[::-1], strict=True)
        ]
    entries = [
        {**record(item), "positive": positive, "live": is_live}
        for item, positive, is_live in rows[:limit]
    ]
    return entries, len(rows), row >= 0 or live_user is not None


@router.get(
    "/user_history",
    response_model=UserHistoryResponse,
    responses={
        **NOT_READY,
        401: {"model": ErrorResponse, "description": "token missing (history not public)"},
        403: {"model": ErrorResponse, "description": "token wrong, or admin disabled"},
        422: {"model": ErrorResponse, "description": "invalid input"},
    },
)
async def user_history(
    request: Request,
    user_id: Annotated[str, Query(min_length=1, max_length=128, pattern=r"\S")],
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 50,
) -> OrjsonResponse:
    """A user's segment and history, newest first, with product names, brands and prices."""
    if not get_settings(request).admin.public_sample_ids:
        require_admin(request)  # customer data: public only where sample ids are
    state = get_state(request)
    state.engine.sync_live()  # read-your-writes, as /recommend: events acknowledged so far
    user = user_id.strip()
    entries, total, known = _entries(request, user, limit)
    return OrjsonResponse(
        {
            "user_id": user,
            "segment": state.engine.segment_of(user),
            "known": known,
            "total": total,
            "items": entries,
            "model_id": state.bundle.model_id,
        }
    )
