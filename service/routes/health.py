"""GET /health and GET /model_info."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request

from service.deps import get_holder, get_settings, get_state, is_admin
from service.responses import ERROR_CODE_KEY, OrjsonResponse, error_body
from service.schemas import NOT_READY, HealthResponse
from service.shutdown import Drain

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, responses=NOT_READY)
async def health(request: Request) -> OrjsonResponse:
    """Readiness: 200 with the serving model; 503 with the reason while no model is loaded, and
    503 ``"draining"`` from SIGTERM until the worker stops (requests are still served)."""
    holder = get_holder(request)
    state = holder.state
    common = {
        "uptime_seconds": round(time.time() - holder.started_at, 3),
        "pid": os.getpid(),
        "last_reload_error": holder.last_error,
    }
    drain: Drain = request.app.state.drain
    if drain.draining:
        reason = drain.reason()
        request.scope[ERROR_CODE_KEY] = "draining"
        return OrjsonResponse(
            {
                "status": "draining",
                "reason": reason,
                "model_id": None if state is None else state.bundle.model_id,
                **common,
                **error_body("draining", reason),
            },
            status_code=503,
        )
    if state is None:
        reason = holder.not_ready_reason()
        request.scope[ERROR_CODE_KEY] = "not_ready"
        return OrjsonResponse(
            {
                "status": "unavailable",
                "reason": reason,
                **common,
                **error_body("not_ready", reason),
            },
            status_code=503,
        )
    info = state.bundle.info
    return OrjsonResponse(
        {
            "status": "ok",
            "model_id": state.bundle.model_id,
            "model_type": info.get("model_type"),
            "n_users": info.get("n_users"),
            "n_trainable_users": info.get("n_trainable_users"),
            "n_items": info.get("n_items"),
            "loaded_at": info.get("loaded_at"),
            **common,
        }
    )


@router.get("/model_info", responses=NOT_READY)
async def model_info(request: Request) -> OrjsonResponse:
    """The serving model: id, type, factors, created/loaded time, metrics, versions; a few real
    user ids per segment (``sample_user_ids``) when ``admin.public_sample_ids`` or the admin
    token allows."""
    state = get_state(request)
    holder = get_holder(request)
    info = dict(state.bundle.info)
    samples = info.pop("sample_user_ids", None)
    if get_settings(request).admin.public_sample_ids or is_admin(request):
        info["sample_user_ids"] = samples  # real customer ids: public only where config says so
    return OrjsonResponse(
        {**info, "reloads": holder.reloads, "last_reload_error": holder.last_error}
    )
